"""The dashboard over more than 92 days: one column a month, whole months read by month."""

import random
import re
from datetime import date, timedelta

import pytest

from tickets.models import STAT_FIELDS, Ticket
from tickets.selectors.dashboard import (
    DASHBOARD_DAILY_MAX_DAYS,
    DayRange,
    MonthPart,
    dashboard_figures,
    dashboard_last_days,
    dashboard_today,
    month_parts,
)
from tickets.services.stats import stat_rows_add

K = Ticket.Kind
pytestmark = pytest.mark.django_db

FIRST_DAY, LAST_DAY = date(2025, 5, 1), date(2027, 2, 28)
# What both readings must give alike: everything but the chart's columns.
SAME_BOTH_WAYS = (
    "created_by_kind",
    "staff_kinds",
    "staff_kinds_total",
    "self_closing_kinds",
    "total",
    "sla",
    "by_agent",
    "resolved_by_agent",
)


def random_daily_rows(rng: random.Random, agents: list[int]) -> dict:
    """Daily figures on random days from May 2025 to February 2027, added as the services do."""
    rows: dict = {}
    day = FIRST_DAY
    while day <= LAST_DAY:
        for _ in range(rng.choice([0, 0, 1, 3, 6])):
            key = (day, rng.choice(list(K)).value, rng.choice(agents))
            amounts = {field: rng.randint(0, 5) for field in STAT_FIELDS}
            amounts["first_response_seconds"] = amounts["first_responses"] * rng.randint(1, 9000)
            amounts["resolution_seconds"] = amounts["resolved"] * rng.randint(1, 90000)
            row = rows.setdefault(key, dict.fromkeys(STAT_FIELDS, 0))
            for field in STAT_FIELDS:
                row[field] += amounts[field]
        day += timedelta(days=1)
    keys = sorted(rows)
    for batch in range(0, len(keys), 500):
        stat_rows_add({key: rows[key] for key in keys[batch : batch + 500]})
    return rows


def ranges(rng: random.Random) -> list[DayRange]:
    chosen = [
        DayRange(date(2025, 12, 15), date(2026, 1, 10)),  # across the new year, no whole month
        DayRange(date(2026, 3, 3), date(2026, 3, 27)),  # within one month
        DayRange(date(2026, 3, 1), date(2026, 3, 31)),  # exactly one month
        DayRange(date(2026, 2, 1), date(2026, 4, 30)),  # whole months only
        DayRange(date(2025, 11, 17), date(2026, 2, 17)),  # 93 days, mid-month to mid-month
        DayRange(date(2025, 12, 8), date(2026, 12, 8)),  # 366 days across a year
        DayRange(date(2026, 1, 31), date(2026, 3, 1)),  # a day at each end
        DayRange(date(2026, 6, 30), date(2026, 6, 30)),  # one day
    ]
    for _ in range(40):
        start = FIRST_DAY + timedelta(days=rng.randint(0, 600))
        end = min(start + timedelta(days=rng.choice([0, 20, 45, 92, 93, 200, 365])), LAST_DAY)
        chosen.append(DayRange(start, end))
    return chosen


def daily_sums(rows: dict, days: DayRange) -> dict:
    """The rows of `days` summed by kind, and the created and resolved by month."""
    per_kind: dict = {}
    per_month: dict = {}
    for (day, kind, _agent), amounts in rows.items():
        if days.start <= day <= days.end:
            row = per_kind.setdefault(kind, dict.fromkeys(STAT_FIELDS, 0))
            for field in STAT_FIELDS:
                row[field] += amounts[field]
            created, resolved = per_month.get(day.replace(day=1), (0, 0))
            per_month[day.replace(day=1)] = (
                created + amounts["created"],
                resolved + amounts["resolved"],
            )
    return {"per_kind": per_kind, "per_month": per_month}


@pytest.mark.parametrize("seed", [1, 2])
def test_the_figures_read_by_month_equal_those_read_by_day(seed, agent, supervisor):
    # given random daily rows over 22 months, and so their monthly rows
    rng = random.Random(seed)
    rows = random_daily_rows(rng, [0, agent.pk, supervisor.pk])

    for days in ranges(rng):
        # when the same range is read both ways
        monthly = dashboard_figures(days=days, by_month=True)
        daily = dashboard_figures(days=days, by_month=False)

        # then every total is the same, and each month's column holds its days of the range
        for name in SAME_BOTH_WAYS:
            assert monthly[name] == daily[name], (days, name)
        expected = daily_sums(rows, days)
        for row in monthly["staff_kinds"] + monthly["self_closing_kinds"]:
            kind = next(k for k in K if str(k.label) == row["label"])
            sums = expected["per_kind"].get(kind.value, dict.fromkeys(STAT_FIELDS, 0))
            assert (row["created"], row["resolved"], row["sla_met"], row["closed"]) == (
                sums["created"],
                sums["resolved"],
                sums["sla_met"],
                sums["closed"],
            )
        columns = [
            (part.first, created, resolved)
            for (part, created), (_part, resolved) in zip(
                monthly["created_per_month"], monthly["resolved_per_month"], strict=True
            )
        ]
        assert columns == [
            (part.first, *expected["per_month"].get(part.first.replace(day=1), (0, 0)))
            for part in month_parts(days)
        ]
        per_day = {
            month: sum(n for day, n in daily["created_per_day"] if day.replace(day=1) == month)
            for month in {day.replace(day=1) for day, _n in daily["created_per_day"]}
        }
        assert {part.first.replace(day=1): n for part, n in monthly["created_per_month"]} == (
            per_day
        )


def test_month_parts_cover_the_range_day_for_day():
    parts = month_parts(DayRange(date(2025, 12, 8), date(2026, 12, 8)))

    assert len(parts) == 13
    assert parts[0] == MonthPart(date(2025, 12, 8), date(2025, 12, 31))
    assert parts[1] == MonthPart(date(2026, 1, 1), date(2026, 1, 31))
    assert parts[2].last == date(2026, 2, 28)
    assert parts[-1] == MonthPart(date(2026, 12, 1), date(2026, 12, 8))
    assert [part.whole for part in parts] == [False] + [True] * 11 + [False]
    assert sum((part.last - part.first).days + 1 for part in parts) == 366


def test_ranges_of_92_days_or_fewer_are_read_and_drawn_by_day():
    short = dashboard_figures(days=dashboard_last_days(DASHBOARD_DAILY_MAX_DAYS))
    longer = dashboard_figures(days=dashboard_last_days(DASHBOARD_DAILY_MAX_DAYS + 1))

    assert (short["by_month"], len(short["created_per_day"]), short["created_per_month"]) == (
        False,
        92,
        [],
    )
    assert (longer["by_month"], longer["created_per_day"]) == (True, [])
    assert len(longer["created_per_month"]) in (4, 5)


# --- the page -----------------------------------------------------------------------------


def test_a_year_is_drawn_one_column_a_month_each_with_its_table_row(agent_client, time_machine):
    # given tickets made on 8 December 2025, 1 March 2026 and 7 December 2026
    time_machine.move_to("2026-12-07 10:00:00+00:00", tick=False)

    def amounts(**counts: int) -> dict[str, int]:
        return dict.fromkeys(STAT_FIELDS, 0) | counts

    stat_rows_add(
        {
            (date(2025, 12, 8), K.GENERAL.value, 0): amounts(created=2),
            (date(2026, 3, 1), K.GENERAL.value, 0): amounts(created=5, resolved=1),
            (date(2026, 12, 7), K.OPT_OUT.value, 0): amounts(created=1),
            (date(2025, 12, 7), K.GENERAL.value, 0): amounts(created=50),  # the day before
        }
    )

    # when the last 365 days are asked for
    response = agent_client.get("/staff/dashboard/?range=custom&start=2025-12-08&end=2026-12-07")

    # then both column charts have 13 months, the first and last only in part, said so
    page = response.content.decode()
    assert response.status_code == 200
    assert "Created per month" in page and "Created per day" not in page
    assert page.count('<rect class="column"') == 2 * 13
    assert page.count('role="img"') == page.count("<svg") - page.count('<svg class="icon') - 1
    assert re.findall(r'class="chart-total">(\d+) in all, at most (\d+) a month', page) == [
        ("8", "5"),
        ("1", "1"),
    ]
    assert page.count("A month only partly in the range counts only its days in the range.") == 4
    created = page.split('id="chart-created-title"')[1].split("</table>")[0]
    rows = re.findall(r'<tr><th scope="row">(.*?)</th><td>(\d+)</td></tr>', created)
    assert len(rows) == 13
    assert rows[0] == ('<time datetime="2025-12">Dec 2025</time>, 8 Dec to 31 Dec only', "2")
    assert rows[3] == ('<time datetime="2026-03">Mar 2026</time>', "5")
    assert rows[-1] == ('<time datetime="2026-12">Dec 2026</time>, 1 Dec to 7 Dec only', "1")
    assert "<title>Dec 2025, 8 Dec to 31 Dec only: 2</title>" in created
    assert "Numbers per month" in page
    by_kind = page.split('id="by-kind"')[1].split("</table>")[0]
    assert f'<th scope="row">{K.GENERAL.label}</th><td>7</td><td>1</td><td>0</td>' in by_kind


def test_a_range_of_whole_months_says_nothing_of_parts(agent_client, time_machine):
    time_machine.move_to("2026-12-07 10:00:00+00:00", tick=False)

    response = agent_client.get("/staff/dashboard/?range=custom&start=2026-01-01&end=2026-06-30")

    page = response.content.decode()
    assert page.count('<rect class="column"') == 2 * 6
    assert "only partly" not in page and " only</th>" not in page


def test_the_month_chart_is_in_malay(agent_client):
    from django.conf import settings

    agent_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ms"
    today = dashboard_today()
    start = today - timedelta(days=200)

    page = agent_client.get(f"/staff/dashboard/?range=custom&start={start}&end={today}")

    html = page.content.decode()
    assert 'lang="ms"' in html
    for malay in ("Dicipta setiap bulan", "Bilangan setiap bulan", "paling banyak 0 sebulan"):
        assert malay in html
    assert "dikira untuk hari-harinya dalam julat sahaja" in html  # 201 days: a month in part
    assert "hingga" in html and " sahaja</th>" in html
    for english in ("Created per month", "Numbers per month", "a month", "only partly", " only<"):
        assert english not in html
