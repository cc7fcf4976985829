"""What every staff screen shares: who may see it, and the version a form was read at."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.utils.translation import gettext_lazy as _

from accounts.selectors import is_staff_member
from helpdesk.exceptions import ApplicationError

VERSION_MISSING = _("This form is out of date. Reload the page and try again.")
PARAMETER_REPEATED = _("Given more than once, so ignored: give it once.")


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the login page; anyone who is not staff gets a 404."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_staff_member(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def posted_version(request: HttpRequest, field: str = "version") -> int:
    """The version a staff form was read at (a ticket's, a customer's freeze); none is refused.

    The services check a version only when they are given one (API v1 leaves it optional), so
    a staff form that lost its version would overwrite whatever changed since it was read.
    """
    try:
        return int(request.POST.get(field, ""))
    except ValueError:
        raise ApplicationError(str(VERSION_MISSING)) from None


class SingleValuedQueryForm(forms.Form):
    """A form read from a query string in which each field takes one value.

    `?status=open&status=closed` is refused on the field (which then falls back to its
    default) rather than read as its last value, which answers a question nobody asked.
    """

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if isinstance(self.data, QueryDict):
            for name in self.fields:
                if len(self.data.getlist(name)) > 1:
                    self.add_error(name, PARAMETER_REPEATED)
        return data
