"""Helpers for tests that follow verification links and deliver the outbox."""

from django.core import mail

from tickets import services
from tickets.models import Notification, Ticket


def link_token(notification: Notification) -> str:
    """The token at the end of the verification link an outbox row carries."""
    return notification.context["link"].rstrip("/").rsplit("/", 1)[-1]


def verification_mail(ticket: Ticket, template: str = "verify_request") -> Notification:
    return Notification.objects.get(ticket=ticket, template=template)


def deliver_outbox() -> list:
    """Send every pending outbox row through the email backend; returns what was sent now."""
    before = len(mail.outbox)
    for pk in (
        Notification.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True)
    ):
        services.notification_send(notification_id=pk)
    return mail.outbox[before:]


def html_part(message) -> str:
    return next(content for content, mimetype in message.alternatives if mimetype == "text/html")
