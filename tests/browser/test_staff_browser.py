from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Customer
from tests.factories import DomainFactory, TicketFactory
from tests.tickets.verification_helpers import link_token, owner_request, verification_mail
from tickets import services
from tickets.models import Disclosure, Notification

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base_url, username, password):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email address or staff username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ticket queue")


def test_an_agent_filters_the_queue_approves_a_phone_change_and_replies(
    live_server, page, agent, alice, settings, screenshot
):
    # given a phone change waiting for staff, and other tickets in the queue
    settings.MODIFY_AUTO_APPLY_LOW_RISK = False
    ticket = owner_request(alice, {"phone": "+60 12 345 6789"}, note="New number please")
    domain = DomainFactory(name="slow-shop.test")
    TicketFactory(
        customer=domain.customer,
        domain=domain,
        subject="Website is slow",
        due_at=timezone.now() - timedelta(hours=3),
    )

    # when the agent logs in and filters by kind
    log_in(page, live_server.url, "agent", "agent-demo-pass")
    expect(page.locator(".overdue-row")).to_contain_text("Overdue by")
    screenshot(page, "staff-queue")
    page.get_by_label("Request").select_option("modify_info")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).not_to_contain_text("Website is slow")

    # when the agent opens the ticket and approves it
    page.get_by_role("link", name=ticket.reference).click()
    expect(page.locator("table.diff")).to_contain_text("+60123456789")
    page.get_by_role("button", name="Approve changes").click()

    # then
    expect(page.locator(".messages")).to_contain_text("Approved: the changes are applied.")
    expect(page.locator(".meta").first).to_contain_text("Resolved")
    alice.refresh_from_db()
    assert alice.phone == "+60123456789"

    # when the agent picks a canned response (filled in by the script) and replies
    page.get_by_label("Reply to the customer").fill("Hello Alice,")
    page.get_by_label("Canned response").select_option("done")
    expect(page.get_by_label("Reply to the customer")).to_have_value(
        "Hello Alice,\n\nThis is done. If anything else is needed, just reply to this email."
    )
    page.get_by_role("button", name="Send reply").click()

    # then the reply is on the ticket once, and mailed through the outbox
    expect(page.locator(".messages")).to_contain_text("Reply sent.")
    expect(page.locator(".conversation")).to_contain_text("This is done.")
    message = ticket.messages.get(author="staff")
    assert message.body.count("This is done.") == 1
    assert Notification.objects.filter(ticket=ticket, template="ticket_reply").exists()
    screenshot(page, "staff-ticket")

    # and the dashboard draws
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("svg.bar-chart").first).to_be_visible()
    screenshot(page, "staff-dashboard")


def test_a_supervisor_records_a_disclosure(live_server, page, supervisor, alice):
    # given
    log_in(page, live_server.url, "supervisor", "supervisor-demo-pass")
    customer = Customer.objects.get(pk=alice.pk)

    # when
    page.goto(f"{live_server.url}/staff/customers/{customer.number}/")
    page.get_by_role("link", name="Record a disclosure").click()
    page.get_by_label("Disclosed to").fill("Royal Malaysia Police")
    page.get_by_label("What information").fill("Name and email address")
    page.get_by_label("Legal basis or process").fill("Production order")
    page.get_by_label("Their reference").fill("PO-17")
    page.get_by_role("button", name="Record disclosure").click()

    # then
    expect(page.locator(".messages")).to_contain_text("The disclosure is recorded.")
    expect(page.locator("table.disclosures")).to_contain_text("Royal Malaysia Police")
    assert Disclosure.objects.get().reference == "PO-17"


def test_only_a_supervisor_can_approve_an_email_change(
    live_server, browser, page, agent, supervisor, alice
):
    # given an email change whose new address has confirmed its link
    ticket = owner_request(alice, {"email": "alice.new@example.net"})
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")

    # when an agent opens it: the approval is disabled, with the reason
    log_in(page, live_server.url, "agent", "agent-demo-pass")
    page.goto(f"{live_server.url}/staff/tickets/{ticket.reference}/")
    expect(page.get_by_role("button", name="Approve changes")).to_be_disabled()
    expect(page.locator("#approve-blocked")).to_have_text(services.MODIFY_NEEDS_SUPERVISOR)

    # when a supervisor, in another browser session, approves it
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        boss = context.new_page()
        log_in(boss, live_server.url, "supervisor", "supervisor-demo-pass")
        boss.goto(f"{live_server.url}/staff/tickets/{ticket.reference}/")
        expect(boss.locator("table.diff")).to_contain_text("alice.new@example.net")
        boss.get_by_role("button", name="Approve changes").click()

        # then the record changes, and both the old and the new address are told
        expect(boss.locator(".messages")).to_contain_text("Approved: the changes are applied.")
        expect(boss.locator(".meta").first).to_contain_text("Resolved")
    finally:
        context.close()
    alice.refresh_from_db()
    assert alice.email == "alice.new@example.net"
    told = set(
        Notification.objects.filter(
            ticket=ticket, template__in=["email_changed_old", "email_changed_new"]
        ).values_list("recipient", flat=True)
    )
    assert told == {"alice@example.test", "alice.new@example.net"}
