"""The staff audit-log page."""

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext_noop

from accounts.selectors import is_staff_member
from helpdesk.exceptions import StaffForbidden
from tickets.models import ActionLog

AUDIT_PAGE_SIZE = 50
AUDIT_LOG_PERMISSION = "tickets.view_audit_log"
AUDIT_LOG_FORBIDDEN = gettext_noop("Only a supervisor can read the audit log.")


def audit_log_reader_check(user: User | AnonymousUser) -> None:
    """Refuse (StaffForbidden) anyone but a staff member allowed to read the whole audit log."""
    if not (is_staff_member(user) and user.has_perm(AUDIT_LOG_PERMISSION)):
        raise StaffForbidden(AUDIT_LOG_FORBIDDEN)


def audit_log_page(
    *,
    user: User | AnonymousUser,
    ticket: str = "",
    customer: str = "",
    action: str = "",
    before: int | None = None,
) -> tuple[list[ActionLog], int | None]:
    """Newest audit rows first, by keyset on the sequence; returns the rows and the next cursor.

    For supervisors only (audit_log_reader_check): anyone else is refused.
    """
    audit_log_reader_check(user)
    rows = ActionLog.objects.select_related("ticket", "customer").order_by("-sequence")
    if ticket:
        rows = rows.filter(ticket__reference=ticket)
    if customer:
        rows = rows.filter(customer__number=customer)
    if action:
        rows = rows.filter(action=action)
    if before is not None:
        rows = rows.filter(sequence__lt=before)
    page = list(rows[: AUDIT_PAGE_SIZE + 1])
    if len(page) > AUDIT_PAGE_SIZE:
        return page[:AUDIT_PAGE_SIZE], page[AUDIT_PAGE_SIZE - 1].sequence
    return page, None


def audit_actions(*, user: User | AnonymousUser) -> list[str]:
    """The actions the audit log holds, for its filter (the log's readers only)."""
    audit_log_reader_check(user)
    return list(ActionLog.objects.order_by("action").values_list("action", flat=True).distinct())
