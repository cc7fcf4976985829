"""The staff dashboard's figures: read from the daily and monthly rows, never from the tickets."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count, Q, Sum, Window
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.selectors import is_supervisor
from tickets.models import (
    STAT_FIELDS,
    Notification,
    Ticket,
    TicketDailyStat,
    TicketMonthlyStat,
)
from tickets.months import next_month
from tickets.selectors.satisfaction import satisfaction_figures

K = Ticket.Kind
# Kinds the system mostly finishes by itself within seconds (the OpenSRS resend, an opt-out):
# their times are shown apart, so they do not hide how long people take.
SELF_CLOSING_KINDS = (K.RESEND_PASSWORD, K.OPT_OUT)
STAFF_KINDS = tuple(kind for kind in K if kind not in SELF_CLOSING_KINDS)
DASHBOARD_RANGES = (7, 30, 90)
DASHBOARD_DEFAULT_DAYS = 30
# A custom range covers at most this many days.
DASHBOARD_MAX_DAYS = 366
# A longer range is drawn one column a month (a year's 366 days are no chart one can read), and
# its whole months are read from the monthly rows.
DASHBOARD_DAILY_MAX_DAYS = 92
RECENT_MAIL_PROBLEMS = 10


@dataclass(frozen=True)
class DayRange:
    """Days `start` to `end`, both included, in the help desk's time zone."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def moments(self) -> tuple[datetime, datetime]:
        """The first instant of `start` and the first instant after `end`."""
        zone = timezone.get_default_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone),
        )


@dataclass(frozen=True)
class MonthPart:
    """The days `first` to `last` of one month that a range covers: all of them or some."""

    first: date
    last: date

    @property
    def whole(self) -> bool:
        return self.first.day == 1 and (self.last + timedelta(days=1)).day == 1


def month_parts(days: DayRange) -> list[MonthPart]:
    """The months `days` reaches into, each with its days in the range."""
    parts = []
    first = days.start
    while first <= days.end:
        following = next_month(first)
        parts.append(MonthPart(first=first, last=min(following - timedelta(days=1), days.end)))
        first = following
    return parts


def dashboard_today() -> date:
    return timezone.localtime(timezone.now(), timezone.get_default_timezone()).date()


def dashboard_last_days(days: int, *, today: date | None = None) -> DayRange:
    """The `days` days that end today."""
    end = today or dashboard_today()
    return DayRange(start=end - timedelta(days=days - 1), end=end)


def _average(seconds: int, count: int) -> timedelta | None:
    return timedelta(seconds=round(seconds / count)) if count else None


def _share(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def _times(label: str, sums: dict[str, int]) -> dict[str, Any]:
    """A table row of counts and average times from summed daily rows."""
    judged = sums["sla_met"] + sums["sla_breached"]
    return {
        "label": label,
        "created": sums["created"],
        "first_responses": sums["first_responses"],
        "first_response": _average(sums["first_response_seconds"], sums["first_responses"]),
        "resolved": sums["resolved"],
        "resolution": _average(sums["resolution_seconds"], sums["resolved"]),
        "sla_met": sums["sla_met"],
        "sla_breached": sums["sla_breached"],
        "sla_share": _share(sums["sla_met"], judged),
        "closed": sums["closed"],
    }


def _total(rows: list[dict[str, int]]) -> dict[str, int]:
    return {field: sum(row[field] for row in rows) for field in STAT_FIELDS}


def _agent_names(keys: list[int]) -> dict[int, str]:
    users = get_user_model().objects.filter(pk__in=keys).only("username", "first_name", "last_name")
    return {user.pk: user.get_full_name().strip() or user.get_username() for user in users}


_MAIL_PROBLEMS = (Notification.Status.FAILED, Notification.Status.BOUNCED)


def _mail_problems(low: datetime, high: datetime) -> tuple[dict[str, int], list[Notification]]:
    """Failed and bounced mail between `low` and `high`: how many of each, and the latest.

    One query: each of the latest rows carries the counts of all (none: nothing to count).
    """
    counts = {
        f"{status}_count": Window(Count("id", filter=Q(status=status))) for status in _MAIL_PROBLEMS
    }
    recent = list(
        Notification.objects.filter(
            status__in=_MAIL_PROBLEMS, updated_at__gte=low, updated_at__lt=high
        )
        .select_related("ticket")
        .annotate(**counts)
        .order_by("-updated_at", "-id")[:RECENT_MAIL_PROBLEMS]
    )
    counted = {
        str(status): getattr(recent[0], f"{status}_count") if recent else 0
        for status in _MAIL_PROBLEMS
    }
    return counted, recent


def _by_kind_and_agent(
    rows: Iterable[dict[str, Any]], *, agent_id: int | None
) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """The summed figures of each kind, and the table rows of each agent (or of `agent_id`).

    `rows` are sums by kind and agent (a few dozen whatever the range; a kind and agent may
    come more than once, from the monthly and the daily rows), read in one query.
    """
    per_kind: dict[str, dict[str, int]] = {kind: dict.fromkeys(STAT_FIELDS, 0) for kind in K.values}
    per_agent: dict[int, dict[str, int]] = {}
    for row in rows:
        of_kind = per_kind.setdefault(row["kind"], dict.fromkeys(STAT_FIELDS, 0))
        of_agent = per_agent.setdefault(row["agent_key"], dict.fromkeys(STAT_FIELDS, 0))
        for field in STAT_FIELDS:
            of_kind[field] += row[field]
            of_agent[field] += row[field]
    # Created tickets are counted for nobody: an agent row with nothing else is left out.
    agent_rows = {
        key: figures
        for key, figures in per_agent.items()
        if (figures["first_responses"] or figures["resolved"] or figures["closed"])
        and (agent_id is None or key == agent_id)
    }
    names = _agent_names([key for key in agent_rows if key])
    by_agent = sorted(
        (_times(names.get(key, ""), figures) for key, figures in agent_rows.items()),
        key=lambda row: (row["label"] == "", row["label"].lower()),
    )
    return per_kind, by_agent


_SUMS = {field: Sum(field) for field in STAT_FIELDS}


def _daily_reads(days: DayRange) -> tuple[dict[date, tuple[int, int]], Iterable[dict[str, Any]]]:
    """Created and resolved per day, and the sums by kind and agent, from the daily rows."""
    in_range = TicketDailyStat.objects.filter(day__gte=days.start, day__lte=days.end).order_by()
    per_day = {
        day: (created, resolved)
        for day, created, resolved in in_range.values_list("day")
        .annotate(Sum("created"), Sum("resolved"))
        .values_list("day", "created__sum", "resolved__sum")
    }
    return per_day, in_range.values("kind", "agent_key").annotate(**_SUMS)


def _monthly_reads(
    days: DayRange,
) -> tuple[dict[date, tuple[int, int]], Iterable[dict[str, Any]]]:
    """Created and resolved per month (its first day), and the sums by kind and agent.

    The months `days` covers whole are read from the monthly rows, the days of the months at
    its ends from the daily rows: each figure in one query (a UNION ALL of the two), about 530
    monthly and at most 60 days' rows for a year instead of 16,000 daily rows.
    """
    parts = month_parts(days)
    whole = [part.first for part in parts if part.whole]
    # Whole months [low, high); none: both past the end, so the daily rows cover the range.
    low, high = (whole[0], next_month(whole[-1])) if whole else (days.end + timedelta(days=1),) * 2
    months = TicketMonthlyStat.objects.filter(month__gte=low, month__lt=high).order_by()
    edges = TicketDailyStat.objects.filter(
        Q(day__gte=days.start, day__lt=low) | Q(day__gte=high, day__lte=days.end)
    ).order_by()
    per_month: dict[date, tuple[int, int]] = {}
    counts = (Sum("created"), Sum("resolved"))
    for when, created, resolved in (
        months.values_list("month")
        .annotate(*counts)
        .values_list("month", "created__sum", "resolved__sum")
        .union(
            edges.values_list("day")
            .annotate(*counts)
            .values_list("day", "created__sum", "resolved__sum"),
            all=True,
        )
    ):
        month = when.replace(day=1)
        before = per_month.get(month, (0, 0))
        per_month[month] = (before[0] + created, before[1] + resolved)
    by_kind_and_agent = (
        months.values("kind", "agent_key")
        .annotate(**_SUMS)
        .union(edges.values("kind", "agent_key").annotate(**_SUMS), all=True)
    )
    return per_month, by_kind_and_agent


def dashboard_figures(
    *, days: DayRange, reader: User | None = None, by_month: bool | None = None
) -> dict[str, Any]:
    """Everything the dashboard draws for `days`, from the daily and monthly rows and the outbox.

    :param reader: the staff member it is drawn for: a supervisor sees every agent's row, an
        agent the team's figures and their own row (None: every row, for reports and tests).
    :param by_month: one column a month instead of a day (None: for ranges over 92 days).
    Queries: rows by day or month; by kind and agent; the agents' names; the latest failed and
    bounced mail with their counts; satisfaction answers. Whatever the number of tickets.
    """
    if by_month is None:
        by_month = days.days > DASHBOARD_DAILY_MAX_DAYS
    per_period, by_kind_and_agent = (_monthly_reads if by_month else _daily_reads)(days)
    agent_id = None if reader is None or is_supervisor(reader) else reader.pk
    per_kind, by_agent = _by_kind_and_agent(by_kind_and_agent, agent_id=agent_id)
    low, high = days.moments()
    counted, recent = _mail_problems(low, high)

    calendar = [] if by_month else [days.start + timedelta(days=n) for n in range(days.days)]
    parts = month_parts(days) if by_month else []
    staff_kinds = [_times(str(K(kind).label), per_kind[kind]) for kind in STAFF_KINDS]
    self_closing = [_times(str(K(kind).label), per_kind[kind]) for kind in SELF_CLOSING_KINDS]
    everything = _total(list(per_kind.values()))
    return {
        "days": days,
        "by_month": by_month,
        "created_per_day": [(day, per_period.get(day, (0, 0))[0]) for day in calendar],
        "resolved_per_day": [(day, per_period.get(day, (0, 0))[1]) for day in calendar],
        "created_per_month": [
            (part, per_period.get(part.first.replace(day=1), (0, 0))[0]) for part in parts
        ],
        "resolved_per_month": [
            (part, per_period.get(part.first.replace(day=1), (0, 0))[1]) for part in parts
        ],
        "created_by_kind": [(K(kind).label, per_kind[kind]["created"]) for kind in K.values],
        "staff_kinds": staff_kinds,
        "staff_kinds_total": _times("", _total([per_kind[kind] for kind in STAFF_KINDS])),
        "self_closing_kinds": self_closing,
        "total": _times("", everything),
        "sla": [
            (_("Met"), everything["sla_met"]),
            (_("Breached"), everything["sla_breached"]),
        ],
        "by_agent": by_agent,
        "resolved_by_agent": [(row["label"], row["resolved"]) for row in by_agent],
        "notification_problems": [
            (Notification.Status(status).label, counted[str(status)]) for status in _MAIL_PROBLEMS
        ],
        "recent_notification_problems": recent,
        "satisfaction": satisfaction_figures(since=low, until=high, agent_id=agent_id),
    }
