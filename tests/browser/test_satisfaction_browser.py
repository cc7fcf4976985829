"""The resolution email's "Did this solve it?" links, clicked in a real browser."""

import re

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from tests.factories import TicketFactory
from tickets import services
from tickets.models import Notification, Satisfaction

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINKS = re.compile(r"https://help\.exabytes\.example(/satisfaction/[A-Za-z0-9_-]+/(yes|no)/)")


def test_the_customer_answers_from_the_resolution_email_and_changes_the_answer(
    live_server, page: Page
):
    # given a resolved request whose email asks "Did this solve it?"
    ticket = TicketFactory(contact_email="dan@example.test", customer=None)
    services.ticket_resolve(ticket=ticket, actor="system", note="The MX record is fixed.")
    for pk in Notification.objects.filter(status="pending").values_list("pk", flat=True):
        services.notification_send(notification_id=pk)
    [message] = mail.outbox
    links = {answer: path for path, answer in LINKS.findall(message.body)}

    # when the customer follows "No": the page asks to confirm and records nothing yet
    page.goto(f"{live_server.url}{links['no']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Did this solve it?")
    expect(page.get_by_label("No, it is not solved")).to_be_checked()
    assert not Satisfaction.objects.exists()
    page.set_viewport_size({"width": 390, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # and sends it with a comment
    page.get_by_label("Anything to add? (optional)").fill("Mail still bounces.")
    page.get_by_role("button", name="Send my answer").click()

    # then the page thanks them and shows the answer; the answer is recorded
    expect(page.locator(".messages")).to_contain_text("your answer is recorded")
    expect(page.locator("#satisfaction-current")).to_have_text("Your answer: no, it is not solved.")
    answer = Satisfaction.objects.get(ticket=ticket)
    assert (answer.answer, answer.comment) == ("no", "Mail still bounces.")

    # when later they follow "Yes" and confirm, the answer changes
    page.goto(f"{live_server.url}{links['yes']}")
    expect(page.get_by_label("Yes, it is solved")).to_be_checked()
    page.get_by_role("button", name="Change my answer").click()
    expect(page.locator("#satisfaction-current")).to_have_text("Your answer: yes, it is solved.")
    assert Satisfaction.objects.get(ticket=ticket).answer == "yes"
