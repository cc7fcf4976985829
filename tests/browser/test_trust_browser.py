"""The owner-only promise walked in a browser: request, confirm, approve, and "this wasn't me"."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Customer
from tests.browser.test_staff_browser import log_in
from tests.tickets.verification_helpers import anonymous_lookups, deliver_outbox
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SITE = "https://help.exabytes.example"


def _link(messages, to: str, path: str) -> str:
    """The path of the link in the one email sent to `to` that carries a `path` link."""
    links = [
        match.group(1)
        for message in messages
        if message.to == [to]
        for match in [re.search(rf"{re.escape(SITE)}(/{path}/\S+/)", message.body)]
        if match
    ]
    assert len(links) == 1, links
    return links[0]


def test_an_email_change_is_confirmed_approved_and_then_undone_by_the_old_address(
    live_server, browser, page, supervisor, alice, settings
):
    settings.MODIFY_AUTO_APPLY_LOW_RISK = False

    # given an anonymous visitor asks for Alice's email and phone to change
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Change my details").click()
    page.get_by_label("Your email address on record").fill("alice@example.test")
    page.get_by_label("New email address").fill("alice.new@example.net")
    page.get_by_label("Phone").fill("+60 12-345 6789")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request received")
    ticket = Ticket.objects.get(kind=Ticket.Kind.MODIFY_INFO)
    anonymous_lookups()  # the worker finds her record and mails the link there
    sent = deliver_outbox()

    # when a supervisor opens it before anyone confirmed: nothing can be applied
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        boss = staff.new_page()
        log_in(boss, live_server.url, "supervisor", "supervisor-demo-pass")
        boss.goto(f"{live_server.url}/staff/tickets/{ticket.reference}/")
        expect(boss.locator("#owner-verified")).to_contain_text("Not yet")
        expect(boss.get_by_role("button", name="Approve changes")).to_have_count(0)

        # when the owner opens the link mailed to the address on record: they see what they confirm
        page.goto(live_server.url + _link(sent, "alice@example.test", "verify"))
        table = page.locator("table")
        expect(page.get_by_text(ticket.reference)).to_be_visible()
        expect(table).to_contain_text("alice.new@example.net")
        expect(table).to_contain_text("+60123456789")
        expect(table).not_to_contain_text("alice@example.test")  # the old value is masked
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Thank you, that is confirmed")

        # and the new address confirms its own link
        page.goto(live_server.url + _link(deliver_outbox(), "alice.new@example.net", "verify"))
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Thank you, that is confirmed")

        # then the supervisor sees who verified it, and approves
        boss.reload()
        expect(boss.locator("#owner-verified")).not_to_contain_text("Not yet")
        boss.get_by_role("button", name="Approve changes").click()
        expect(boss.locator(".messages")).to_contain_text("Approved: the changes are applied.")
    finally:
        staff.close()
    alice.refresh_from_db()
    assert (alice.email, alice.phone) == ("alice.new@example.net", "+60123456789")

    # when the old address says "this wasn't me" through the link in its notice
    page.goto(live_server.url + _link(deliver_outbox(), "alice@example.test", "not-me"))
    expect(page.get_by_role("heading", level=1)).to_have_text("This wasn't me")
    expect(page.get_by_text(ticket.reference)).to_be_visible()
    page.get_by_role("button", name="Undo the change and freeze my account").click()

    # then the change is undone, the account frozen and the ticket back with a supervisor
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is frozen")
    alice.refresh_from_db()
    assert alice.email == "alice@example.test"
    assert alice.account_status == Customer.AccountStatus.SUSPENDED
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    assert ticket.priority == Ticket.Priority.URGENT
    told = {m.to[0] for m in deliver_outbox()}
    assert told == {"alice@example.test", "alice.new@example.net"}
