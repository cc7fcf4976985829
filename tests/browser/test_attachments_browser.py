"""Attachments in a real browser: a customer uploads, staff download and reply with a file."""

from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import expect

from tests.browser.test_staff_browser import log_in
from tests.tickets.resend_helpers import send_outbox
from tests.tickets.test_attachment_upload import PDF, PNG, scan_all
from tickets.models import Attachment, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120


def _customer_log_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email address or staff username").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My requests")


def _new_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def test_a_customers_screenshot_reaches_staff_and_a_staff_reply_carries_a_file(
    live_server, browser, page, alice, bob, agent, screenshot
):
    base = live_server.url
    # given Alice, logged in, asks for help with a screenshot
    _customer_log_in(page, base, "alice@example.test", "alice-demo-pass")
    page.goto(f"{base}/requests/new/")
    page.get_by_label("Subject").fill("Error on checkout")
    page.get_by_label("Message").fill("The page shows the error in the screenshot.")
    files = page.get_by_label("Attach files (optional)")
    files.set_input_files({"name": "screen.png", "mimeType": "image/png", "buffer": PNG})
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request received")
    ticket = Ticket.objects.get()

    # then until the worker scanned it, it is listed but not a link
    page.goto(f"{base}/my/tickets/{ticket.reference}/")
    expect(page.locator(".attachments")).to_contain_text("screen.png")
    expect(page.locator(".attachments")).to_contain_text("Being checked")
    expect(page.locator(".attachments a")).to_have_count(0)
    assert scan_all() == ["clean"]
    page.reload()
    expect(page.get_by_role("link", name="screen.png")).to_be_visible()
    screenshot(page, "attachment-customer")

    # when an agent, in another browser session, opens the ticket and downloads the file
    staff_context, staff = _new_page(browser)
    try:
        log_in(staff, base, "agent", "agent-demo-pass")
        staff.goto(f"{base}/staff/tickets/{ticket.reference}/")
        with staff.expect_download() as caught:
            staff.get_by_role("link", name="screen.png").click()
        download = caught.value
        assert download.suggested_filename == "screen.png"
        assert Path(download.path()).read_bytes() == PNG

        # and replies with a PDF guide; a renamed program is refused first
        staff.get_by_label("Reply to the customer").fill("Please follow the attached guide.")
        reply_files = staff.get_by_label("Attach files (optional)")
        reply_files.set_input_files({"name": "guide.png", "mimeType": "image/png", "buffer": EXE})
        staff.get_by_role("button", name="Send reply").click()
        refusal = staff.locator("#id_attachments_error")
        expect(refusal).to_contain_text("guide.png is not a file we accept")
        assert not ticket.messages.filter(author="staff").exists()
        staff.get_by_label("Reply to the customer").fill("Please follow the attached guide.")
        staff.get_by_label("Attach files (optional)").set_input_files(
            {"name": "guide.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        staff.get_by_role("button", name="Send reply").click()
        expect(staff.locator(".messages")).to_contain_text("Reply sent.")
        expect(staff.locator(".conversation")).to_contain_text("guide.pdf")
        screenshot(staff, "attachment-staff")
    finally:
        staff_context.close()

    # then the reply email carries the guide once the worker scanned it
    assert scan_all() == ["clean"]
    send_outbox()
    [email] = [m for m in mail.outbox if m.to == ["alice@example.test"] and "guide" in m.body]
    assert [(name, data) for name, data, _ in email.attachments] == [("guide.pdf", PDF)]

    # and Bob, another customer, is refused Alice's file
    attachment = Attachment.objects.get(filename="screen.png")
    bob_context, bob_page = _new_page(browser)
    try:
        _customer_log_in(bob_page, base, "bob@example.test", "bob-demo-pass")
        url = f"{base}/my/tickets/{ticket.reference}/attachments/{attachment.pk}/"
        response = bob_page.request.get(url)
        assert response.status == 404
        assert response.body() != PNG
    finally:
        bob_context.close()
