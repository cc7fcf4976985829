"""Reads of one customer's record for staff: the customer page and the export."""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from accounts.models import Customer
from accounts.selectors import is_staff_member
from tickets.models import ActionLog, Disclosure, Ticket


def customer_staff_get(*, user: User | AnonymousUser, number: str) -> Customer | None:
    if not is_staff_member(user):
        return None
    return Customer.objects.filter(number=number).first()


def customer_tickets(*, customer: Customer) -> QuerySet[Ticket]:
    return Ticket.objects.filter(customer=customer).select_related("domain", "assignee")


DISCLOSURES_PERMISSION = "tickets.manage_disclosures"


def disclosures_keeper(user: User | AnonymousUser | None) -> bool:
    """Whether the user reads and records the disclosure register: one rule for every screen."""
    return is_staff_member(user) and user.has_perm(DISCLOSURES_PERMISSION)


def customer_disclosures(*, customer: Customer) -> QuerySet[Disclosure]:
    return Disclosure.objects.filter(customer=customer).select_related("recorded_by")


def customer_disclosures_for(
    *, user: User | AnonymousUser, customer: Customer
) -> list[Disclosure] | None:
    """A customer's disclosure register as `user` is shown it: None to all but its keepers."""
    if not disclosures_keeper(user):
        return None
    return list(customer_disclosures(customer=customer))


def customer_audit_rows(*, customer: Customer) -> QuerySet[ActionLog]:
    """Audit rows about a customer: written for them, or for one of their tickets."""
    return (
        ActionLog.objects.filter(Q(customer=customer) | Q(ticket__customer=customer))
        .select_related("ticket", "customer")
        .order_by("sequence")
    )


def _ticket_export(t: Ticket) -> dict[str, Any]:
    """One ticket of the customer export, with its changes, messages and notifications."""
    return {
        "reference": t.reference,
        "kind": t.kind,
        "status": t.status,
        "subject": t.subject,
        # Sent from the customer's address without signing in and never confirmed by them:
        # its subject and first message may be anyone's words (selectors.messages).
        "sent_without_sign_in_unconfirmed": t.opener_unproven,
        "domain": t.domain.name if t.domain else None,
        "contact_email": t.contact_email,
        "created_at": t.created_at,
        "resolved_at": t.resolved_at,
        "closed_at": t.closed_at,
        "changes": [
            {
                "field": c.field,
                "old": c.old_value,
                "new": c.new_value,
                "applied_at": c.applied_at,
            }
            for c in t.changes.all()
        ],
        "messages": [
            {
                "author": m.author,
                "internal": m.internal,
                "channel": m.channel,
                # An email's sender as our mail server found it: one it could not authenticate
                # may be anyone's words written as the customer's (None: not an email).
                "sender_authenticated": (
                    bool(m.sender_authentication.get("authenticated"))
                    if m.sender_authentication
                    else None
                ),
                # Written as the customer by someone not shown to be them, not confirmed since.
                "sent_without_sign_in_unconfirmed": m.unproven,
                "body": m.body,
                "created_at": m.created_at,
            }
            for m in t.messages.all()
        ],
        "notifications": [
            {
                "template": n.template,
                "recipient": n.recipient,
                "status": n.status,
                "created_at": n.created_at,
                "sent_at": n.sent_at,
            }
            for n in t.notifications.all()
        ],
    }


def customer_export_data(*, customer: Customer) -> dict[str, Any]:
    """Everything held on a customer, as plain JSON-ready data (the card token is left out)."""
    fields = [
        f.name for f in Customer._meta.concrete_fields if f.name not in {"id", "user", "card_token"}
    ]
    tickets = (
        customer_tickets(customer=customer)
        .prefetch_related("changes", "messages", "notifications")
        .order_by("created_at", "id")
    )
    return {
        "customer": {name: getattr(customer, name) for name in fields}
        | {"login": customer.user.get_username() if customer.user_id else None},
        "domains": list(
            customer.domains.order_by("name").values(
                "name", "registrant_email", "registrant_email_status", "synced_at", "created_at"
            )
        ),
        "tickets": [_ticket_export(t) for t in tickets],
        "disclosures": list(
            customer_disclosures(customer=customer).values(
                "disclosed_to",
                "information",
                "legal_basis",
                "reference",
                "disclosed_at",
                "recorded_by__username",
            )
        ),
        "audit": [
            {
                "sequence": row.sequence,
                "created_at": row.created_at,
                "actor": row.actor,
                "action": row.action,
                "ticket": row.ticket.reference if row.ticket else None,
                "details": row.details,
            }
            for row in customer_audit_rows(customer=customer)
        ],
    }
