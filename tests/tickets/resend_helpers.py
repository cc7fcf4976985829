"""Helpers for the password-resend and tracking tests (their fixtures are in tests/conftest.py)."""

from django.core import mail

from domains.fake_opensrs import FakeOpenSRS
from tickets import services
from tickets.models import ActionLog, Notification

ANYMAIL_TEST = "anymail.backends.test.EmailBackend"
API_URL = "/api/v1/requests/password-resend/"
PORTAL_URL = "/requests/password/"
# The address a requester types on the form: never the one on the registration record.
TYPED = "requester@typed.test"


def send_outbox() -> list[str]:
    """Do what the notification worker does for every pending outbox row."""
    statuses = []
    for pk in (
        Notification.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True)
    ):
        statuses.append(services.notification_send(notification_id=pk))
    return statuses


def calls(server: FakeOpenSRS, action: str) -> list[dict]:
    return [call for call in server.calls if call["action"] == action]


def actions(ticket) -> list[str]:
    return list(ActionLog.objects.filter(ticket=ticket).values_list("action", flat=True))


def mails_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


def full_text(message) -> str:
    """Subject, text and every alternative of an email."""
    parts = [message.subject, message.body]
    parts += [content for content, _ in getattr(message, "alternatives", [])]
    return "\n".join(parts)


def tags_of(message) -> list[str]:
    """Our notifications carry one tag (the template); OpenSRS's own mail carries none."""
    return list(getattr(message, "tags", None) or [])
