"""The staff ticket page's markup written by tags, against the template code it replaced."""

from datetime import UTC, datetime

import pytest
from django.template import engines
from django.utils import timezone, translation

from tests.factories import TicketFactory
from tickets import services
from tickets.models import Ticket
from tickets.staff.ticket import CANNED_RESPONSES

DJANGO = engines["django"]
S = Ticket.Status


def test_canned_options_print_what_the_loop_printed_escaped():
    # given the loop the reply form's menu was written as, and the tag that replaced it
    loop = DJANGO.from_string(
        '{% for key, label, text in canned %}<option value="{{ key }}" data-text="{{ text }}">'
        "{{ label }}</option>{% endfor %}"
    )
    tag = DJANGO.from_string("{% load staff_tags %}{% canned_options canned %}")
    hostile = [
        ('a"b', "<b>Tom & Jerry</b>", 'O\'Hara said "hi" <script>1</script>\n& bye'),
        ("done", "Done", ""),
    ]
    ours = [(key, label, str(text)) for key, (label, text) in CANNED_RESPONSES.items()]
    for canned in (hostile, ours, []):
        # then both print the same
        for language in ("en", "ms"):
            with translation.override(language):
                assert tag.render({"canned": canned}) == loop.render({"canned": canned})
    assert "<script>" not in tag.render({"canned": hostile})


@pytest.mark.parametrize("language", ["en", "ms"])
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kuala_Lumpur", "America/St_Johns"])
def test_time_element_prints_what_the_date_filters_printed(language, zone):
    # given the element as the ticket page wrote it, and the tag that replaced it
    filters = DJANGO.from_string(
        '<time datetime="{{ value|date:\'c\' }}">{{ value|date:"DATETIME_FORMAT" }}</time>'
    )
    tag = DJANGO.from_string("{% load staff_tags %}{% time_element value %}")
    moments = [
        datetime(2026, 12, 7, 23, 59, 59, 999_999, tzinfo=UTC),  # the next day in Kuala Lumpur
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 7, 15, 12, 30, 5, 250, tzinfo=UTC),
    ]
    with timezone.override(zone), translation.override(language):
        for moment in moments:
            # then both print the same, in local time
            assert tag.render({"value": moment}) == filters.render({"value": moment})


@pytest.mark.django_db
def test_the_ticket_pages_fixed_words_follow_each_requests_language(supervisor_client, agent):
    # given a ticket whose audit trail reads a change of priority, seen first in Malay, then
    # in English, then in Malay again (the menus and the audit words are kept per language)
    ticket = TicketFactory(status=S.OPEN, priority="normal")
    services.ticket_priority_set(ticket=ticket, priority="urgent", actor=agent)
    url = f"/staff/tickets/{ticket.reference}/"
    pages = {}

    # when
    for language in ("ms", "en", "ms"):
        supervisor_client.cookies["django_language"] = language
        pages[language] = supervisor_client.get(url).content.decode()

    # then each page reads its own language, in the canned menu, the priorities and the trail
    with translation.override("ms"):
        malay = {
            "canned": translation.gettext("We are on it"),
            "sentence": translation.gettext("Priority changed from {from} to {to}.").format_map(
                {"from": str(Ticket.Priority.NORMAL.label), "to": str(Ticket.Priority.URGENT.label)}
            ),
            "detail": f'<th scope="row">{translation.gettext("From")}</th>',
            "priority": f'<option value="low">{Ticket.Priority.LOW.label}</option>',
        }
    english = {
        "canned": "We are on it",
        "sentence": "Priority changed from Normal to Urgent.",
        "detail": '<th scope="row">From</th>',
        "priority": '<option value="low">Low</option>',
    }
    assert all(malay[key] != english[key] for key in malay)
    for key in malay:
        assert malay[key] in pages["ms"]
        assert english[key] in pages["en"]
        assert english[key] not in pages["ms"]
