import pytest
from playwright.sync_api import expect

from tests.browser.test_staff_browser import log_in
from tests.factories import CustomerFactory, TicketFactory
from tickets.models import Message, Ticket
from tickets.services.search import message_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

S = Ticket.Status


def test_an_agent_finds_a_resolved_ticket_from_another_ticket_page(live_server, page, agent):
    # given a resolved ticket of Nur Aisyah with a message about DNS, and an open one to start from
    aisyah = CustomerFactory(full_name="Nur Aisyah Binti Ahmad", email="aisyah@kedai.example")
    resolved = TicketFactory(customer=aisyah, subject="Shop offline", status=S.RESOLVED)
    message_create(
        ticket=resolved,
        author=Message.Author.CUSTOMER,
        body="Tolong semak the DNS records for kedai.example.",
        channel=Ticket.Channel.EMAIL,
    )
    start = TicketFactory(subject="Unrelated open ticket", status=S.OPEN)
    log_in(page, live_server.url, "agent", "agent-demo-pass")
    page.goto(f"{live_server.url}/staff/tickets/{start.reference}/")

    # when "/" puts the cursor in the search box and part of her name is typed
    page.locator("h1").click()
    page.keyboard.press("/")
    box = page.get_by_role("searchbox", name="Search tickets")
    expect(box).to_be_focused()
    page.keyboard.type("aisyah")
    page.keyboard.press("Enter")

    # then the resolved ticket is listed, saying why, under "All tickets"
    row = page.locator(f'tr[data-reference="{resolved.reference}"]')
    expect(row).to_contain_text("matched: customer name")
    expect(page.locator('.queue-views a[aria-current="page"]')).to_contain_text("All tickets")
    expect(page.locator("tr.ticket-row")).to_have_count(1)

    # when a word from the message is searched for from the results page
    box.fill("records")
    box.press("Enter")

    # then it is found by its message text
    expect(row).to_contain_text("matched: message text")

    # when the reference is typed, in lower case, from the ticket page
    page.goto(f"{live_server.url}/staff/tickets/{start.reference}/")
    box.fill(resolved.reference.lower())
    box.press("Enter")

    # then the ticket itself opens
    expect(page).to_have_url(f"{live_server.url}/staff/tickets/{resolved.reference}/")
    expect(page.locator("h1")).to_contain_text(resolved.reference)
