"""The dashboard: daily figures kept by the services, equal to a rebuild, and the page."""

import random
import re
import threading
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Min
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.roles import AGENTS
from accounts.services import staff_user_ensure
from helpdesk.exceptions import ApplicationError
from tests.factories import CustomerFactory, TicketFactory, UserFactory, staff_reply
from tests.markers import postgresql_only
from tickets import services, tasks
from tickets.models import STAT_FIELDS, Notification, Ticket, TicketDailyStat, TicketMonthlyStat
from tickets.selectors.dashboard import (
    RECENT_MAIL_PROBLEMS,
    DayRange,
    dashboard_figures,
    dashboard_last_days,
    dashboard_today,
)
from tickets.services.stats import (
    stat_day,
    stat_rows_add,
    ticket_stats_rebuild,
)

S = Ticket.Status
K = Ticket.Kind
pytestmark = pytest.mark.django_db


def stored() -> dict:
    """The daily rows as {(day, kind, agent): {field: n}}, leaving out rows of zeros."""
    rows = {}
    for row in TicketDailyStat.objects.values("day", "kind", "agent_key", *STAT_FIELDS):
        amounts = {field: row[field] for field in STAT_FIELDS}
        if any(amounts.values()):
            rows[(row["day"], row["kind"], row["agent_key"])] = amounts
    return rows


def monthly() -> dict:
    """The monthly rows as {(month, kind, agent): {field: n}}, leaving out rows of zeros."""
    rows = {}
    for row in TicketMonthlyStat.objects.values("month", "kind", "agent_key", *STAT_FIELDS):
        amounts = {field: row[field] for field in STAT_FIELDS}
        if any(amounts.values()):
            rows[(row["month"], row["kind"], row["agent_key"])] = amounts
    return rows


def by_month(daily: dict) -> dict:
    """Daily rows as `stored` gives them, summed by month: what the monthly rows must be."""
    rows: dict = {}
    for (day, kind, agent), amounts in daily.items():
        row = rows.setdefault((day.replace(day=1), kind, agent), dict.fromkeys(STAT_FIELDS, 0))
        for field in STAT_FIELDS:
            row[field] += amounts[field]
    return {key: row for key, row in rows.items() if any(row.values())}


def rebuild_all() -> None:
    first = Ticket.objects.aggregate(first=Min("created_at"))["first"]
    start = stat_day(first) if first else dashboard_today()
    ticket_stats_rebuild(start=start - timedelta(days=1), end=dashboard_today() + timedelta(days=1))


def new_ticket(kind=K.GENERAL, **kwargs) -> Ticket:
    customer = kwargs.pop("customer", None) or CustomerFactory()
    return services.ticket_create(
        kind=kind,
        subject="Help",
        actor=customer,
        customer=customer,
        contact_email=customer.email,
        status=S.OPEN,
        verified_by="session" if kind == K.MODIFY_INFO else "",
        **kwargs,
    )


# --- kept up to date by the services ------------------------------------------------------


def test_a_created_ticket_counts_on_its_day_for_nobody():
    ticket = new_ticket(K.MODIFY_INFO)

    row = TicketDailyStat.objects.get()
    assert (row.day, row.kind, row.agent_key, row.created) == (
        stat_day(ticket.created_at),
        K.MODIFY_INFO,
        0,
        1,
    )


def test_the_first_staff_reply_counts_once_for_who_sent_it(agent, supervisor, time_machine):
    # given a ticket created 3 hours before the first reply
    time_machine.move_to("2026-11-02 01:00:00+00:00", tick=False)
    ticket = new_ticket()
    time_machine.shift(timedelta(hours=3))

    # when an internal note, then two replies, are added
    staff_reply(ticket, agent, "note", internal=True)
    for user in (supervisor, agent):
        staff_reply(ticket, user, "Hello")

    # then only the supervisor's reply is the first response
    ticket.refresh_from_db()
    assert ticket.first_response_by == supervisor
    row = TicketDailyStat.objects.get(agent_key=supervisor.pk)
    assert (row.first_responses, row.first_response_seconds) == (1, 3 * 3600)
    assert not TicketDailyStat.objects.filter(agent_key=agent.pk).exists()


def test_a_reopened_ticket_stops_counting_as_resolved_on_its_old_day(agent, time_machine):
    # given a ticket resolved on 2 November, then reopened on the 4th
    time_machine.move_to("2026-11-02 02:00:00+00:00", tick=False)
    ticket = new_ticket()
    services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    time_machine.shift(timedelta(hours=2))
    services.ticket_resolve(ticket=ticket, actor=agent)
    resolved_day = dashboard_today()
    assert TicketDailyStat.objects.get(day=resolved_day, agent_key=agent.pk).resolved == 1
    time_machine.shift(timedelta(days=2))

    # when
    services.ticket_reopen(ticket=ticket, actor=agent)

    # then
    old = TicketDailyStat.objects.get(day=resolved_day, agent_key=agent.pk)
    assert (old.resolved, old.resolution_seconds, old.sla_met) == (0, 0, 0)


def test_a_resolution_after_the_due_time_counts_as_breached(agent, time_machine):
    time_machine.move_to("2026-11-02 02:00:00+00:00", tick=False)
    late = new_ticket(priority=Ticket.Priority.URGENT)
    in_time = new_ticket()
    time_machine.shift(late.due_at - timezone.now() + timedelta(minutes=1))

    services.ticket_resolve(ticket=late, actor=agent)
    services.ticket_resolve(ticket=in_time, actor=agent)

    row = TicketDailyStat.objects.get(agent_key=0, kind=K.GENERAL, day=dashboard_today())
    assert (row.resolved, row.sla_met, row.sla_breached) == (2, 1, 1)


def test_a_priority_change_after_resolution_is_refused_and_the_sla_verdict_stands(
    agent, time_machine
):
    # given a ticket resolved 30 hours in: within a low priority's time, not an urgent one's
    time_machine.move_to("2026-11-02 02:00:00+00:00", tick=False)
    ticket = new_ticket(priority=Ticket.Priority.LOW)
    time_machine.shift(timedelta(hours=30))
    services.ticket_resolve(ticket=ticket, actor=agent)
    ticket.refresh_from_db()
    due, before = ticket.due_at, stored()
    assert sum(r["sla_met"] for r in before.values()) == 1

    # when, the next day, its priority is raised
    time_machine.shift(timedelta(days=1))
    with pytest.raises(ApplicationError):
        services.ticket_priority_set(ticket=ticket, priority=Ticket.Priority.URGENT, actor=agent)

    # then the day it was resolved still says met, and its due time and priority are as they were
    assert stored() == before
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.due_at) == (Ticket.Priority.LOW, due)


ACTIONS = ["create", "reply", "customer_reply", "resolve", "reopen", "close", "assign"]
ACTIONS += ["priority", "reject", "merge", "note"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_rows_equal_a_rebuild_after_any_mix_of_actions(seed, agent, supervisor, time_machine):
    # given a random run of service calls over about three weeks, across midnights and the
    # end of October
    rng = random.Random(seed)
    time_machine.move_to("2026-10-22 08:00:00+00:00", tick=False)
    staff = [agent, supervisor]
    customer = CustomerFactory()
    tickets: list[Ticket] = []
    done = 0
    for _step in range(120):
        time_machine.shift(timedelta(minutes=rng.randint(1, 600)))
        action = "create" if len(tickets) < 3 else rng.choice(ACTIONS)
        user = rng.choice(staff)
        ticket = rng.choice(tickets) if tickets else None
        try:
            if action == "create":
                tickets.append(
                    new_ticket(
                        rng.choice(list(K)),
                        customer=customer,
                        priority=rng.choice(list(Ticket.Priority)),
                    )
                )
            elif action in ("reply", "note", "customer_reply"):
                staff_author = action != "customer_reply"
                services.ticket_reply_add(
                    ticket=ticket,
                    body="text",
                    actor=user if staff_author else customer,
                    author="staff" if staff_author else "customer",
                    channel="staff" if staff_author else "portal",
                    author_user=user if staff_author else None,
                    internal=action == "note",
                )
            elif action == "resolve":
                services.ticket_resolve(ticket=ticket, actor=user)
            elif action == "reopen":
                services.ticket_reopen(ticket=ticket, actor=user)
            elif action == "close":
                services.ticket_close(ticket=ticket, actor=user)
            elif action == "assign":
                services.ticket_assign(
                    ticket=ticket, assignee=rng.choice([*staff, None]), actor=user
                )
            elif action == "priority":
                priority = rng.choice(list(Ticket.Priority))
                services.ticket_priority_set(ticket=ticket, priority=priority, actor=user)
            elif action == "reject":
                services.ticket_reject(ticket=ticket, actor=user, reason="No.")
            elif action == "merge":
                services.ticket_merge(ticket=ticket, into=rng.choice(tickets), actor=user)
            done += 1
        except ApplicationError:  # not allowed in the ticket's state: nothing changed
            pass

    # when the rows are rebuilt from the tickets
    kept = stored()
    months_kept = monthly()
    rebuild_all()

    # then they are the same, each month's rows are its daily rows summed, before the rebuild
    # and after, and the run did reach every event
    assert stored() == kept
    assert months_kept == by_month(kept) == monthly()
    assert {month for month, _kind, _agent in months_kept} == {date(2026, 10, 1), date(2026, 11, 1)}
    assert done > 60
    totals = {field: sum(row[field] for row in kept.values()) for field in STAT_FIELDS}
    assert totals["created"] == len(tickets)
    assert totals["first_responses"] and totals["resolved"] and totals["closed"]


def test_the_rebuild_leaves_the_days_outside_its_range_alone(time_machine):
    time_machine.move_to("2026-11-02 02:00:00+00:00", tick=False)
    new_ticket()
    time_machine.shift(timedelta(days=3))
    new_ticket()
    TicketDailyStat.objects.update(created=7)

    written = ticket_stats_rebuild(start=dashboard_today(), end=dashboard_today())

    assert written == 1
    assert sorted(TicketDailyStat.objects.values_list("created", flat=True)) == [1, 7]
    assert monthly() == by_month(stored())


def test_the_rebuild_sums_the_months_it_touches_again_from_the_daily_rows(time_machine):
    # given tickets on 30 October and 2 November, and monthly rows gone wrong or missing
    for moment in ("2026-10-30 02:00:00+00:00", "2026-11-02 02:00:00+00:00"):
        time_machine.move_to(moment, tick=False)
        new_ticket()
    TicketMonthlyStat.objects.filter(month=date(2026, 10, 1)).update(created=9)
    TicketMonthlyStat.objects.filter(month=date(2026, 11, 1)).delete()

    # when the days from 31 October to 1 November are rebuilt
    ticket_stats_rebuild(start=date(2026, 10, 31), end=date(2026, 11, 1))

    # then both months are their daily rows again
    assert {month: row["created"] for (month, _k, _a), row in monthly().items()} == {
        date(2026, 10, 1): 1,
        date(2026, 11, 1): 1,
    }
    assert monthly() == by_month(stored())


def test_the_rebuild_command_reads_its_range(time_machine, capsys):
    time_machine.move_to("2026-11-02 02:00:00+00:00", tick=False)
    new_ticket()
    TicketDailyStat.objects.all().delete()

    call_command("rebuild_ticket_stats", "--from", "2026-11-01", "--to", "2026-11-02")

    assert TicketDailyStat.objects.get().created == 1
    assert "2026-11-01 to 2026-11-02: 1 daily rows" in capsys.readouterr().out


def test_the_nightly_rebuild_puts_the_last_days_right_and_twice_is_once(time_machine):
    # given tickets on 1, 3 and 4 November, and every daily row wrong or missing
    for day in ("2026-11-01", "2026-11-03", "2026-11-04"):
        time_machine.move_to(f"{day} 02:00:00+00:00", tick=False)
        new_ticket()
    TicketDailyStat.objects.update(created=7)
    TicketDailyStat.objects.filter(day=date(2026, 11, 4)).delete()

    # when the nightly task runs on the 5th, twice
    time_machine.move_to("2026-11-05 03:15:00+08:00", tick=False)
    first = tasks.ticket_stats_rebuild_recent()
    rows_after_first = stored()
    second = tasks.ticket_stats_rebuild_recent()

    # then the last 3 days (3 to 5 November) equal the tickets, the 1st is left alone
    assert first == second == 2
    assert stored() == rows_after_first
    assert {day: row["created"] for (day, _kind, _agent), row in stored().items()} == {
        date(2026, 11, 1): 7,
        date(2026, 11, 3): 1,
        date(2026, 11, 4): 1,
    }


def test_beat_runs_the_rebuild_every_night(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["ticket-stats-rebuild"]

    assert entry["task"] == tasks.ticket_stats_rebuild_recent.name
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {15})


@pytest.mark.parametrize(
    "arguments",
    [
        ["--from", "2026-13-01"],
        ["--to", "2026-11-01"],
        ["--from", "2026-11-03", "--to", "2026-11-01"],
    ],
)
def test_the_rebuild_command_refuses_bad_dates(arguments):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("rebuild_ticket_stats", *arguments)


# --- concurrency on PostgreSQL ------------------------------------------------------------


def _in_threads(count: int, work) -> list[Exception]:
    from django.db import close_old_connections

    errors: list[Exception] = []
    start = threading.Barrier(count)

    def run(n: int) -> None:
        close_old_connections()
        try:
            start.wait(10)
            work(n)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


@postgresql_only("a row lock that waits on another")
@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_new_rows_lose_nothing_and_never_deadlock():
    # Each transaction adds to two rows that do not exist yet, the threads naming them in
    # opposite orders: the first inserts race on the unique key, the later ones on the rows.
    day = date(2026, 11, 2)
    keys = [(day, K.GENERAL, 0), (day, K.OPT_OUT, 0)]

    def work(n: int) -> None:
        for _ in range(25):
            with transaction.atomic():
                ordered = keys if n % 2 else keys[::-1]
                stat_rows_add({key: dict.fromkeys(STAT_FIELDS, 1) for key in ordered})

    errors = _in_threads(6, work)

    assert errors == []
    assert sorted(TicketDailyStat.objects.values_list("created", "resolution_seconds")) == [
        (150, 150),
        (150, 150),
    ]
    assert sorted(TicketMonthlyStat.objects.values_list("created", "resolution_seconds")) == [
        (150, 150),
        (150, 150),
    ]


@postgresql_only("a row lock that waits on another")
@pytest.mark.django_db(transaction=True)
def test_concurrent_services_and_a_rebuild_keep_the_rows_equal_to_the_tickets():
    agent = staff_user_ensure(username="stats-agent", password="stats-agent-pass", role=AGENTS)
    customer = CustomerFactory()

    def work(n: int) -> None:
        if n == 0:
            for _ in range(5):
                ticket_stats_rebuild(start=dashboard_today(), end=dashboard_today())
            return
        for _ in range(8):
            ticket = new_ticket(customer=customer)
            staff_reply(ticket, agent, "Hello")
            services.ticket_resolve(ticket=ticket, actor=agent)

    errors = _in_threads(4, work)

    assert errors == []
    kept = stored()
    assert sum(row["created"] for row in kept.values()) == 24
    assert monthly() == by_month(kept)
    rebuild_all()
    assert stored() == kept
    assert monthly() == by_month(kept)


# --- the figures --------------------------------------------------------------------------


def make_resolved(created_ago: timedelta, took: timedelta, **kwargs) -> Ticket:
    created = timezone.now() - created_ago
    ticket = TicketFactory(status=S.RESOLVED, **kwargs)
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=created, resolved_at=created + took, due_at=created + timedelta(hours=8)
    )
    return ticket


def test_the_figures_count_created_and_resolved_per_day_over_the_range():
    # given three tickets resolved in 1, 2 and 9 hours, one of them created 3 days ago
    make_resolved(timedelta(hours=12), timedelta(hours=1))
    make_resolved(timedelta(hours=12), timedelta(hours=2))
    make_resolved(timedelta(days=3), timedelta(hours=9))
    make_resolved(timedelta(days=60), timedelta(hours=50))  # outside the window
    rebuild_all()

    # when
    figures = dashboard_figures(days=dashboard_last_days(30))

    # then
    created = figures["created_per_day"]
    assert len(created) == 30
    assert sum(n for _day, n in created) == 3
    assert created[-1][0] == dashboard_today()
    assert sum(n for _day, n in figures["resolved_per_day"]) == 3
    general = {row["label"]: row for row in figures["staff_kinds"]}[str(K.GENERAL.label)]
    assert general["resolution"] == timedelta(hours=4)
    assert (general["sla_met"], general["sla_breached"]) == (2, 1)
    longer = dashboard_figures(days=dashboard_last_days(90))["created_per_day"]
    assert (len(longer), sum(n for _day, n in longer)) == (90, 4)


def test_self_closing_kinds_are_kept_apart_from_the_staff_times():
    make_resolved(timedelta(hours=5), timedelta(seconds=20), kind=K.RESEND_PASSWORD)
    make_resolved(timedelta(hours=5), timedelta(seconds=40), kind=K.RESEND_PASSWORD)
    make_resolved(timedelta(hours=5), timedelta(hours=3), kind=K.GENERAL)
    rebuild_all()

    figures = dashboard_figures(days=dashboard_last_days(7))

    assert figures["staff_kinds_total"]["resolution"] == timedelta(hours=3)
    resend = {row["label"]: row for row in figures["self_closing_kinds"]}[
        str(K.RESEND_PASSWORD.label)
    ]
    assert (resend["resolved"], resend["resolution"]) == (2, timedelta(seconds=30))
    assert figures["total"]["resolved"] == 3


def test_the_figures_count_failed_and_bounced_notifications_in_the_range():
    for i, status in enumerate(["failed", "bounced", "bounced", "sent", "failed"]):
        Notification.objects.create(
            template="ticket_reply",
            recipient="a@example.test",
            status=status,
            idempotency_key=f"k{i}",
        )
    Notification.objects.filter(idempotency_key="k4").update(
        updated_at=timezone.now() - timedelta(days=10)
    )
    figures = dashboard_figures(days=dashboard_last_days(7))
    assert dict(figures["notification_problems"]) == {"Failed": 1, "Bounced": 2}
    assert len(figures["recent_notification_problems"]) == 3


def test_the_mail_problem_counts_include_more_than_the_latest_shown():
    # given more failed emails than the dashboard lists, and a bounced one before them
    Notification.objects.create(
        template="ticket_reply", recipient="b@example.test", status="bounced", idempotency_key="b"
    )
    for i in range(RECENT_MAIL_PROBLEMS + 2):
        Notification.objects.create(
            template="ticket_reply",
            recipient="a@example.test",
            status="failed",
            idempotency_key=f"f{i}",
        )

    # when
    figures = dashboard_figures(days=dashboard_last_days(7))

    # then every one is counted, the latest are listed
    assert dict(figures["notification_problems"]) == {
        "Failed": RECENT_MAIL_PROBLEMS + 2,
        "Bounced": 1,
    }
    assert len(figures["recent_notification_problems"]) == RECENT_MAIL_PROBLEMS
    assert {n.status for n in figures["recent_notification_problems"]} == {"failed"}


def test_an_agent_is_shown_only_their_own_row(agent, supervisor):
    make_resolved(timedelta(hours=5), timedelta(hours=1), assignee=agent)
    make_resolved(timedelta(hours=5), timedelta(hours=2), assignee=supervisor)
    rebuild_all()
    days = dashboard_last_days(7)

    everyone = dashboard_figures(days=days)["by_agent"]
    own = dashboard_figures(days=days, reader=agent)["by_agent"]
    supervisors = dashboard_figures(days=days, reader=supervisor)["by_agent"]

    assert [(row["label"], row["resolved"]) for row in everyone] == [
        ("agent", 1),
        ("supervisor", 1),
    ]
    assert [(row["label"], row["resolution"]) for row in own] == [("agent", timedelta(hours=1))]
    assert supervisors == everyone


@pytest.mark.parametrize("days", [90, 366])
@pytest.mark.parametrize("tickets", [2, 40])
def test_the_figures_take_a_fixed_number_of_queries_and_never_read_tickets(
    tickets, days, agent, django_assert_num_queries
):
    for n in range(tickets):
        make_resolved(timedelta(days=n * 9 % 360), timedelta(hours=1), assignee=agent)
        TicketFactory()
    rebuild_all()
    # daily rows by day (over 92 days: monthly and edge daily rows by month, one UNION) / by
    # kind and agent (likewise) / agents' names / the latest failed and bounced mail with their
    # counts / satisfaction answers by kind and agent
    with django_assert_num_queries(5) as captured:
        figures = dashboard_figures(days=dashboard_last_days(days))
    assert not [q for q in captured.captured_queries if 'FROM "tickets_ticket"' in q["sql"]]
    queries = captured.captured_queries
    reads_months = ['FROM "tickets_ticketmonthlystat"' in q["sql"] for q in queries]
    assert reads_months == [days > 92] * 2 + [False] * 3
    assert figures["by_month"] == (days > 92)


# --- the page -----------------------------------------------------------------------------


def test_the_dashboard_draws_svg_charts_each_with_its_table(agent_client, agent):
    # given
    new_ticket(K.OPT_OUT)
    make_resolved(timedelta(hours=5), timedelta(hours=3), assignee=agent)
    rebuild_all()

    # when
    response = agent_client.get("/staff/dashboard/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    charts = page.count('<svg class="bar-chart"') + page.count('<svg class="day-chart"')
    assert charts == 6
    assert page.count("<svg") == charts + page.count('<svg class="icon') + 1  # and the icon sprite
    assert page.count('role="img"') == charts
    assert "<script" not in page.replace('<script src="/static/js/staff.js" defer></script>', "")
    assert 'style="' not in page
    by_kind = page.split('id="by-kind"')[1].split("</table>")[0]
    assert f'<th scope="row">{K.OPT_OUT.label}</th><td>1</td><td>0</td><td>0</td>' in by_kind
    assert '<p class="big-number" id="resolution-time">3 h 0 min</p>' in page
    assert "Numbers per day" in page
    assert re.search(r'name="range" value="30" checked', page)


@pytest.mark.parametrize(
    ("query", "days"),
    [("", 30), ("?range=7", 7), ("?range=30", 30), ("?range=90", 90)],
)
def test_the_dashboard_shows_the_range_asked_for(agent_client, query, days):
    response = agent_client.get(f"/staff/dashboard/{query}")

    assert response.status_code == 200
    start = dashboard_today() - timedelta(days=days - 1)
    assert f'id="id_start" value="{start:%Y-%m-%d}"' in response.content.decode()
    assert f": {days} days." in response.content.decode()


def test_the_dashboard_shows_a_custom_range(agent_client, time_machine):
    time_machine.move_to("2026-11-20 02:00:00+00:00", tick=False)
    new_ticket()
    time_machine.move_to("2026-12-05 02:00:00+00:00", tick=False)

    response = agent_client.get("/staff/dashboard/?range=custom&start=2026-11-15&end=2026-11-21")

    page = response.content.decode()
    assert response.status_code == 200
    assert "15 Nov 2026 to 21 Nov 2026: 7 days." in page
    assert '<time datetime="2026-11-20">' in page
    assert re.search(r"<span class=\"chart-total\">1 in all", page)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?range=custom", "Give both the first and the last day of the range."),
        ("?range=custom&start=2026-11-10", "Give both the first and the last day of the range."),
        ("?range=custom&start=2026-11-10&end=2026-11-01", "The first day comes after the last"),
        ("?range=custom&start=2026-11-10&end=2999-01-01", "The range cannot end after today."),
        ("?range=custom&start=1999-12-31&end=2000-01-01", "cannot start before 1 January 2000"),
        ("?range=custom&start=2020-01-01&end=2026-11-01", "A range covers at most 366 days."),
        ("?range=custom&start=2026-02-30&end=2026-03-01", "From: Enter a valid date."),
        ("?range=custom&start=%00&end=x", "Enter a valid date."),
        ("?range=365", "Select a valid choice."),
        ("?range=%3Cscript%3E", "Select a valid choice."),
    ],
)
def test_bad_dates_get_a_message_and_the_default_range(agent_client, query, message):
    response = agent_client.get(f"/staff/dashboard/{query}")

    page = response.content.decode()
    assert response.status_code == 400
    assert message in page
    assert 'role="alert"' in page
    assert ": 30 days." in page
    assert "<script>" not in page


def test_a_supervisor_sees_every_agent_and_an_agent_only_themselves(client, agent, supervisor):
    make_resolved(timedelta(hours=5), timedelta(hours=1), assignee=agent)
    make_resolved(timedelta(hours=5), timedelta(hours=2), assignee=supervisor)
    rebuild_all()

    def table_for(user) -> str:
        client.force_login(user)
        page = client.get("/staff/dashboard/").content.decode()
        return page.split('id="by-agent"')[1].split("</table>")[0]

    agent_table, supervisor_table = table_for(agent), table_for(supervisor)

    assert '<th scope="row">agent</th>' in agent_table
    assert "supervisor" not in agent_table
    assert '<th scope="row">agent</th>' in supervisor_table
    assert '<th scope="row">supervisor</th>' in supervisor_table


def test_the_page_makes_the_same_queries_whatever_the_history_and_range(agent_client, agent):
    year = dashboard_last_days(366)
    year_query = f"?range=custom&start={year.start}&end={year.end}"

    def count(query: str) -> int:
        cache.clear()  # the registration problems are read again, as after a minute
        with CaptureQueriesContext(connection) as captured:
            assert agent_client.get(f"/staff/dashboard/{query}").status_code == 200
        return len(captured.captured_queries)

    make_resolved(timedelta(hours=5), timedelta(hours=1), assignee=agent)
    rebuild_all()
    few = count("?range=90")
    assert count(year_query) == few
    for n in range(30):
        make_resolved(
            timedelta(days=n * 12), timedelta(hours=n), assignee=UserFactory(is_staff=True)
        )
    rebuild_all()
    assert count("?range=90") == count(year_query) == few


def test_the_dashboard_is_for_staff_only(alice_client):
    assert alice_client.get("/staff/dashboard/").status_code == 404


def test_a_day_range_counts_both_ends():
    assert DayRange(start=date(2026, 11, 1), end=date(2026, 11, 30)).days == 30


def test_a_long_label_pushes_the_bars_right_instead_of_running_under_them():
    from tickets.templatetags.staff_tags import BAR_LABEL_WIDTH, bar_chart

    def starts(chart):
        return [int(x) for x in re.findall(r'<rect class="bar" x="(\d+)"', chart["bars"])]

    short = bar_chart([("Open", 3), ("New", 1)], "c1", "By status")
    assert starts(short) == [BAR_LABEL_WIDTH, BAR_LABEL_WIDTH]

    label = "Hantar semula kata laluan domain saya"  # as long as a translation can be
    long = bar_chart([(label, 2), ("Open", 0)], "c2", "By request")
    start = starts(long)[0]
    assert start > BAR_LABEL_WIDTH and start >= len(label) * 8
    assert set(starts(long)) == {start}  # every bar starts at the same place
    widths = [int(w) for w in re.findall(r'<rect class="bar" [^>]*width="(\d+)"', long["bars"])]
    numbers = [int(x) for x in re.findall(r'<text class="bar-value" x="(\d+)"', long["bars"])]
    assert widths[1] == 0 and numbers[1] == start + 6  # an empty bar's number sits at its start
    assert long["width"] > start + widths[0]


def test_bar_labels_are_escaped_in_the_chart_and_its_table():
    from tickets.templatetags.staff_tags import bar_chart

    chart = bar_chart([("<b>Ana & Co</b>", 2)], "c3", "By agent")
    for part in (chart["bars"], chart["rows"]):
        assert "&lt;b&gt;Ana &amp; Co&lt;/b&gt;" in part and "<b>" not in part
    assert "<td>2</td>" in chart["rows"] and ">2</text>" in chart["bars"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(20, "under 1 min"), (60, "1 min"), (3 * 3600 + 120, "3 h 2 min"), (2 * 86400, "2 d 0 h")],
)
def test_durations_read_as_people_say_them(seconds, text):
    from tickets.templatetags.staff_tags import duration_short

    assert duration_short(timedelta(seconds=seconds)) == text


def test_the_pending_changes_index_covers_exactly_the_fields_a_supervisor_approves():
    # The dashboard's approvals count reads this partial index; it must name the same fields.
    from tickets.models import FieldChange
    from tickets.request_fields import MODIFY_SENSITIVE

    index = next(i for i in FieldChange._meta.indexes if i.name == "fieldchange_pending_sensitive")
    assert dict(index.condition.children)["field__in"] == sorted(MODIFY_SENSITIVE)
