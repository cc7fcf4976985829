import pytest
from playwright.sync_api import expect

from tests.browser.test_staff_browser import log_in
from tests.factories import TicketFactory
from tickets.models import ActionLog, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

S = Ticket.Status


def test_an_agent_bulk_assigns_two_tickets_to_a_supervisor(live_server, page, agent, supervisor):
    # given three open tickets
    first, second, third = (
        TicketFactory(status=S.OPEN, subject=f"Bulk subject {n}") for n in range(3)
    )

    # when the agent ticks two and assigns them to the supervisor
    log_in(page, live_server.url, "agent", "agent-demo-pass")
    page.get_by_label(f"Select {first.reference}").check()
    page.get_by_label(f"Select {third.reference}").check()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.get_by_label("With the selected tickets").select_option("assign:supervisor")
    page.get_by_role("button", name="Apply to selected").click()

    # then the queue says so and shows the new assignee on those rows only
    expect(page.locator(".messages")).to_contain_text("2 tickets updated.")
    expect(page.locator(f'tr[data-reference="{first.reference}"]')).to_contain_text("supervisor")
    expect(page.locator(f'tr[data-reference="{third.reference}"]')).to_contain_text("supervisor")
    expect(page.locator(f'tr[data-reference="{second.reference}"]')).not_to_contain_text(
        "supervisor"
    )
    assert ActionLog.objects.filter(action="ticket.assigned").count() == 2


def test_an_agent_works_the_queue_with_the_keyboard(live_server, page, agent):
    # given two open tickets
    TicketFactory(status=S.OPEN, subject="Keyboard first")
    TicketFactory(status=S.OPEN, subject="Keyboard second")
    log_in(page, live_server.url, "agent", "agent-demo-pass")
    page.locator("h1").click()  # focus on the page, not in a field

    # "?" shows the help, and Escape closes it
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    expect(page.get_by_role("dialog")).to_contain_text("Assign the ticket to me")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()

    # "/" puts the cursor in the search box
    page.keyboard.press("/")
    expect(page.get_by_label("Search")).to_be_focused()
    page.locator("h1").click()

    # "j" moves down the rows, "k" back up, and each move is announced
    rows = page.locator("tr.ticket-row")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class("ticket-row kbd-current")
    expect(page.locator("#kbd-announce")).to_contain_text("Ticket 2 of 2:")
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class("ticket-row kbd-current")
    reference = rows.nth(0).get_attribute("data-reference")
    expect(page.locator("#kbd-announce")).to_contain_text(f"Ticket 1 of 2: {reference}")

    # "a" assigns the current ticket to me
    page.keyboard.press("a")
    expect(page.locator(".messages")).to_contain_text("1 ticket updated.")
    expect(page.locator(f'tr[data-reference="{reference}"]')).to_contain_text("agent")
    assert Ticket.objects.get(reference=reference).assignee == agent

    # "o" opens the current ticket, "r" goes to the reply box and "n" to the note box
    page.locator("h1").click()
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page.locator("h1 .reference")).to_have_text(reference)
    page.locator("h1").click()
    page.keyboard.press("r")
    expect(page.get_by_label("Reply to the customer")).to_be_focused()
    page.locator("h1").click()
    page.keyboard.press("n")
    expect(page.locator("#id_note_body")).to_be_focused()
    # typing in a field is never taken for a shortcut
    page.keyboard.type("a note with j and k")
    expect(page.locator("#id_note_body")).to_have_value("a note with j and k")


def test_an_agent_merges_a_duplicate_into_the_first_ticket(live_server, page, agent, alice):
    # given two tickets from the same customer, the second a duplicate
    first = TicketFactory(customer=alice, status=S.OPEN, subject="DNS broken")
    duplicate = TicketFactory(customer=alice, status=S.OPEN, subject="DNS still broken")
    duplicate.messages.create(author="customer", body="Asking again about DNS", channel="email")

    # when the agent merges the duplicate from its page
    log_in(page, live_server.url, "agent", "agent-demo-pass")
    page.goto(f"{live_server.url}/staff/tickets/{duplicate.reference}/")
    page.get_by_label("Merge this duplicate into ticket").fill(first.reference)
    page.get_by_role("button", name="Merge").click()

    # then the survivor shows the message and where it came from
    expect(page.locator("h1 .reference")).to_have_text(first.reference)
    expect(page.locator(".messages")).to_contain_text("Merged.")
    expect(page.locator(".conversation")).to_contain_text("Asking again about DNS")
    expect(page.locator("#merged-from")).to_contain_text(duplicate.reference)
    page.get_by_role("link", name=duplicate.reference).first.click()
    expect(page.locator("#merged-into")).to_contain_text(first.reference)
