"""Saved views: a staff member's named queue filters, kept per person, shared by their URL."""

from urllib.parse import parse_qsl, urlencode

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext_noop

from accounts.lock_objects import user_limits_lock
from accounts.selectors import is_staff_member
from helpdesk.exceptions import ApplicationError
from helpdesk.validators import CONTROL_CHARACTERS
from tickets.audit import audit_record
from tickets.lock_objects import saved_view_lock, saved_view_lock_by_pk
from tickets.models import SavedView
from tickets.redaction import redact_card_numbers

SAVED_VIEW_NAME_NEEDED = gettext_noop("Give the view a name (at most 80 characters).")
SAVED_VIEW_TOO_MANY = gettext_noop("You have 50 saved views already; delete one first.")
SAVED_VIEW_STAFF_ONLY = gettext_noop("Only staff can save views of the queue.")
SAVED_VIEW_NOT_YOURS = gettext_noop("That saved view is not yours.")
SAVED_VIEW_GONE = gettext_noop("That saved view was already deleted.")
SAVED_VIEW_TOO_LONG = gettext_noop(
    "This view's filters are too long to save; shorten the search or the assignee."
)
SAVED_VIEWS_MAX = 50
# SavedView.query's length: the queue's querystring, each character of another script or an
# accent written out as up to nine (%E2%82%AC), so a 200-character search can be 1,800.
_QUERY_MAX_LENGTH = SavedView._meta.get_field("query").max_length or 0


def _query_redacted(query: str) -> str:
    """The querystring with a card number in any value (a search for one) redacted."""
    pairs = [(key, redact_card_numbers(value)) for key, value in parse_qsl(query)]
    if not any(found for _key, (_value, found) in pairs):
        return query
    return urlencode([(key, value) for key, (value, _found) in pairs])


@transaction.atomic
def saved_view_save(*, owner: User, name: str, query: str) -> SavedView:
    """Save the queue's `query` under `name` for `owner`; a name already used is updated.

    :param query: the queue's querystring as the queue rebuilt it from its cleaned filters.
    """
    if not is_staff_member(owner):
        raise ApplicationError(SAVED_VIEW_STAFF_ONLY)
    name = " ".join(name.split())
    if not name or len(name) > 80 or CONTROL_CHARACTERS.search(name):
        raise ApplicationError(SAVED_VIEW_NAME_NEEDED)
    name = redact_card_numbers(name)[0][:80]
    query = _query_redacted(query)
    if len(query) > _QUERY_MAX_LENGTH:
        raise ApplicationError(SAVED_VIEW_TOO_LONG)
    # The owner's row first: a second save of the same new name (a double click) waits here and
    # then finds the first one's view, and the count below is one request at a time.
    user_limits_lock(user=owner)
    existing = saved_view_lock(owner=owner, name=name)
    if existing is not None:
        old = existing.query
        existing.query = query
        existing.full_clean()
        existing.save(update_fields=["query", "updated_at"])
        audit_record(
            actor=owner,
            action="saved_view.changed",
            details={"name": name, "from": old, "to": query},
        )
        return existing
    if SavedView.objects.filter(owner=owner).count() >= SAVED_VIEWS_MAX:
        raise ApplicationError(SAVED_VIEW_TOO_MANY)
    view = SavedView(owner=owner, name=name, query=query)
    view.full_clean()
    view.save(force_insert=True)
    audit_record(actor=owner, action="saved_view.created", details={"name": name, "to": query})
    return view


@transaction.atomic
def saved_view_delete(*, view: SavedView, actor: User) -> None:
    """Delete one of the actor's own saved views (callers look it up scoped to the actor)."""
    if view.owner_id != actor.pk:
        raise ApplicationError(SAVED_VIEW_NOT_YOURS)
    # Locked and read again: a second delete of the same view (a double click) waits for the
    # first and finds it gone, rather than recording a deletion that deleted nothing.
    locked = saved_view_lock_by_pk(owner=actor, pk=view.pk)
    if locked is None:
        raise ApplicationError(SAVED_VIEW_GONE)
    name, query = locked.name, locked.query
    locked.delete()
    audit_record(actor=actor, action="saved_view.deleted", details={"name": name, "from": query})
