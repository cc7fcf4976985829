"""Reads for satisfaction answers: a ticket's answer, and the dashboard's figures."""

from datetime import datetime
from typing import Any

from django.db.models import Count, Q

from tickets.models import Satisfaction, Ticket


def satisfaction_current(*, ticket_id: int) -> Satisfaction | None:
    return Satisfaction.objects.filter(ticket_id=ticket_id).first()


def _share(yes: int, total: int) -> int | None:
    return round(100 * yes / total) if total else None


def satisfaction_figures(
    *, since: datetime, until: datetime | None = None, agent_id: int | None = None
) -> dict[str, Any]:
    """Answers from `since` to before `until` by ticket kind and by agent: count, yes, share (%).

    :param agent_id: list only this staff member among the agents (None: everyone).
    One aggregate query whatever the number of answers, kinds or agents.
    """
    answers = Satisfaction.objects.filter(answered_at__gte=since)
    if until is not None:
        answers = answers.filter(answered_at__lt=until)
    rows = (
        answers.values("ticket__kind", "agent_id", "agent__username")
        .annotate(total=Count("id"), yes=Count("id", filter=Q(answer=Satisfaction.Answer.YES)))
        .order_by()
    )
    kinds: dict[str, list[int]] = {}
    agents: dict[int | None, list[Any]] = {}
    for row in rows:
        kind = kinds.setdefault(row["ticket__kind"], [0, 0])
        kind[0] += row["total"]
        kind[1] += row["yes"]
        agent = agents.setdefault(row["agent_id"], [row["agent__username"] or "", 0, 0])
        agent[1] += row["total"]
        agent[2] += row["yes"]
    by_kind = [
        {"label": Ticket.Kind(k).label, "count": t, "yes": y, "share": _share(y, t)}
        for k, (t, y) in sorted(kinds.items())
    ]
    by_agent = sorted(
        (
            {"label": name, "count": t, "yes": y, "share": _share(y, t)}
            for key, (name, t, y) in agents.items()
            if agent_id is None or key == agent_id
        ),
        key=lambda r: (r["label"] == "", r["label"]),
    )
    total = sum(t for t, _y in kinds.values())
    yes = sum(y for _t, y in kinds.values())
    return {
        "by_kind": by_kind,
        "by_agent": by_agent,
        "count": total,
        "share": _share(yes, total),
    }
