"""ESP tracking events: delivered, bounced, or proof the ESP took an email we did not record."""

import uuid
from typing import Any

from django.db import transaction

from accounts.selectors import email_canonical
from helpdesk.validators import without_nul
from tickets.audit import audit_record
from tickets.lock_objects import notification_lock
from tickets.models import Notification
from tickets.services.outbox import (
    UNMARKED_STATUSES,
    notification_bounced,
    notification_details,
    notification_mark_sent,
)

# Only these mean the address is dead; soft bounces and deferrals may still deliver.
_FINAL_POSTMARK_BOUNCES = frozenset({"HardBounce", "BadEmailAddress"})
_FINAL_REJECT_REASONS = frozenset({"bounced", "invalid"})


def _tracking_is_final_bounce(
    *, esp_name: str, event_type: str, reject_reason: str, esp_event_type: str
) -> bool:
    if esp_name.lower() == "postmark" and event_type in ("bounced", "rejected"):
        return esp_event_type in _FINAL_POSTMARK_BOUNCES
    if event_type == "bounced":
        return True
    return event_type == "rejected" and reject_reason in _FINAL_REJECT_REASONS


# Anymail's normalised tracking events that only follow an email the ESP accepted.
ESP_ACCEPTED_EVENTS = frozenset(
    {
        "queued",
        "sent",
        "deferred",
        "delivered",
        "autoresponded",
        "opened",
        "clicked",
        "complained",
        "unsubscribed",
    }
)


def _tracking_notification(metadata: dict[str, Any], message_id: str) -> Notification | None:
    raw = metadata.get("notification") if isinstance(metadata, dict) else None
    if raw:
        try:
            found = Notification.objects.filter(uuid=uuid.UUID(str(raw))).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    if message_id:
        return Notification.objects.filter(esp_message_id=message_id).order_by("pk").first()
    return None


@transaction.atomic
def notification_tracking_event(
    *,
    esp_name: str,
    event_type: str,
    message_id: str,
    recipient: str,
    metadata: dict[str, Any],
    reject_reason: str,
    description: str,
    esp_event_type: str,
) -> str:
    """Apply one ESP tracking event to its outbox row; a repeated event changes nothing."""
    # A remote mail server's words travel in the event: read without NUL, never refused.
    message_id, recipient = without_nul(message_id), without_nul(recipient)
    reject_reason, description = without_nul(reject_reason), without_nul(description)
    found = _tracking_notification(metadata, message_id)
    if found is None:
        return "unmatched"
    if recipient and email_canonical(recipient) != email_canonical(found.recipient):
        return "unmatched"
    notification = notification_lock(pk=found.pk)
    recorded = False
    if event_type in ESP_ACCEPTED_EVENTS and notification.status in UNMARKED_STATUSES:
        # The ESP has this email, but no send was recorded: the worker died between the
        # hand-over and its write, or the ESP's answer was lost. Record it now, so the sweep
        # does not send it again.
        recorded = notification_mark_sent(
            notification,
            notification.esp_message_id or message_id,
            evidence=f"{esp_name} {event_type}".strip(),
        )
        notification.status = Notification.Status.SENT
    if event_type == "delivered":
        if notification.status not in (Notification.Status.SENDING, Notification.Status.SENT):
            return "ignored"
        notification.status = Notification.Status.DELIVERED
        notification.save(update_fields=["status", "updated_at"])
        audit_record(
            actor="worker",
            action="notification.delivered",
            ticket=notification.ticket,
            details=notification_details(notification, esp=esp_name),
        )
        return "delivered"
    final = _tracking_is_final_bounce(
        esp_name=esp_name,
        event_type=event_type,
        reject_reason=reject_reason,
        esp_event_type=esp_event_type,
    )
    if not final or notification.status == Notification.Status.BOUNCED:
        return "recorded" if recorded else "ignored"
    reason = " ".join(
        part for part in (esp_name, event_type, esp_event_type, reject_reason, description) if part
    )
    notification_bounced(notification=notification, reason=reason)
    return "bounced"
