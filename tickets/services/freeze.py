"""The old address of an email change says "this wasn't me": undo it, freeze the account.

Taking over an account through a support desk ends with its email address changed; the old
address is the one the real owner still reads. Its notice carries a link that puts the old
address back, suspends the account, ends every session and API token, and hands the ticket to
a supervisor, whatever the new address does in the meantime. The registration records the
takeover changed at OpenSRS are offered there for the supervisor to put back
(services.registration_put_back).
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import Customer
from accounts.selectors import account_is_frozen, customer_get_by_email, email_canonical
from accounts.services import user_credentials_revoke
from domains.models import RegistrationChange
from helpdesk.exceptions import ApplicationError, StaffForbidden, StaleVersion
from helpdesk.ratelimit import rate_limit_hit
from tickets.audit import Actor, audit_record
from tickets.lock_objects import (
    customer_lock,
    registration_changes_queued_lock,
    tickets_and_customers_lock,
    tickets_of_customer_lock,
    verification_lock,
)
from tickets.models import FieldChange, Ticket, Verification
from tickets.redaction import redact_card_numbers
from tickets.services.lifecycle import ticket_create, ticket_due_at
from tickets.services.opt_out import unsubscribe_links_end
from tickets.services.outbox import notification_queue
from tickets.services.registration_put_back import (
    REGISTRATION_SENT,
    registration_put_backs_offer,
)
from tickets.services.transitions import TRANSITIONS, ticket_move
from tickets.services.verification import VERIFICATION_INVALID, verification_link_issue
from tickets.services.versions import (
    ticket_change_save,
    ticket_system_note_add,
    ticket_version_bump,
)
from tickets.tokens import token_hash_if_wellformed

S = Ticket.Status
_REJECTABLE = (S.AWAITING_VERIFICATION, S.OPEN, S.AWAITING_CUSTOMER)

ACCOUNT_FROZEN = gettext_noop(
    "This account is frozen after its owner reported a change they did not make; a supervisor "
    "must lift the freeze before anything on it changes."
)
NOT_FROZEN = gettext_noop("This account is not frozen.")
FREEZE_CHANGED = gettext_noop(
    "This account was frozen again after the freeze you were shown, so nothing was lifted. "
    "Read the new report and check the customer's identity for it before lifting the freeze."
)
FROZEN_NOTE = gettext_noop(
    "The previous email address of this account said this change was not theirs. Put back: "
    "{fields}. The account is suspended and its sessions and API tokens are revoked. Check the "
    "customer's identity before lifting the freeze or changing anything on it."
)
FROZEN_NOTE_REGISTRATION = gettext_noop(
    "The registration records of {domains} were changed (or may have been) at OpenSRS to the "
    "reported address. Once the customer's identity is checked, a supervisor puts them back "
    "with “Put back at OpenSRS” on this ticket; an owner email put back is a change of "
    "registrant at OpenSRS."
)


def freeze_link_issue(*, ticket: Ticket, old_email: str) -> str:
    """A single-use link for the old address of an email change; valid FREEZE_LINK_TTL."""
    return verification_link_issue(
        ticket=ticket,
        purpose=Verification.Purpose.NOT_ME,
        send_to=old_email,
        ttl=settings.FREEZE_LINK_TTL,
        view="portal:not-me",
    )


def freeze_link_get_live(*, token: str) -> Verification | None:
    """The unused, unexpired freeze link for `token`, or None; reads only."""
    digest = token_hash_if_wellformed(token)
    if digest is None:
        return None
    return (
        Verification.objects.select_related("ticket")
        .filter(
            token_hash=digest,
            purpose=Verification.Purpose.NOT_ME,
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )


@transaction.atomic
def account_freeze(*, token: str, client_key: str, actor: Actor) -> Ticket:
    """Undo the email change a freeze link was sent for, suspend the account, alert staff.

    Returns the ticket a supervisor now holds. Raises ApplicationError for a link that is
    unknown, used or expired (the same message for each).

    Longer than most: every lock is taken before the first write (tickets.lock_objects's
    order), so the undoing of the change, the suspension and the alert are one transaction.
    """
    rate_limit_hit(scope="verify_per_client", key=client_key)
    live = freeze_link_get_live(token=token)
    if live is None:
        raise ApplicationError(VERIFICATION_INVALID)
    [ticket] = tickets_and_customers_lock(live.ticket_id)
    verification = verification_lock(pk=live.pk)
    if verification.used_at is not None or ticket.customer_id is None:
        raise ApplicationError(VERIFICATION_INVALID)
    customer = customer_lock(pk=ticket.customer_id)
    # Every lock before the first audit row (the order in tickets.lock_objects). All of the
    # account's tickets: a resolved or closed one may write to a reported address as well.
    tickets = tickets_of_customer_lock(customer=customer, statuses=S.values, exclude=ticket)
    others = [t for t in tickets if t.kind == Ticket.Kind.MODIFY_INFO and t.status in _REJECTABLE]
    stopped = _registration_changes_stop(customer)
    verification.used_at = timezone.now()
    verification.save(update_fields=["used_at", "updated_at"])
    new_email = customer.email
    held_since = _addresses_held_since(ticket, customer)
    reverted = _revert_applied_changes(ticket, customer, reported_by=verification.sent_to)
    customer.account_status = Customer.AccountStatus.SUSPENDED
    customer.freeze_version += 1
    customer.save(update_fields=["account_status", "freeze_version", "updated_at"])
    restored = email_canonical(customer.email)
    taken_back = [address for address in held_since if email_canonical(address) != restored]
    links_ended = sum(_status_links_revoke(customer, address) for address in taken_back)
    registration_changed = _registration_changed_to(customer, taken_back)
    revoked = _credentials_revoke(customer)
    audit_record(
        actor=actor,
        action="account.frozen",
        ticket=ticket,
        customer=customer,
        details={
            "reported_by": verification.sent_to,
            "freeze_version": customer.freeze_version,
            "reverted": reverted,
            "credentials_revoked": revoked,
            **({"status_links_ended": links_ended} if links_ended else {}),
            **({"registration_changes_stopped": stopped} if stopped else {}),
            **({"registration_changed": registration_changed} if registration_changed else {}),
        },
    )
    held = _hand_to_supervisor(ticket, customer, reverted, registration_changed, actor)
    registration_put_backs_offer(ticket=held, customer=customer, taken_back=taken_back, actor=actor)
    _contacts_take_back(tickets, customer, taken_back, actor=actor)
    _other_requests_reject(others, actor=actor)
    recipients = {email_canonical(customer.email): customer.email}
    recipients.setdefault(email_canonical(new_email), new_email)
    for recipient in recipients.values():
        notification_queue(
            ticket=held,
            template="account_frozen",
            recipient=recipient,
            context={"reference": held.reference},
        )
    return held


def _addresses_held_since(ticket: Ticket, customer: Customer) -> list[str]:
    """The addresses the account's email was set to from the reported change on, and its own.

    Whoever made the reported change held each of them: a second change made from the first
    new address is theirs too (A -> B, then B -> C: the freeze from A takes back B and C).
    """
    applied = ticket.changes.filter(field="email", applied_at__isnull=False).first()
    if applied is None:
        return [customer.email]
    later = FieldChange.objects.filter(
        ticket__customer=customer, field="email", applied_at__gte=applied.applied_at
    ).values_list("new_value", flat=True)
    addresses = {email_canonical(address): address for address in later}
    addresses.setdefault(email_canonical(customer.email), customer.email)
    return list(addresses.values())


def _revert_applied_changes(
    ticket: Ticket, customer: Customer, *, reported_by: str
) -> list[dict[str, str]]:
    """Put back each value the ticket applied that still stands; the rows stay as history.

    The email goes back to the reporting address even when it was changed again since: only
    whoever held the new address could have changed it again.
    """
    from tickets.services.modify_approval import modify_login_for

    changed_email = customer.email
    rows = []
    for change in ticket.changes.filter(applied_at__isnull=False).order_by("id"):
        current = getattr(customer, change.field)
        if change.field == "email":
            if email_canonical(change.old_value) != email_canonical(reported_by):
                continue
            if email_canonical(current) == email_canonical(change.old_value):
                continue
            other = customer_get_by_email(email=change.old_value)
            if other is not None and other.pk != customer.pk:
                continue
        elif current != change.new_value:
            continue  # changed again since: a supervisor sorts that out
        setattr(customer, change.field, change.old_value)
        rows.append({"field": change.field, "old": current, "new": change.old_value})
    if not rows:
        return rows
    login = None
    fields = [row["field"] for row in rows]
    if "email" in fields:
        login = modify_login_for(customer, changed_email)
        fields.append(unsubscribe_links_end(customer))
    customer.save(update_fields=[*fields, "updated_at"])
    if login is not None:
        login.save(update_fields=["username", "email"])
    return rows


def _registration_changes_stop(customer: Customer) -> list[str]:
    """Stop the customer's registration changes still waiting for the worker; their domains.

    Whoever took the account over chose them: none may take the reported address to OpenSRS
    after the freeze. A change the worker already claimed is past stopping (the supervisor's
    note names it). Runs before the first audit row (these rows come before the chain head).
    """
    queued = registration_changes_queued_lock(customer=customer)
    RegistrationChange.objects.filter(pk__in=[change.pk for change in queued]).update(
        status=RegistrationChange.Status.SKIPPED,
        response_text="account frozen by its owner",
        updated_at=timezone.now(),
    )
    return sorted({change.domain.name for change in queued})


def _registration_changed_to(customer: Customer, addresses: list[str]) -> list[str]:
    """The customer's domains whose record was sent to OpenSRS naming one of `addresses`."""
    taken = {email_canonical(address) for address in addresses}
    sent = RegistrationChange.objects.filter(
        ticket__customer=customer,
        purpose=RegistrationChange.Purpose.CHANGE,
        status__in=REGISTRATION_SENT,
    ).values_list("domain__name", "new_email")
    return sorted({name for name, new_email in sent if email_canonical(new_email) in taken})


def _status_links_revoke(customer: Customer, address: str) -> int:
    """End the status and satisfaction links of the customer's tickets mailed to `address`.

    The address an email change was reported for held them while the change stood; they would
    go on opening and answering the customer's tickets after the freeze. Runs before the first
    audit row (the verification rows come before the chain head in tickets.lock_objects).
    """
    now = timezone.now()
    live = Verification.objects.filter(
        ticket__customer=customer,
        purpose__in=[Verification.Purpose.STATUS, Verification.Purpose.SATISFACTION],
        expires_at__gt=now,
    ).values_list("pk", "sent_to")
    taken = email_canonical(address)
    ended = [pk for pk, sent_to in live if email_canonical(sent_to) == taken]
    return Verification.objects.filter(pk__in=ended).update(expires_at=now, updated_at=now)


def _contacts_take_back(
    tickets: list[Ticket], customer: Customer, addresses: list[str], *, actor: Actor
) -> None:
    """Point the locked tickets that wrote to `addresses` back at the restored email."""
    taken = {email_canonical(address) for address in addresses}
    for other in tickets:
        if email_canonical(other.contact_email) not in taken:
            continue
        other.contact_email = customer.email
        ticket_change_save(
            other,
            ["contact_email"],
            actor=actor,
            action="ticket.contact_changed",
            details={"reason": "account frozen by its owner"},
        )


def _other_requests_reject(others: list[Ticket], *, actor: Actor) -> None:
    """Refuse the account's other open change requests: whoever took it over may have made them."""
    for other in others:
        ticket_move(other, to=S.REJECTED, actor=actor, reason="account frozen by its owner")


def _credentials_revoke(customer: Customer) -> dict[str, int]:
    if customer.user is None:
        return {"api_tokens": 0, "sessions": 0}
    return user_credentials_revoke(user=customer.user)


def _hand_to_supervisor(
    ticket: Ticket,
    customer: Customer,
    reverted: list[dict[str, str]],
    registration_changed: list[str],
    actor: Actor,
) -> Ticket:
    """Reopen the ticket at high priority with a note, or open a new one if it is closed."""
    fields = ", ".join(row["field"] for row in reverted) or "-"
    note = FROZEN_NOTE.format(fields=fields)
    if registration_changed:
        note += " " + FROZEN_NOTE_REGISTRATION.format(domains=", ".join(registration_changed))
    if S.OPEN in TRANSITIONS[ticket.status]:
        ticket_move(ticket, to=S.OPEN, actor=actor, reason="owner reported the change")
        held = ticket
    elif ticket.is_open:
        held = ticket
    else:
        held = ticket_create(
            kind=Ticket.Kind.GENERAL,
            subject=f"Account frozen: {ticket.reference}",
            actor=actor,
            customer=customer,
            contact_email=customer.email,
            channel=Ticket.Channel.SYSTEM,
            status=S.OPEN,
        )
    previous_assignee = held.assignee.get_username() if held.assignee else None
    held.priority = Ticket.Priority.URGENT
    held.assignee = None
    held.due_at = ticket_due_at(kind=held.kind, priority=held.priority)
    held.contact_email = customer.email
    # Its holder and due time are in what the customer reads: their version moves too (the
    # note below moves staff's only).
    changed = ["priority", "assignee", "due_at", "contact_email"]
    held.save(update_fields=[*changed, *ticket_version_bump(held)])
    ticket_system_note_add(held, body=note, actor=actor)
    audit_record(
        actor=actor,
        action="ticket.priority_changed",
        ticket=held,
        # Who held the ticket until the freeze took it from them, for the trail.
        details={
            "to": held.priority,
            "reason": "account frozen",
            "assignee_was": previous_assignee,
        },
    )
    return held


@transaction.atomic
def account_unfreeze(
    *, customer: Customer, freeze_version: int, actor: Actor, reason: str
) -> Customer:
    """A supervisor lifts the freeze once they have checked the customer's identity.

    :param freeze_version: the `Customer.freeze_version` of the freeze the supervisor was
        shown. A newer freeze was reported after that identity check: it stays, and the lift
        is refused (StaleVersion, 409).
    """
    from accounts.selectors import is_supervisor

    if isinstance(actor, str | Customer) or not is_supervisor(actor):
        raise StaffForbidden(gettext_noop("Only a supervisor can lift a freeze."))
    if not reason.strip():
        raise ApplicationError(gettext_noop("Say how the customer's identity was checked."))
    locked = customer_lock(pk=customer.pk)
    if not account_is_frozen(locked):
        raise ApplicationError(NOT_FROZEN)
    if locked.freeze_version != freeze_version:
        raise StaleVersion(FREEZE_CHANGED, {"freeze_version": locked.freeze_version})
    locked.account_status = Customer.AccountStatus.ACTIVE
    # Its login is let back in: the save counts it (accounts.services.customer_saving).
    locked.save(update_fields=["account_status", "updated_at"])
    reason = redact_card_numbers(reason)[0][:500]
    audit_record(
        actor=actor,
        action="account.unfrozen",
        customer=locked,
        details={"reason": reason, "freeze_version": locked.freeze_version},
    )
    return locked
