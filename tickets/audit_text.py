"""Audit rows in words: one sentence per action, and the details as label/value pairs."""

import functools
from typing import Any

from django.utils.translation import get_language, gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _

from tickets.models import ActionLog, Ticket

# Action code -> a sentence; "{from}" / "{to}" come from the row's details, already labelled.
AUDIT_SENTENCES: dict[str, Any] = {
    "ticket.created": _("Ticket created."),
    "ticket.status_changed": _("Status changed from {from} to {to}."),
    "ticket.assigned": _("Assignee changed from {from} to {to}."),
    "ticket.priority_changed": _("Priority changed from {from} to {to}."),
    "ticket.message_added": _("Message added to the conversation."),
    "ticket.note_added": _("Internal note added."),
    "ticket.contact_changed": _("Contact address changed."),
    "ticket.merged": _("Merged into {to}."),
    "ticket.customer_linked": _(
        "Linked to the customer whose email on record sent it (not logged in)."
    ),
    "ticket.opener_confirmed": _(
        "The customer confirmed that this request, sent from their address without signing "
        "in, is theirs."
    ),
    "ticket.merged_in": _("{from} was merged into this ticket."),
    "ticket.owner_found": _("The email on record given was found: the request is its customer's."),
    "verification.sent": _("Verification link sent to the email on record."),
    "verification.confirmed": _("The requester confirmed by the verification link."),
    "verification.refused": _("A verification link was refused."),
    "verification.held": _(
        "No link to confirm the new email address was sent: that address has had as many links "
        "as it may get for now, whoever asked. The email change cannot be approved until the "
        "address is confirmed; the customer may ask again later."
    ),
    "satisfaction.recorded": _("The requester answered “Did this solve it?”."),
    "satisfaction.changed": _("The requester changed their answer to “Did this solve it?”."),
    "modify.requested": _("Change of personal information requested."),
    "customer.details_changed": _("The customer's details were changed."),
    "customer.mailing_preferences_changed": _("Mailing preferences changed."),
    "customer.language_changed": _("Language changed."),
    "customer.exported": _("Customer data exported."),
    "notification.sent": _("Email sent."),
    "notification.delivered": _("Email delivered."),
    "notification.bounced": _("Email bounced."),
    "notification.failed": _("Email could not be sent."),
    "opensrs.call": _("OpenSRS was called."),
    "optout.requested": _("Opt-out requested."),
    "resend.record_read": _("Registration record read from OpenSRS."),
    "resend.sent": _("OpenSRS sent the password-reset link to the registrant."),
    "resend.referred": _("Referred to OpenSRS: the registration email no longer works."),
    "resend.unknown_domain": _("The domain is not in our reseller account."),
    "resend.outcome_unknown": _("OpenSRS did not answer in time: outcome unknown."),
    "resend.gave_up": _("Gave up resending after repeated errors."),
    "inbound.received": _("Email received."),
    "attachment.added": _("Files attached."),
    "attachment.scanned": _("An attachment was checked for malware and is clean."),
    "attachment.blocked": _("An attachment was blocked: malware found."),
    "inbound.ignored": _("Incoming email ignored."),
    "account.frozen": _("Account frozen by its owner."),
    "account.unfrozen": _("Account unfrozen."),
    "registration.put_back_offered": _(
        "Registration records changed to the reported address can be put back at OpenSRS."
    ),
    "registration.put_back_queued": _(
        "A supervisor asked to put the registration records back at OpenSRS."
    ),
    "disclosure.recorded": _("Disclosure recorded."),
    "saved_view.created": _("Saved view created."),
    "saved_view.changed": _("Saved view changed."),
    "saved_view.deleted": _("Saved view deleted."),
}
# Detail keys -> labels for the small table.
_DETAIL_LABELS: dict[str, Any] = {
    "from": gettext_lazy("From"),
    "to": gettext_lazy("To"),
    "reason": gettext_lazy("Reason"),
    "name": gettext_lazy("Name"),
    "kind": gettext_lazy("Request"),
    "status": gettext_lazy("Status"),
    "channel": gettext_lazy("Channel"),
    "sla": gettext_lazy("SLA clock"),
    "sla_paused_seconds": gettext_lazy("Paused for (seconds)"),
}
_STATUS_LABELS = dict(Ticket.Status.choices)
_PRIORITY_LABELS = dict(Ticket.Priority.choices)
_NOBODY = gettext_lazy("nobody")


@functools.cache
def _translated(language: str | None) -> dict[str, Any]:
    """The texts above in the active language `language`, translated once per language.

    Each `str()` of a lazy text translates it again: the 20 audit rows of a ticket page, with
    their details, took about 4,000 of a supervisor's 52,000 Python calls that way.
    """
    return {
        "sentences": {action: str(text) for action, text in AUDIT_SENTENCES.items()},
        "details": {key: str(label) for key, label in _DETAIL_LABELS.items()},
        "values": {
            "ticket.status_changed": {value: str(label) for value, label in _STATUS_LABELS.items()},
            "ticket.priority_changed": {
                value: str(label) for value, label in _PRIORITY_LABELS.items()
            },
        },
        "nobody": str(_NOBODY),
    }


def _value_label(action: str, value: Any, words: dict[str, Any]) -> str:
    if value is None or value == "":
        return words["nobody"] if action == "ticket.assigned" else "—"
    labels = words["values"].get(action)
    if labels is not None and value in labels:
        return labels[value]
    if isinstance(value, dict | list):
        return ", ".join(str(v) for v in (value.values() if isinstance(value, dict) else value))
    return str(value)


def audit_sentence(event: ActionLog) -> str:
    """What the row records, as a sentence in the active language."""
    words = _translated(get_language())
    sentence = words["sentences"].get(event.action)
    if sentence is None:
        return gettext("Recorded: %(action)s.") % {"action": event.action.replace("_", " ")}
    details = event.details if isinstance(event.details, dict) else {}
    values = {key: _value_label(event.action, details.get(key), words) for key in ("from", "to")}
    return sentence.replace("{from}", values["from"]).replace("{to}", values["to"])


def audit_detail_rows(event: ActionLog) -> list[tuple[str, str]]:
    """The row's details as (label, value) pairs, for a small table."""
    words = _translated(get_language())
    details = event.details if isinstance(event.details, dict) else {}
    return [
        (
            words["details"].get(key, key.replace("_", " ").capitalize()),
            _value_label(event.action, value, words),
        )
        for key, value in details.items()
    ]
