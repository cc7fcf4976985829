"""The outbox's backlog, for readiness and metrics."""

from datetime import datetime

from django.db.models import Count, Min

from tickets.models import Notification


def outbox_oldest_pending_at() -> datetime | None:
    """When the oldest notification not yet sent was made (the partial index `notification_due`)."""
    oldest: datetime | None = Notification.objects.filter(
        status=Notification.Status.PENDING
    ).aggregate(oldest=Min("created_at"))["oldest"]
    return oldest


def outbox_counts() -> dict[str, int]:
    """Notifications waiting to be sent (`pending`) and given up on (`failed`)."""
    statuses = [Notification.Status.PENDING, Notification.Status.FAILED]
    rows = (
        Notification.objects.filter(status__in=statuses)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {str(status): 0 for status in statuses} | dict(rows)
