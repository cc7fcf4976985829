"""A supervisor puts back at OpenSRS, from the frozen ticket, the record a takeover changed."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_staff_browser import log_in
from tests.tickets.test_registration_change import bob_domains, run_tasks
from tests.tickets.test_registration_put_back import OWNER, owner_reports, record, taken_over
from tickets.services.registration_change import registration_change_process

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["bob_domains", "run_tasks"]  # the fixtures, used here by name


def test_a_supervisor_puts_the_record_back_with_one_click(
    live_server,
    page,
    bob,
    bob_domains,
    supervisor,
    run_tasks,
    screenshot,
    django_capture_on_commit_callbacks,
):
    # given Bob's account frozen after a takeover that changed bob-reseller.test's record
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    held = owner_reports(ticket)

    # when a supervisor opens the frozen ticket
    log_in(page, live_server.url, "supervisor", "supervisor-demo-pass")
    page.goto(f"{live_server.url}/staff/tickets/{held.reference}/")
    section = page.locator("#registration-put-back")
    expect(section).to_contain_text("bob-reseller.test")
    expect(section).to_contain_text("Waiting for a supervisor")
    screenshot(page, "staff-put-back-offered")

    # and puts it back with one click, and the worker runs
    section.get_by_role("button", name="Put back at OpenSRS").click()
    expect(page.locator("body")).to_contain_text("puts the registration records back")
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]
    page.reload()

    # then the ticket shows the record put back, and the button is gone
    expect(section).to_contain_text("Changed at OpenSRS")
    expect(section.get_by_role("button")).to_have_count(0)
    screenshot(page, "staff-put-back-done")
    assert record(bob_domains) == (OWNER, OWNER)
