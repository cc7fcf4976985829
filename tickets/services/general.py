"""A request for general help: the ticket, its first message, and the acknowledgement."""

from collections.abc import Sequence

from django.db import transaction
from django.utils.translation import gettext

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError
from helpdesk.ratelimit import rate_limit_hit
from tickets.audit import Actor
from tickets.models import Message, Ticket
from tickets.redaction import redact_card_numbers
from tickets.services.attachments import AttachmentUpload, attachments_add
from tickets.services.lifecycle import customer_account_open_locked, ticket_create
from tickets.services.outbox import notification_queue
from tickets.services.requester_mail import acknowledgement_allowed, ticket_subject_mailable
from tickets.services.search import message_create
from tickets.services.status_link import status_link_context

S = Ticket.Status


@transaction.atomic
def request_general(
    *,
    subject: str,
    body: str,
    contact_email: str,
    actor: Actor,
    customer: Customer | None = None,
    channel: str = Ticket.Channel.PORTAL,
    language: str | None = None,
    email_message_id: str | None = None,
    client_key: str | None = None,
    sender_authenticated: bool = False,
    attachments: Sequence[AttachmentUpload] = (),
    acknowledge: bool = True,
) -> Ticket:
    """Log a general help request and acknowledge it to the address given.

    :param client_key: the requester's address, rate-limited when the request came from outside.
    :param sender_authenticated: mail whose sender our receiving server authenticated (its
        acknowledgement is counted for that sender, not for all mail).
    :param attachments: files sent with the request (ValidationError, nothing saved, if one
        breaks the rules).
    :param acknowledge: False when the sender asked for no automatic answer (mail).

    Longer than most: the logged-in and the logged-out request are one path, whose checks
    (limits, the account's state, files) differ only in their arguments.
    """
    if client_key is not None:
        rate_limit_hit(scope="request_per_client", key=client_key)
    if isinstance(actor, Customer):
        # Signed in before a freeze or closure that committed since: nothing is written.
        customer_account_open_locked(actor)
    subject, _found = redact_card_numbers(subject)
    body, _found = redact_card_numbers(body)
    if not subject.strip() or not body.strip():
        raise ApplicationError(gettext("A subject and a message are both needed."))
    ticket = ticket_create(
        kind=Ticket.Kind.GENERAL,
        subject=subject.strip(),
        actor=actor,
        customer=customer,
        contact_email=contact_email or (customer.email if customer else ""),
        channel=channel,
        status=S.OPEN,
        language=language,
    )
    message = message_create(
        ticket=ticket,
        author=Message.Author.CUSTOMER,
        body=body,
        channel=channel,
        email_message_id=email_message_id,
    )
    attachments_add(message=message, uploads=attachments, actor=actor)
    if (
        acknowledge
        and ticket.contact_email
        and acknowledgement_allowed(
            ticket.contact_email, client_key=client_key, sender_authenticated=sender_authenticated
        )
    ):
        # Requester-supplied text goes only to the email on record: an acknowledgement to any
        # other address carries our reference and standard text, so it cannot carry spam.
        subject = ticket_subject_mailable(ticket, ticket.contact_email)
        notification_queue(
            ticket=ticket,
            template="ticket_received",
            recipient=ticket.contact_email,
            context={
                **({"subject": subject} if subject else {}),
                **status_link_context(recipient=ticket.contact_email),
            },
            key=f"ticket_received:{ticket.reference}",
        )
    return ticket
