"""The portal in a real browser: forms without JavaScript, emailed links, languages."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from domains.fake_opensrs import FakeOpenSRS
from tests.factories import TicketFactory
from tests.tickets.verification_helpers import anonymous_lookups
from tickets import services
from tickets.models import Message, Notification, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _send_outbox() -> None:
    """What the notification worker does for every pending outbox row."""
    pending = Notification.objects.filter(status="pending").order_by("pk")
    for pk in pending.values_list("pk", flat=True):
        services.notification_send(notification_id=pk)


def _csp_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    return errors


def test_an_anonymous_visitor_changes_alices_phone_through_the_emailed_link(
    live_server, page, alice, screenshot
):
    # given the home page, in a browser that enforces the Content-Security-Policy
    errors = _csp_errors(page)
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("How can we help?")
    screenshot(page, "home")  # an artefact for review; the expectations above are the test

    # when a visitor asks for Alice's phone to change
    page.get_by_role("link", name="Change my details").click()
    page.get_by_label("Your email address on record").fill("alice@example.test")
    page.get_by_label("Phone").fill("+60 12-345 6789")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request received")

    # and the worker looks the address up, and the link it mails to the record is confirmed
    anonymous_lookups()
    _send_outbox()
    [message] = [m for m in mail.outbox if m.to == ["alice@example.test"]]
    path = re.search(r"https://help\.exabytes\.example(/verify/\S+/)", message.body).group(1)
    page.goto(f"{live_server.url}{path}")
    page.get_by_role("button", name="Confirm").click()

    # then the visitor sees the outcome and the phone on record changed
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you, that is confirmed")
    alice.refresh_from_db()
    assert alice.phone != "+60312345678"
    assert errors == []


def test_a_password_resend_answers_the_same_for_known_and_unknown_domains(
    live_server, page, alice, settings, tmp_path
):
    with FakeOpenSRS(username="u", key="k", calls_log=tmp_path / "calls.jsonl") as server:
        settings.OPENSRS_URL = server.url
        settings.OPENSRS_USERNAME = "u"
        settings.OPENSRS_KEY = "k"
        answers = []
        for domain in ("alice-shop.test", "nobody-owns-this.test"):
            page.goto(f"{live_server.url}/requests/password/")
            page.get_by_label("Domain name").fill(domain)
            page.get_by_role("button", name="Send the reset link").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Request received")
            text = page.locator("main").inner_text()
            answers.append(re.sub(r"HD-[0-9A-Z]{8}", "HD-…", text))

    assert answers[0] == answers[1]
    assert Ticket.objects.filter(kind=Ticket.Kind.RESEND_PASSWORD).count() == 2


def test_switching_to_bahasa_melayu_translates_the_page(live_server, page, screenshot):
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("How can we help?")
    # the skip link is the first thing the keyboard reaches
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"

    # one click on the language's name applies it: no separate button
    expect(page.get_by_role("button", name="Change")).to_have_count(0)
    page.get_by_role("button", name="Bahasa Melayu").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Bagaimana kami boleh membantu?")
    assert page.locator("html").get_attribute("lang") == "ms"
    expect(page.get_by_role("link", name="Bantuan umum")).to_have_count(0)
    expect(page.get_by_role("link", name="Minta bantuan")).to_be_visible()

    # and on a phone-sized screen the page still fits without sideways scrolling
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "home-mobile-ms")


def test_a_customer_logs_in_replies_on_a_ticket_and_sees_no_internal_note(
    live_server, page, alice, screenshot
):
    ticket = TicketFactory(customer=alice, subject="Website is slow", status="awaiting_customer")
    Message.objects.create(ticket=ticket, author="staff", body="Which page?", channel="staff")
    Message.objects.create(
        ticket=ticket, author="staff", body="Secret note", channel="staff", internal=True
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email address or staff username").fill("alice@example.test")
    page.get_by_label("Password").fill("alice-demo-pass")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My requests")

    page.get_by_role("link", name=ticket.reference).click()
    page.get_by_label("Your reply").fill("The shop page.")
    page.get_by_role("button", name="Send reply").click()

    expect(page.locator(".messages")).to_contain_text("Your reply was added.")
    expect(page.locator(".conversation")).to_contain_text("The shop page.")
    expect(page.locator("main")).not_to_contain_text("Secret note")
    expect(page.locator(".badge")).to_have_text("Open")
    screenshot(page, "ticket")
