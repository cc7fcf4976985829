"""Helpers for tests that make requests, follow verification links and deliver the outbox."""

import re

from django.core import mail

from tickets import services
from tickets.models import AnonymousRequest, Notification, Ticket


def link_token(notification: Notification) -> str:
    """The token at the end of the verification link, from the outbox row or the sent email."""
    notification.refresh_from_db()
    link = notification.context.get("link")
    if link is None:  # dropped from the row once sent: read it from the email itself
        sent = [
            m
            for m in mail.outbox
            if m.extra_headers.get("Message-ID", "").startswith(f"<{notification.uuid}@")
        ]
        link = re.search(r"https?://\S+/verify/[^/\s]+/", sent[-1].body).group()
    return link.rstrip("/").rsplit("/", 1)[-1]


def anonymous_lookups() -> list[str]:
    """Do what the worker does for every anonymous request still to look up; the outcomes."""
    pending = AnonymousRequest.objects.filter(processed_at__isnull=True).order_by("pk")
    return [
        services.anonymous_request_process(ticket_id=ticket_id)
        for ticket_id in pending.values_list("ticket_id", flat=True)
    ]


def password_reset_lookups() -> list[str]:
    """Do what the worker does for every password-reset request still to look up."""
    pending = Notification.objects.filter(status="pending", template="password_reset_lookup")
    return [
        services.notification_send(notification_id=pk)
        for pk in pending.order_by("pk").values_list("pk", flat=True)
    ]


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


def owner_request(customer, changes, note=""):
    """A change of personal information asked for by the logged-in owner on the portal."""
    return services.request_modify(
        email=None,
        customer=customer,
        changes=changes,
        note=note,
        client_key="10.0.0.2",
        actor=customer,
        channel=Ticket.Channel.PORTAL,
    )


def anonymous_change(email, changes, *, client_key, look_up=True):
    """A change asked for without logging in, giving `email`; with `look_up`, the worker's half."""
    ticket = services.request_modify(
        email=email,
        customer=None,
        changes=changes,
        note="",
        client_key=client_key,
        actor="anonymous",
    )
    if look_up:
        anonymous_lookups()
    return ticket
