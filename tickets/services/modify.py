"""Modify personal information: the field diff, its checks, approval, applying it."""

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import (
    customer_account_open,
    customer_get_by_email,
    email_canonical,
)
from helpdesk.exceptions import TransitionNotAllowed
from helpdesk.ratelimit import rate_limit_hit
from helpdesk.validators import HIDDEN_CHARACTERS
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customer_lock
from tickets.models import (
    AnonymousRequest,
    FieldChange,
    Message,
    Ticket,
    Verification,
)
from tickets.request_fields import modify_change_low_risk
from tickets.services.anonymous import (
    anonymous_request_attach,
    anonymous_request_email,
    anonymous_request_limits,
    anonymous_request_open,
)
from tickets.services.attachments import (
    ATTACHMENTS_ONLY_BODY,
    AttachmentUpload,
    attachments_add,
)
from tickets.services.lifecycle import ticket_create
from tickets.services.modify_approval import modify_changes_apply, modify_pending
from tickets.services.modify_input import (
    MODIFY_SAME_VALUES,
    customer_values,
    modify_note_clean,
    modify_validate,
)
from tickets.services.registration import (
    registration_changes_offer,
    registration_choose_by_owner,
)
from tickets.services.requester_mail import new_email_link_mailable
from tickets.services.search import message_create
from tickets.services.transitions import ticket_move
from tickets.services.verification import verification_start
from tickets.services.versions import ticket_version_bump

S = Ticket.Status
MODIFY_SUBJECT = gettext_noop("Change of personal information")
MODIFY_ACCOUNT_LOCKED_OUT = gettext_noop(
    "This account is suspended or closed; its login cannot ask for changes to it."
)


def _modify_changes_record(
    ticket: Ticket, customer: Customer, diff: dict[str, str], actor: Actor
) -> None:
    current = customer_values(customer)
    rows = [
        FieldChange(ticket=ticket, field=field, old_value=current[field], new_value=value)
        for field, value in diff.items()
    ]
    FieldChange.objects.bulk_create(rows)
    audit_record(
        actor=actor,
        action="modify.requested",
        ticket=ticket,
        details={
            "changes": [{"field": r.field, "old": r.old_value, "new": r.new_value} for r in rows]
        },
    )
    if "email" in diff:
        registration_changes_offer(ticket=ticket, customer=customer, new_email=diff["email"])


@transaction.atomic
def request_modify(
    *,
    email: str | None,
    customer: Customer | None,
    changes: dict[str, str],
    note: str,
    client_key: str,
    actor: Actor,
    channel: str = Ticket.Channel.PORTAL,
    registration: Mapping[str, Iterable[str]] | None = None,
    attachments: Sequence[AttachmentUpload] = (),
) -> Ticket:
    """Log a change of personal information, with any proof attached (a name change's).

    A logged-in owner (`customer`) is verified by the session: the ticket opens at once. Anyone
    else gives the email on record; a link goes to that record and the answer is the same
    whether or not it exists. Raises ValidationError keyed `email` (the address given) or
    `changes` (each error's code names the field).

    :param registration: the owner's choice, domain name -> {"owner", "admin"}, of the
        registration records to change at OpenSRS with their email (session only; anyone else
        chooses on the verification page).
    :param attachments: files sent with the request; ValidationError keyed `attachments`, and
        nothing saved, if one breaks the rules.
    """
    if customer is None:
        anonymous_request_limits(client_key=client_key)
        email = anonymous_request_email(email)
    else:
        rate_limit_hit(scope="request_per_client", key=client_key)
        rate_limit_hit(scope="request_per_email", key=email_canonical(customer.email))
    cleaned = modify_validate(changes, customer_values(customer) if customer else None)
    note = modify_note_clean(note)
    if customer is not None:
        return _request_modify_by_owner(
            customer, cleaned, note, actor, channel, registration or {}, attachments
        )
    # Anonymous: the same rows whether or not the address is on record; the worker looks it
    # up (modify_anonymous_continue).
    ticket = anonymous_request_open(
        kind=Ticket.Kind.MODIFY_INFO,
        subject=MODIFY_SUBJECT,
        actor=actor,
        channel=channel,
        email=cast(str, email),
        changes=cleaned,
        note=note,
    )
    _modify_attachments_add(ticket, attachments, actor)
    return ticket


def _request_modify_by_owner(
    customer: Customer,
    cleaned: dict[str, str],
    note: str,
    actor: Actor,
    channel: str,
    registration: Mapping[str, Iterable[str]],
    attachments: Sequence[AttachmentUpload],
) -> Ticket:
    """The owner, verified by their session: the ticket opens at once with what differs."""
    # Before anything is recorded: low-risk changes are applied to it below.
    customer = customer_lock(pk=customer.pk)
    # Read again under the lock: a session signed in before a freeze may still be mid-request.
    if not customer_account_open(customer):
        raise TransitionNotAllowed(gettext(MODIFY_ACCOUNT_LOCKED_OUT))
    diff = {f: v for f, v in cleaned.items() if v != getattr(customer, f)}
    if not diff:
        raise ValidationError({"changes": [gettext(MODIFY_SAME_VALUES)]})
    ticket = ticket_create(
        kind=Ticket.Kind.MODIFY_INFO,
        subject=MODIFY_SUBJECT,
        actor=actor,
        customer=customer,
        contact_email=customer.email,
        body=note,
        channel=channel,
        status=S.OPEN,
        verified_by=Ticket.VerifiedBy.SESSION,
    )
    _modify_changes_record(ticket, customer, diff, actor)
    _modify_attachments_add(ticket, attachments, actor)
    if registration and "email" in diff:
        registration_choose_by_owner(ticket=ticket, customer=customer, choices=registration)
    _modify_after_verified(ticket, actor)
    return ticket


def _modify_attachments_add(
    ticket: Ticket, attachments: Sequence[AttachmentUpload], actor: Actor
) -> None:
    """Keep the files on the request's own message, or on one saying files came with it.

    An anonymous request's note joins the ticket only once the worker found the record, so its
    files get a message of their own, made the same way whether or not the record exists.
    """
    if not attachments:
        return
    message = ticket.messages.filter(author=Message.Author.CUSTOMER).first()
    if message is None:
        message = message_create(
            ticket=ticket,
            author=Message.Author.CUSTOMER,
            body=ATTACHMENTS_ONLY_BODY,
            channel=ticket.channel,
        )
    attachments_add(message=message, uploads=attachments, actor=actor)


def modify_anonymous_continue(*, ticket: Ticket, request: AnonymousRequest) -> str:
    """The worker's half of an anonymous change request, on the locked ticket.

    Finds the customer with the email on record given; records the changes and the note on
    the ticket and mails the link to that address. Past the per-address limit no link is
    mailed: the ticket is joined to the last request that mailed one (and expires).
    """
    owner = customer_get_by_email(email=request.email)
    if owner is None:
        return AnonymousRequest.Outcome.NO_RECORD
    diff = {f: v for f, v in request.changes.items() if v != getattr(owner, f, v)}
    if not diff:
        return AnonymousRequest.Outcome.NO_CHANGE
    if not anonymous_request_attach(ticket=ticket, request=request, owner=owner):
        return AnonymousRequest.Outcome.COALESCED
    if request.note:
        message_create(
            ticket=ticket,
            author=Message.Author.CUSTOMER,
            # Refused when typed (modify_note_clean); one kept from before that is cleaned here,
            # so the worker never fails on it.
            body=HIDDEN_CHARACTERS.sub("", request.note),
            channel=ticket.channel,
        )
    _modify_changes_record(ticket, owner, diff, request.actor)
    verification_start(ticket=ticket, send_to=owner.email)
    return AnonymousRequest.Outcome.LINK_SENT


def _modify_after_verified(ticket: Ticket, actor: Actor) -> None:
    """The policy once the requester is verified: low-risk fields at once, the rest to staff."""
    pending = modify_pending(ticket)
    if settings.MODIFY_AUTO_APPLY_LOW_RISK and ticket.customer_id:
        customer = customer_lock(pk=ticket.customer_id)
        auto = (
            []
            if not customer_account_open(customer)
            else [
                change
                for change in pending
                if modify_change_low_risk(field=change.field, new_value=change.new_value)
                and getattr(customer, change.field) == change.old_value
            ]
        )
        if auto:
            modify_changes_apply(ticket, customer, auto, actor="system", how="low-risk policy")
            pending = [change for change in pending if change not in auto]
    for change in pending:
        if change.field != "email":
            continue
        if new_email_link_mailable(change.new_value):
            verification_start(
                ticket=ticket, purpose=Verification.Purpose.NEW_EMAIL, send_to=change.new_value
            )
        else:
            # On the chain, so staff see why the ticket waits with no link out; the address as
            # verification.sent writes it (the change itself shows it to staff).
            audit_record(
                actor="system",
                action="verification.held",
                ticket=ticket,
                details={
                    "purpose": Verification.Purpose.NEW_EMAIL,
                    "to": change.new_value,
                    "limit": "new_email_link_per_address",
                },
            )
    if not pending:
        ticket_move(ticket, to=S.RESOLVED, actor="system", reason="all changes applied")


def modify_verified(*, ticket: Ticket, actor: Actor) -> None:
    """The owner confirmed the request by the link to the email on record: go on with it."""
    _modify_after_verified(ticket, actor)


def modify_new_email_confirmed(*, ticket: Ticket) -> None:
    """The new address answered its link: the change now waits only for a supervisor."""
    ticket.save(update_fields=ticket_version_bump(ticket))
