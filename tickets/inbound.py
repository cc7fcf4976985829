"""Anymail webhook receivers: normalise the event and hand it to one service."""

import logging
from typing import Any

from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, inbound, tracking
from django.core.exceptions import ValidationError
from django.dispatch import receiver

from helpdesk.exceptions import ApplicationError
from tickets.redaction import redact_card_numbers

logger = logging.getLogger(__name__)

# --- tracking events ---


def _esp_event_type(esp_event: Any) -> str:
    """The ESP's own event subtype (Postmark's bounce `Type`), when the payload has one."""
    if isinstance(esp_event, dict):
        value = esp_event.get("Type")
        return value if isinstance(value, str) else ""
    return ""


@receiver(tracking, dispatch_uid="tickets.inbound.on_tracking")
def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    from tickets.services import notification_tracking_event

    notification_tracking_event(
        esp_name=esp_name or "",
        event_type=str(event.event_type or ""),
        message_id=str(event.message_id or ""),
        recipient=str(event.recipient or ""),
        metadata=dict(event.metadata or {}),
        reject_reason=str(event.reject_reason or ""),
        description=str(event.description or ""),
        esp_event_type=_esp_event_type(event.esp_event),
    )


# --- inbound mail ---


def _addr_spec(address: Any) -> str:
    return str(getattr(address, "addr_spec", "") or "")


def _addresses(message: Any, header: str) -> list[Any]:
    """The addresses in one header of the message; none where it holds no address anymail reads.

    A message parsed from raw MIME keeps what the sender wrote (`From: a@b@c`), and reading it
    raises: such a From is an empty one, never a failed delivery the ESP retries for hours.
    """
    try:
        return list(message.get_address_header(header))
    except ValueError:  # AnymailInvalidAddress
        return []


def _inbound_headers(message: Any, esp_event: Any) -> list[tuple[str, str]]:
    """The message's headers in order, (name, value) each; an ESP's original header list wins.

    Postmark's parsed payload rebuilds the MIME tree; its "Headers" list keeps the originals in
    their order, the receiving server's own (Received-SPF, Authentication-Results) first.
    """
    original: list[tuple[str, str]] = []
    raw = esp_event.get("Headers") if isinstance(esp_event, dict) else None
    if isinstance(raw, list):
        original = [
            (item["Name"], str(item.get("Value", "")))
            for item in raw
            if isinstance(item, dict) and isinstance(item.get("Name"), str)
        ]
    named = {name.lower() for name, _ in original}
    rebuilt = [(name, str(value)) for name, value in message.items() if name.lower() not in named]
    return [*original, *rebuilt]


@receiver(inbound, dispatch_uid="tickets.inbound.on_inbound")
def on_inbound(sender: Any, event: AnymailInboundEvent, esp_name: str, **kwargs: Any) -> None:
    from tickets.services import inbound_email_receive

    message = event.message
    if message is None:
        return
    senders = next(iter(_addresses(message, "From")), None)
    parts = [*message.attachments, *message.inlines]
    try:
        inbound_email_receive(
            message_id=str(message.get("Message-ID") or event.event_id or ""),
            from_email=_addr_spec(senders),
            to_emails=[
                _addr_spec(address)
                for address in [*_addresses(message, "To"), *_addresses(message, "Cc")]
            ],
            subject=str(message.subject or ""),
            text=message.text or "",
            html=message.html or "",
            headers=_inbound_headers(message, event.esp_event),
            attachments=[
                (part.get_filename() or "", part.get_content_type(), part.get_content_bytes())
                for part in parts
            ],
            envelope_recipient=str(message.envelope_recipient or ""),
        )
    except (ApplicationError, ValidationError) as exc:
        # Bad data in one email: keep it out of the ESP's retry loop, and say why in the log.
        sender_shown = redact_card_numbers(_addr_spec(senders))[0]
        logger.warning("inbound email from %s not stored: %s", sender_shown, exc)
