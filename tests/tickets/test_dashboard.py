from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TicketFactory
from tickets.models import Notification, Ticket
from tickets.selectors.dashboard import dashboard_figures

S = Ticket.Status
K = Ticket.Kind


def make_resolved(created_ago: timedelta, took: timedelta) -> Ticket:
    created = timezone.now() - created_ago
    ticket = TicketFactory(status=S.RESOLVED)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=created, resolved_at=created + took)
    return ticket


@pytest.mark.django_db
def test_the_figures_count_open_tickets_by_kind_and_status():
    # given
    TicketFactory(kind=K.MODIFY_INFO, status=S.OPEN)
    TicketFactory(kind=K.MODIFY_INFO, status=S.AWAITING_VERIFICATION)
    TicketFactory(kind=K.OPT_OUT, status=S.OPEN)
    TicketFactory(kind=K.GENERAL, status=S.CLOSED)

    # when
    figures = dashboard_figures()

    # then
    by_kind = dict(figures["open_by_kind"])
    assert by_kind[K.MODIFY_INFO.label] == 2
    assert by_kind[K.OPT_OUT.label] == 1
    assert by_kind[K.GENERAL.label] == 0
    by_status = dict(figures["open_by_status"])
    assert by_status[S.OPEN.label] == 2
    assert by_status[S.AWAITING_VERIFICATION.label] == 1
    assert S.CLOSED.label not in by_status


@pytest.mark.django_db
def test_the_figures_count_created_and_resolved_per_day_and_the_median():
    # given three tickets resolved in 1, 2 and 9 hours, one of them created 3 days ago
    make_resolved(timedelta(hours=12), timedelta(hours=1))
    make_resolved(timedelta(hours=12), timedelta(hours=2))
    make_resolved(timedelta(days=3), timedelta(hours=9))
    make_resolved(timedelta(days=60), timedelta(hours=50))  # outside the window

    # when
    figures = dashboard_figures()

    # then
    created = figures["created_per_day"]
    assert len(created) == 30
    assert sum(n for _day, n in created) == 3
    assert created[-1][0] == timezone.localdate()
    assert sum(n for _day, n in figures["resolved_per_day"]) == 3
    assert figures["median_time_to_resolve"] == timedelta(hours=2)
    assert figures["resolved_count"] == 3


@pytest.mark.django_db
def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two():
    make_resolved(timedelta(hours=20), timedelta(hours=1))
    make_resolved(timedelta(hours=20), timedelta(hours=3))
    assert dashboard_figures()["median_time_to_resolve"] == timedelta(hours=2)


@pytest.mark.django_db
def test_the_figures_count_failed_and_bounced_notifications():
    for i, status in enumerate(["failed", "bounced", "bounced", "sent"]):
        Notification.objects.create(
            template="ticket_reply",
            recipient="a@example.test",
            status=status,
            idempotency_key=f"k{i}",
        )
    figures = dashboard_figures()
    assert dict(figures["notification_problems"]) == {"Failed": 1, "Bounced": 2}
    assert len(figures["recent_notification_problems"]) == 3


@pytest.mark.django_db
@pytest.mark.parametrize("tickets", [2, 40])
def test_the_figures_take_a_fixed_number_of_queries(tickets, django_assert_num_queries):
    for _ in range(tickets):
        make_resolved(timedelta(hours=5), timedelta(hours=1))
        TicketFactory()
    # open by kind and status / created per day / resolved per day / resolved count /
    # middle durations / problem notifications per status / recent problem notifications /
    # satisfaction answers by kind and agent
    with django_assert_num_queries(8):
        dashboard_figures()


@pytest.mark.django_db
def test_the_dashboard_draws_svg_charts_with_the_numbers_as_text(agent_client):
    # given
    TicketFactory(kind=K.OPT_OUT, status=S.OPEN)
    make_resolved(timedelta(hours=5), timedelta(hours=3))

    # when
    response = agent_client.get("/staff/dashboard/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    charts = page.count('<svg class="bar-chart"') + page.count('<svg class="day-chart"')
    assert charts == 5
    assert page.count("<svg") == charts + page.count('<svg class="icon') + 1  # and the icon sprite
    assert 'role="img"' in page
    assert "<script" not in page.replace('<script src="/static/js/staff.js" defer></script>', "")
    assert 'style="' not in page
    assert f'<th scope="row">{K.OPT_OUT.label}</th><td>1</td>' in page
    assert '<p class="big-number" id="median-time">3 h 0 min</p>' in page
    assert "Numbers per day" in page


@pytest.mark.django_db
def test_the_dashboard_is_for_staff_only(alice_client):
    assert alice_client.get("/staff/dashboard/").status_code == 404


def test_a_long_label_pushes_the_bars_right_instead_of_running_under_them():
    from tickets.templatetags.staff_tags import BAR_LABEL_WIDTH, bar_chart

    short = bar_chart([("Open", 3), ("New", 1)], "c1", "By status")
    assert [bar["x"] for bar in short["bars"]] == [BAR_LABEL_WIDTH, BAR_LABEL_WIDTH]

    label = "Hantar semula kata laluan domain saya"  # as long as a translation can be
    long = bar_chart([(label, 2), ("Open", 0)], "c2", "By request")
    start = long["bars"][0]["x"]
    assert start > BAR_LABEL_WIDTH and start >= len(label) * 8
    assert {bar["x"] for bar in long["bars"]} == {start}  # every bar starts at the same place
    assert long["bars"][1]["n_x"] == start + 6  # an empty bar's number sits at its start
    assert long["width"] > start + long["bars"][0]["width"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(20, "under 1 min"), (60, "1 min"), (3 * 3600 + 120, "3 h 2 min"), (2 * 86400, "2 d 0 h")],
)
def test_durations_read_as_people_say_them(seconds, text):
    from tickets.templatetags.staff_tags import duration_short

    assert duration_short(timedelta(seconds=seconds)) == text
