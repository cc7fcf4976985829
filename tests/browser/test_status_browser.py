"""Following a request without an account, in a real browser: acknowledgement, /track/, status."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.tickets.verification_helpers import anonymous_lookups
from tickets import services, tasks
from tickets.models import Message, Notification, Ticket, Verification

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
STATUS_PATH = re.compile(r"https://help\.exabytes\.example(/track/[A-Za-z0-9_-]+/)")


def _send_outbox() -> None:
    """What the notification worker does for every pending outbox row."""
    for pk in Notification.objects.filter(status="pending").order_by("pk").values_list("pk"):
        services.notification_send(notification_id=pk[0])


def _shots(page: Page, name: str) -> None:
    """Save the page at 1280 and 390 px wide; at 390 nothing may scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        path = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_anonymous_customer_follows_and_answers_a_request_from_the_email_alone(
    live_server, page, monkeypatch
):
    queued: list[dict] = []
    monkeypatch.setattr(
        tasks.status_link_send, "apply_async", lambda **kwargs: queued.append(kwargs["kwargs"])
    )

    # given a general request sent without an account
    page.goto(f"{live_server.url}/requests/new/")
    page.get_by_label("Subject").fill("Email bounces")
    page.get_by_label("Message").fill("Mail to my domain bounces since Monday.")
    page.get_by_label("Your email address").fill("dan@example.test")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request received")
    ticket = Ticket.objects.get(subject="Email bounces")

    # when the customer, having lost the email, asks for the link at /track/
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Follow a request").first.click()
    page.get_by_label("Request reference").fill(ticket.reference)
    page.get_by_label("Your email address").fill("dan@example.test")
    page.get_by_role("button", name="Email me the link").click()

    # then the page says to check the mail and shows no link
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    hrefs = page.eval_on_selector_all("main a", "links => links.map(a => a.href)")
    assert not [h for h in hrefs if re.search(r"/track/[A-Za-z0-9_-]{20,}/", h)]

    # and the worker mails the link, which opens the status page
    for kwargs in queued:
        assert services.status_link_send(**kwargs) == "sent"
    _send_outbox()
    [link_mail] = [m for m in mail.outbox if m.subject.startswith(f"[{ticket.reference}] Follow")]
    assert link_mail.to == ["dan@example.test"]
    path = STATUS_PATH.search(link_mail.body).group(1)
    Message.objects.create(ticket=ticket, author="staff", body="Which address bounces?")
    Ticket.objects.filter(pk=ticket.pk).update(status="awaiting_customer")
    page.goto(f"{live_server.url}{path}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticket.reference)
    expect(page.locator(".timeline")).to_contain_text("We received your request")
    expect(page.locator("[aria-current=step]")).to_have_text(
        re.compile("We are waiting for your reply")
    )
    expect(page.locator(".conversation")).to_contain_text("Which address bounces?")
    _shots(page, "status")

    # and their reply from the page reaches the ticket, which goes back to the team
    page.get_by_label("Your reply").fill("info@ on my domain.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".messages")).to_contain_text("Your reply was added.")
    expect(page.locator(".conversation")).to_contain_text("info@ on my domain.")
    expect(page.locator("[aria-current=step]")).to_have_text(re.compile("Our team is on it"))
    assert ticket.messages.filter(author="customer", body="info@ on my domain.").exists()


def test_an_expired_status_link_says_so_and_asks_for_a_new_one(live_server, page):
    ticket = Ticket.objects.create(kind="general", subject="Old", contact_email="d@example.test")
    link = services.status_link_issue(ticket=ticket, send_to="d@example.test")
    Verification.objects.filter(ticket=ticket).update(expires_at=timezone.now() - timedelta(1))

    page.goto(live_server.url + STATUS_PATH.search(link).group(1))

    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    page.get_by_role("link", name="Get a new link").click()
    expect(page.get_by_label("Request reference")).to_have_value(ticket.reference)


def test_a_used_verification_link_says_so_before_any_button(live_server, page, alice):
    ticket = services.request_modify(
        email=alice.email,
        customer=None,
        changes={"city": "Ipoh"},
        note="",
        client_key="10.0.0.1",
        actor="anonymous",
        channel=Ticket.Channel.PORTAL,
    )
    anonymous_lookups()  # the worker looks the record up and mails the owner
    _send_outbox()
    [verify_mail] = [m for m in mail.outbox if "/verify/" in m.body]
    path = re.search(r"https://help\.exabytes\.example(/verify/\S+/)", verify_mail.body).group(1)
    page.goto(f"{live_server.url}{path}")
    page.get_by_role("button", name="Confirm").click()

    page.goto(f"{live_server.url}{path}")

    expect(page.get_by_role("heading", level=1)).to_have_text("This link was already used")
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("link", name="Follow your request")).to_be_visible()
    assert ticket.reference not in page.locator("main").inner_text()
