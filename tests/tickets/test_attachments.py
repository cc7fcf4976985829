"""Attachments: downloaded by staff and the ticket's own customer only, never rendered."""

import re

import pytest
from django.test import Client
from django.utils import translation

from tests.factories import TicketFactory
from tests.tickets.test_inbound import AUTH, HOOK, SECRET, payload
from tickets.attachments import OPAQUE, attachment_served_type
from tickets.models import Attachment, Message, Ticket
from tickets.services.attachments import (
    ATTACHMENT_MAX_MEGABYTES,
    ATTACHMENTS_PER_MESSAGE,
    attachment_scan,
)
from tickets.staff.ticket import ReplyForm
from tickets.views.common import AttachmentsField
from tickets.views.modify import ModifyRequestForm
from tickets.views.requests import GeneralRequestForm

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\n"
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def attach(
    ticket,
    *,
    filename="scan.png",
    content=PNG,
    claimed="image/png",
    internal=False,
    scan_status="clean",
):
    message = Message.objects.create(
        ticket=ticket,
        author="customer" if not internal else "staff",
        body="see attached",
        internal=internal,
        channel=Ticket.Channel.EMAIL,
    )
    return Attachment.objects.create(
        message=message,
        filename=filename,
        content_type=claimed,
        size=len(content),
        content=content,
        scan_status=scan_status,
    )


def portal_url(attachment) -> str:
    reference = attachment.message.ticket.reference
    return f"/my/tickets/{reference}/attachments/{attachment.pk}/"


def staff_url(attachment) -> str:
    reference = attachment.message.ticket.reference
    return f"/staff/tickets/{reference}/attachments/{attachment.pk}/"


# --- the type comes from the bytes ---


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PNG, "image/png"),
        (PDF, "application/pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20, "image/jpeg"),
        (b"name,amount\nAlice,10\n", "text/plain"),
        ("Terima kasih, ß ✓\n".encode(), "text/plain"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image/webp"),
        (HTML, OPAQUE),  # HTML is never served as HTML
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', OPAQUE),
        (b"MZ\x90\x00" + b"\x00" * 60, OPAQUE),  # a Windows program
        (b"\x00\x01\x02binary", OPAQUE),
    ],
)
def test_the_type_is_sniffed_from_the_content(content, expected):
    assert attachment_served_type(content) == expected


# --- who may download ---


def test_the_customer_downloads_its_own_attachment_as_a_download(alice_client, alice):
    # given an attachment claimed as a PNG that is really HTML
    attachment = attach(
        TicketFactory(customer=alice), filename="cat.png", content=HTML, claimed="image/png"
    )

    # when
    response = alice_client.get(portal_url(attachment))

    # then the bytes come back as a download, typed and named by what they are, never rendered
    assert response.status_code == 200
    assert response.content == HTML
    assert response["Content-Type"] == OPAQUE
    assert response["Content-Disposition"] == 'attachment; filename="cat.png.bin"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]


def test_staff_download_any_tickets_attachment(agent_client, alice):
    attachment = attach(TicketFactory(customer=alice), filename="invoice.pdf", content=PDF)

    response = agent_client.get(staff_url(attachment))

    assert response.status_code == 200
    assert response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_staff_download_an_attachment_of_an_anonymous_request(agent_client):
    attachment = attach(TicketFactory(customer=None))

    assert agent_client.get(staff_url(attachment)).status_code == 200


def test_another_customer_gets_a_404(client, alice, bob):
    attachment = attach(TicketFactory(customer=alice))
    client.force_login(bob.user)

    assert client.get(portal_url(attachment)).status_code == 404
    assert client.get(staff_url(attachment)).status_code == 404


def test_a_customer_cannot_reach_its_attachment_through_another_ticket(alice_client, alice):
    # given Alice's attachment, asked for under another of her tickets' references
    attachment = attach(TicketFactory(customer=alice))
    other = TicketFactory(customer=alice)

    response = alice_client.get(f"/my/tickets/{other.reference}/attachments/{attachment.pk}/")

    assert response.status_code == 404


def test_an_attachment_on_an_internal_note_is_staff_only(agent, alice):
    # One client each: the alice_client and agent_client fixtures are the same client.
    alice_client, agent_client = Client(), Client()
    alice_client.force_login(alice.user)
    agent_client.force_login(agent)
    internal = attach(TicketFactory(customer=alice), internal=True)
    public = attach(internal.message.ticket)

    assert alice_client.get(portal_url(public)).status_code == 200
    assert alice_client.get(portal_url(internal)).status_code == 404
    assert agent_client.get(staff_url(internal)).status_code == 200


def test_an_anonymous_visitor_is_sent_to_log_in(alice):
    attachment = attach(TicketFactory(customer=alice))

    for url in (portal_url(attachment), staff_url(attachment)):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_a_customer_cannot_use_the_staff_url(alice_client, alice):
    attachment = attach(TicketFactory(customer=alice))

    assert alice_client.get(staff_url(attachment)).status_code == 404


def test_an_unknown_attachment_is_a_404(agent, alice):
    alice_client, agent_client = Client(), Client()
    alice_client.force_login(alice.user)
    agent_client.force_login(agent)
    ticket = TicketFactory(customer=alice)

    assert (
        alice_client.get(f"/my/tickets/{ticket.reference}/attachments/999999/").status_code == 404
    )
    assert (
        agent_client.get(f"/staff/tickets/{ticket.reference}/attachments/999999/").status_code
        == 404
    )


def test_a_download_changes_nothing_on_post(alice_client, alice):
    attachment = attach(TicketFactory(customer=alice))

    assert alice_client.post(portal_url(attachment)).status_code == 405


def test_an_awkward_file_name_is_kept_in_a_safe_header(agent_client, alice):
    attachment = attach(TicketFactory(customer=alice), filename='r\u00e9sum\u00e9 "final".pdf')

    response = agent_client.get(staff_url(attachment))

    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert '"final"' not in disposition and "\n" not in disposition


@pytest.mark.parametrize(
    ("filename", "content", "handed_out"),
    [
        (
            "invoice.url",
            b"[InternetShortcut]\r\nURL=file://198.51.100.7/s/x.exe\r\n",
            "invoice.url.txt",
        ),
        ("statement.pdf", PNG, "statement.pdf.png"),
        ("notes.txt", b"plain words\n", "notes.txt"),
        ("README", b"plain words\n", "README"),
    ],
)
def test_a_file_stored_under_a_name_of_another_kind_is_handed_out_as_what_it_holds(
    agent_client, alice_client, alice, filename, content, handed_out
):
    # given a file kept before names were judged, under a name a desktop opens otherwise
    attachment = attach(TicketFactory(customer=alice), filename=filename, content=content)
    # when staff or its customer download it
    for client, url in ((agent_client, staff_url), (alice_client, portal_url)):
        response = client.get(url(attachment))
        # then it carries the extension of what its bytes are
        assert response["Content-Disposition"] == f'attachment; filename="{handed_out}"'


# --- links on the pages, from an email as it arrives ---


def test_an_emailed_attachment_is_linked_on_both_ticket_pages(client, alice, agent, settings):
    # given Alice emails a screenshot to support@
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    body = payload(
        sender="alice@example.test",
        subject="Cannot log in",
        attachments=[("screen.png", "image/png", PNG)],
    )
    assert client.post(HOOK, body, content_type="application/json", **AUTH).status_code == 200
    attachment = Attachment.objects.get()
    ticket = attachment.message.ticket
    assert ticket.customer == alice
    # and the worker scans it (no scanner configured: it passes)
    assert attachment.scan_status == "pending"
    assert attachment_scan(attachment_id=attachment.pk) == "clean"

    # when Alice and an agent open the ticket
    client.force_login(alice.user)
    portal_page = client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    client.force_login(agent)
    staff_page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then each page links the download, which both can fetch
    portal_link = re.search(r'href="([^"]+/attachments/\d+/)"', portal_page).group(1)
    staff_link = re.search(r'href="([^"]+/attachments/\d+/)"', staff_page).group(1)
    assert portal_link == portal_url(attachment)
    assert staff_link == staff_url(attachment)
    assert "screen.png" in portal_page and "screen.png" in staff_page
    assert client.get(staff_link).content == PNG
    client.force_login(alice.user)
    assert client.get(portal_link).content == PNG


@pytest.mark.parametrize("language", ["en", "ms"])
def test_every_upload_help_text_names_the_attachment_limits(language):
    # given the fields that take files
    fields = [
        AttachmentsField(),
        *(form.base_fields["attachments"] for form in (ReplyForm, ModifyRequestForm)),
        GeneralRequestForm.base_fields["attachments"],
    ]
    limits = {
        "en": f"Up to {ATTACHMENTS_PER_MESSAGE} files of {ATTACHMENT_MAX_MEGABYTES} MB each",
        "ms": f"Sehingga {ATTACHMENTS_PER_MESSAGE} fail, {ATTACHMENT_MAX_MEGABYTES} MB",
    }[language]

    # when
    with translation.override(language):
        texts = [str(field.help_text) for field in fields]

    # then
    assert all(limits in text for text in texts), texts
