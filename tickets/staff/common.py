"""What every staff screen shares: who may see it, how a requested change reads."""

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.selectors import is_staff_member
from tickets.lookalikes import value_lookalike
from tickets.models import FieldChange
from tickets.request_fields import MODIFY_FIELD_LABELS


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


def field_change_rows(changes: Iterable[FieldChange]) -> list[dict[str, Any]]:
    """A change request's fields as staff screens show them, old value beside new.

    `lookalike`: how the new value reads as another (tickets.lookalikes: a word mixing
    alphabets, or one whose letters all look Latin among Latin text); "" when it does not.
    """
    return [
        {
            "label": MODIFY_FIELD_LABELS.get(c.field, c.field),
            "old": c.old_value,
            "new": c.new_value,
            "applied_at": c.applied_at,
            "lookalike": value_lookalike(c.new_value, c.old_value),
        }
        for c in changes
    ]
