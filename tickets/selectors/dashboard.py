"""The staff dashboard's figures."""

from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F
from django.db.models.functions import TruncDate
from django.utils import timezone

from tickets.models import OPEN_STATUSES, Notification, Ticket
from tickets.selectors.queue import open_q
from tickets.selectors.satisfaction import satisfaction_figures

DASHBOARD_DAYS = 30


def _day_series(rows: dict[Any, int], days: list[date]) -> list[tuple[Any, int]]:
    return [(day, rows.get(day, 0)) for day in days]


def _tickets_per_day(field: str, *, since: datetime) -> dict[Any, int]:
    """How many tickets have `field` (a datetime) on each day since `since`."""
    return dict(
        Ticket.objects.filter(**{f"{field}__gte": since})
        .annotate(day=TruncDate(field))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )


def dashboard_figures(*, now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard draws, in a fixed number of aggregate queries."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    days = [today - timedelta(days=n) for n in range(DASHBOARD_DAYS - 1, -1, -1)]
    since = now - timedelta(days=DASHBOARD_DAYS)
    start_of_window = timezone.make_aware(datetime.combine(days[0], datetime.min.time()))

    by_kind: dict[str, int] = dict.fromkeys(Ticket.Kind.values, 0)
    by_status: dict[str, int] = {str(s): 0 for s in Ticket.Status if s in OPEN_STATUSES}
    open_rows = (
        Ticket.objects.filter(open_q()).values("kind", "status").annotate(n=Count("id")).order_by()
    )
    for row in open_rows:
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["n"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]

    created = _tickets_per_day("created_at", since=start_of_window)
    resolved = _tickets_per_day("resolved_at", since=start_of_window)

    durations = Ticket.objects.filter(resolved_at__gte=since, resolved_at__isnull=False).annotate(
        took=ExpressionWrapper(F("resolved_at") - F("created_at"), DurationField())
    )
    resolved_count = durations.count()
    median = None
    if resolved_count:
        middle = list(
            durations.order_by("took").values_list("took", flat=True)[
                (resolved_count - 1) // 2 : resolved_count // 2 + 1
            ]
        )
        median = sum(middle, timedelta()) / len(middle)

    problem_statuses = [Notification.Status.FAILED, Notification.Status.BOUNCED]
    problems = Notification.objects.filter(status__in=problem_statuses, updated_at__gte=since)
    problem_counts = dict.fromkeys(problem_statuses, 0) | dict(
        problems.values("status").annotate(n=Count("id")).order_by().values_list("status", "n")
    )
    recent_problems = list(problems.select_related("ticket").order_by("-updated_at", "-id")[:10])
    return {
        "open_by_kind": [(Ticket.Kind(k).label, n) for k, n in by_kind.items()],
        "open_by_status": [(Ticket.Status(s).label, n) for s, n in by_status.items()],
        "created_per_day": _day_series(created, days),
        "resolved_per_day": _day_series(resolved, days),
        "median_time_to_resolve": median,
        "resolved_count": resolved_count,
        "notification_problems": [
            (Notification.Status(s).label, n) for s, n in problem_counts.items()
        ],
        "recent_notification_problems": recent_problems,
        "satisfaction": satisfaction_figures(since=since),
        "days": DASHBOARD_DAYS,
    }
