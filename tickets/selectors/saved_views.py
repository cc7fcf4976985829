"""A staff member's saved queue views."""

from django.contrib.auth.models import AnonymousUser, User

from accounts.selectors import is_staff_member
from tickets.models import SavedView


def saved_views_of(*, user: User | AnonymousUser) -> list[SavedView]:
    """The user's own saved views by name (none for anyone but staff)."""
    if not is_staff_member(user):
        return []
    return list(SavedView.objects.filter(owner_id=user.pk).only("name", "query"))


def saved_view_get(*, user: User | AnonymousUser, pk: int) -> SavedView | None:
    """One of the user's own saved views, or None (another's is not found: callers say 404)."""
    if not is_staff_member(user):
        return None
    return SavedView.objects.filter(owner_id=user.pk, pk=pk).first()
