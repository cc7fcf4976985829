"""What every staff screen shares: who may see it, and the version a form was read at."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from accounts.selectors import is_staff_member
from helpdesk.exceptions import ApplicationError

VERSION_MISSING = _("This form is out of date. Reload the page and try again.")


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the login page; anyone who is not staff gets a 404."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_staff_member(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def require_perm(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def posted_version(request: HttpRequest, field: str = "version") -> int:
    """The ticket version a staff form was read at; a form without one is refused.

    The services check a version only when they are given one (API v1 leaves it optional), so
    a staff form that lost its version would overwrite whatever changed since it was read.
    """
    try:
        return int(request.POST.get(field, ""))
    except ValueError:
        raise ApplicationError(str(VERSION_MISSING)) from None
