"""The staff audit-log page."""

from tickets.models import ActionLog

AUDIT_PAGE_SIZE = 50


def audit_log_page(
    *, ticket: str = "", customer: str = "", action: str = "", before: int | None = None
) -> tuple[list[ActionLog], int | None]:
    """Newest audit rows first, by keyset on the sequence; returns the rows and the next cursor."""
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


def audit_actions() -> list[str]:
    return list(ActionLog.objects.order_by("action").values_list("action", flat=True).distinct())
