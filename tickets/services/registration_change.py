"""The worker's side of a registration change: one chosen change at OpenSRS, at most once.

Staff approved the email change (registration.registration_changes_queue): the worker reads the
domain's contacts, sends the chosen ones that still name the old address (MODIFY DOMAIN
data=contact_info), and records OpenSRS's answer on the change, the domain and the ticket. A
change whose outcome is unknown is never repeated: it becomes a task for staff.

A put-back after a freeze (services.registration_put_back) takes the same path once a supervisor
asked for it, the other way: from the reported address back to the email on record, while the
account is frozen, and only for a contact that still names the reported address.

Long because both share the one at-most-once protocol: its guards, the call, and each outcome's
note, audit row and retry side by side.
"""

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.selectors import customer_account_open, email_canonical
from domains.models import Domain, RegistrationChange
from domains.opensrs import (
    DomainNotInAccount,
    OpenSRSAuthError,
    OpenSRSClient,
    OpenSRSError,
    OpenSRSOutcomeUnknown,
    OpenSRSReply,
    OpenSRSTransientError,
    client_from_settings,
)
from helpdesk.exceptions import RetryLater
from tickets.audit import audit_record
from tickets.lock_objects import (
    customer_lock,
    domain_lock,
    registration_change_claim_lock,
    ticket_lock,
)
from tickets.models import Message, Ticket
from tickets.services.lifecycle import ticket_priority_set, ticket_transition
from tickets.services.publishing import registration_changes_publish
from tickets.services.replies import ticket_reply_add
from tickets.services.transitions import ticket_needs_owner

RC = RegistrationChange.Status
S = Ticket.Status

REGISTRATION_NOTE_DONE = "OpenSRS changed the registration {kinds} email of {domain}: {text}"
REGISTRATION_NOTE_REFUSED = (
    "OpenSRS refused to change the registration {kinds} email of {domain} ({error}). Nothing "
    "changed there; the customer's email with us did change. Ask the customer, or change it "
    "from the reseller control panel."
)
REGISTRATION_NOTE_UNKNOWN = (
    "OpenSRS did not answer the change of {domain}'s registration {kinds} email ({error}); it "
    "may or may not have been made. It was not retried, so the registrant is not asked twice. "
    "Check the domain at OpenSRS and finish the change there if it is not made."
)
REGISTRATION_NOTE_GAVE_UP = (
    "OpenSRS could not be reached to change {domain}'s registration {kinds} email after {tries} "
    "tries ({error}). Nothing was sent; change it from the reseller control panel."
)
REGISTRATION_NOTE_SKIPPED = "{domain}'s registration record was not changed: {why}"
PUT_BACK_NOTE_DONE = (
    "OpenSRS put back the registration {kinds} email of {domain} to the email on record: {text}"
)
PUT_BACK_NOTE_REFUSED = (
    "OpenSRS refused to put back the registration {kinds} email of {domain} ({error}). It may "
    "still name the reported address: put it back from the reseller control panel, or make the "
    "direct request to OpenSRS."
)
PUT_BACK_NOTE_UNKNOWN = (
    "OpenSRS did not answer the put-back of {domain}'s registration {kinds} email ({error}); it "
    "may or may not have been made. It was not retried. Check the domain at OpenSRS and put it "
    "back there if it still names the reported address."
)
PUT_BACK_NOTE_GAVE_UP = (
    "{domain}'s registration {kinds} email could not be put back after {tries} tries ({error}). "
    "Nothing was sent; put it back from the reseller control panel."
)
PUT_BACK_NOTE_SKIPPED = "{domain}'s registration record was not put back: {why}"
_NOTES = {
    "done": (REGISTRATION_NOTE_DONE, PUT_BACK_NOTE_DONE),
    "refused": (REGISTRATION_NOTE_REFUSED, PUT_BACK_NOTE_REFUSED),
    "unknown": (REGISTRATION_NOTE_UNKNOWN, PUT_BACK_NOTE_UNKNOWN),
    "gave_up": (REGISTRATION_NOTE_GAVE_UP, PUT_BACK_NOTE_GAVE_UP),
    "skipped": (REGISTRATION_NOTE_SKIPPED, PUT_BACK_NOTE_SKIPPED),
}
IN_FLIGHT = "a registration change of this domain is still being sent to OpenSRS"
# How long a change may stay `sending` before a redelivered task calls its outcome unknown.
_SENDING_GRACE = timedelta(seconds=30)


def _kinds(change: RegistrationChange, sent: Collection[str] | None = None) -> str:
    """The contacts chosen for the change, or those of them `sent` to OpenSRS, in words."""
    chosen = (("owner", change.update_owner), ("admin", change.update_admin))
    return " and ".join(k for k, on in chosen if on and (sent is None or k in sent))


def _note(change: RegistrationChange, outcome: str) -> str:
    """The staff note's text for `outcome`: a change's, or a put-back's."""
    change_note, put_back_note = _NOTES[outcome]
    return put_back_note if change.is_put_back else change_note


class RegistrationChangeRetry(RetryLater):
    """OpenSRS could not be reached and nothing was sent."""


def registration_changes_requeue_due(*, batch_size: int = 200) -> int:
    """Queue changes whose task never ran (broker down at commit); the claim makes it safe."""
    cutoff = timezone.now() - settings.NOTIFICATION_SWEEP_AFTER
    due = list(
        RegistrationChange.objects.filter(status=RC.QUEUED, updated_at__lt=cutoff, attempts=0)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    registration_changes_publish(due, sweep=True)
    return len(due)


def _staff_task(ticket_id: int, note: str, *, reopen: bool) -> None:
    """An internal note for staff; with `reopen`, the ticket goes back to the queue, high."""
    ticket = Ticket.objects.get(pk=ticket_id)
    ticket_reply_add(
        ticket=ticket,
        body=note,
        actor="worker",
        author=Message.Author.SYSTEM,
        channel=Ticket.Channel.SYSTEM,
        internal=True,
    )
    if reopen:
        ticket.refresh_from_db()
        if ticket.status == S.RESOLVED:
            ticket_transition(
                ticket=ticket, to=S.OPEN, actor="worker", reason="registration change needs staff"
            )
        # Never down: the ticket a freeze hands to a supervisor stays urgent.
        if ticket.priority != Ticket.Priority.URGENT and (
            ticket.is_open or ticket.status == S.RESOLVED
        ):
            ticket_priority_set(ticket=ticket, priority=Ticket.Priority.HIGH, actor="worker")


@transaction.atomic
def _registration_finish(
    change_id: int,
    *,
    status: str,
    action: str,
    code: int | None,
    text: str,
    note: str = "",
    reopen: bool = False,
    registrant_change: str = "",
    from_status: str = RC.SENDING,
    sent: Collection[str] = (),
) -> str:
    """Record OpenSRS's answer (or its absence) on the change and the ticket, once.

    For a change made, `sent` names the contacts sent: the cached record takes the new address
    on those only (a chosen contact that no longer named the old address was left as it is).

    Longer than most: the outcomes of a change and of a put-back share one record, so each
    outcome's fields, note and audit row are written side by side, once.
    """
    change = RegistrationChange.objects.select_related("domain").get(pk=change_id)
    ticket_lock(pk=change.ticket_id)
    # Before the first audit row (the order in tickets.lock_objects).
    domain = domain_lock(pk=change.domain_id) if status == RC.DONE else None
    updated = RegistrationChange.objects.filter(pk=change_id, status=from_status).update(
        status=status,
        response_code=code,
        response_text=text[:500],
        registrant_change=registrant_change[:32],
        answered_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if not updated:
        return "skipped"
    audit_record(
        actor="worker",
        action=action,
        ticket=change.ticket,
        details={
            "domain": change.domain.name,
            "owner": change.update_owner,
            "admin": change.update_admin,
            "new_email": change.new_email,
            **({"put_back": True, "old_email": change.old_email} if change.is_put_back else {}),
            "response_code": code,
            "response_text": text[:300],
            **({"registrant_change": registrant_change} if registrant_change else {}),
            **({"sent": sorted(sent)} if sent else {}),
        },
    )
    if domain is not None:
        fields = ["registrant_change", "updated_at"]
        if "owner" in sent:
            domain.registrant_email = change.new_email
            domain.registrant_email_status = Domain.EmailStatus.UNKNOWN
            fields += ["registrant_email", "registrant_email_status"]
        if "admin" in sent:
            domain.admin_email = change.new_email
            fields.append("admin_email")
        domain.registrant_change = registrant_change[:32]
        domain.save(update_fields=fields)
    if note:
        _staff_task(change.ticket_id, note, reopen=reopen)
    return str(status)


def _registration_guard(change: RegistrationChange) -> str:
    """Why the approved change may not go to OpenSRS now, or ""."""
    if change.is_put_back:
        return _put_back_guard(change)
    ticket = change.ticket
    if ticket_needs_owner(ticket):
        return "the request was not verified by its owner"
    if not ticket.changes.filter(field="email", applied_at__isnull=False).exists():
        return "the email change was not approved"
    customer = ticket.customer
    if customer is None or not customer_account_open(customer):
        # Closed too: an account that has left has no record changed for it at OpenSRS.
        return "the account is frozen or closed"
    if email_canonical(customer.email) != email_canonical(change.new_email):
        return "the email on record changed again since"
    return ""


def _put_back_guard(change: RegistrationChange) -> str:
    """Why a put-back may not go to OpenSRS now, or "". A frozen account is no reason."""
    customer = change.ticket.customer
    if change.chosen_at is None:
        return "no supervisor asked for it"
    if customer is None or email_canonical(customer.email) != email_canonical(change.new_email):
        return "the email on record changed since the freeze"
    if email_canonical(change.old_email) == email_canonical(change.new_email):
        return "the record already names the email on record"
    return ""


def _put_back_waits(change: RegistrationChange) -> bool:
    """Whether a change of the put-back's domain is still on its way to OpenSRS.

    Read first, the record could still name the email on record, and the change in flight land
    after the put-back: it waits until that change's outcome is recorded.
    """
    return (
        change.is_put_back
        and RegistrationChange.objects.filter(
            domain_id=change.domain_id,
            purpose=RegistrationChange.Purpose.CHANGE,
            status=RC.SENDING,
        ).exists()
    )


def _registration_contact_set(
    change: RegistrationChange, contact_set: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """The whole contacts to send: the chosen ones that still name the old address."""
    old = email_canonical(change.old_email)
    wanted = {"owner": change.update_owner, "admin": change.update_admin}
    return {
        kind: {**contact_set[kind], "email": change.new_email}
        for kind, on in wanted.items()
        if on
        and kind in contact_set
        and email_canonical(str(contact_set[kind].get("email", ""))) == old
    }


def _registration_retry_or_give_up(
    change: RegistrationChange, exc: OpenSRSError, *, from_status: str
) -> str:
    """Nothing was sent: back to queued and retry later, or hand it to staff after the last try."""
    tries = settings.REGISTRATION_CHANGE_MAX_TRIES
    if change.attempts >= tries:
        return _registration_to_staff(
            change,
            status=RC.FAILED,
            action="registration.gave_up",
            code=exc.code,
            error=str(exc),
            outcome="gave_up",
            from_status=from_status,
            tries=tries,
        )
    if from_status == RC.SENDING:
        RegistrationChange.objects.filter(pk=change.pk, status=RC.SENDING).update(
            status=RC.QUEUED, updated_at=timezone.now()
        )
    raise RegistrationChangeRetry(min(600, 30 * 2 ** (change.attempts - 1)), str(exc))


def registration_change_process(*, change_id: int) -> str:
    """Make one chosen registration change at OpenSRS; at most once.

    Raises RegistrationChangeRetry when OpenSRS could not be reached and nothing was sent.
    """
    change = (
        RegistrationChange.objects.select_related("ticket__customer", "domain")
        .filter(pk=change_id)
        .first()
    )
    if change is None:
        return "skipped"
    if change.status == RC.SENDING:
        if change.updated_at > timezone.now() - _SENDING_GRACE - timedelta(
            seconds=settings.OPENSRS_TASK_SOFT_TIME_LIMIT
        ):
            return "skipped"  # another delivery is on it
        # An earlier delivery died between asking OpenSRS and recording the answer.
        return registration_change_unknown(change_id=change_id, error="the worker stopped mid-call")
    if change.status != RC.QUEUED:
        return "skipped"
    why = _registration_guard(change)
    if why:
        return _registration_skip(change, why, tell_staff=True)
    RegistrationChange.objects.filter(pk=change_id).update(attempts=F("attempts") + 1)
    change.attempts += 1
    if _put_back_waits(change):
        in_flight = OpenSRSTransientError(None, IN_FLIGHT)
        return _registration_retry_or_give_up(change, in_flight, from_status=RC.QUEUED)
    client = client_from_settings()
    name = change.domain.name
    contact_set = _registration_contacts_to_send(change, client)
    if isinstance(contact_set, str):
        return contact_set  # what happened instead
    claim = _registration_claim(change_id)
    if claim is None:
        return "skipped"
    if claim:
        return _registration_skip(change, claim, tell_staff=True)
    try:
        reply = client.modify_contacts(name, contact_set)
    except OpenSRSOutcomeUnknown as exc:
        return registration_change_unknown(change_id=change_id, error=str(exc))
    except OpenSRSTransientError as exc:
        return _registration_retry_or_give_up(change, exc, from_status=RC.SENDING)
    except OpenSRSError as exc:
        return _registration_refused(change, exc, from_status=RC.SENDING)
    return _registration_done(change, reply, sent=list(contact_set))


@transaction.atomic
def _registration_claim(change_id: int) -> str | None:
    """Move a queued change to sending: "" when claimed, why not to send it, or None (gone).

    Committed before the call: a redelivered task that finds `sending` never calls again. The
    guard is read again under the customer's lock, which an approval of another email change
    holds while it moves the address: one approved while the record was read is seen here.
    """
    customer_id = (
        RegistrationChange.objects.filter(pk=change_id)
        .values_list("ticket__customer_id", flat=True)
        .first()
    )
    if customer_id is not None:
        customer_lock(pk=customer_id)
    change = registration_change_claim_lock(pk=change_id)
    if change is None:
        return None
    why = _registration_guard(change)
    if not why:
        RegistrationChange.objects.filter(pk=change_id).update(
            status=RC.SENDING, updated_at=timezone.now()
        )
    return why


def _registration_contacts_to_send(
    change: RegistrationChange, client: OpenSRSClient
) -> dict[str, dict[str, str]] | str:
    """The contacts to send, read from OpenSRS; or what happened instead (nothing sent)."""
    name = change.domain.name
    try:
        contacts = client.get_domains_contacts([name])[name]
    except OpenSRSTransientError as exc:
        return _registration_retry_or_give_up(change, exc, from_status=RC.QUEUED)
    except OpenSRSError as exc:
        return _registration_refused(change, exc, from_status=RC.QUEUED)
    if contacts is None:
        not_ours = DomainNotInAccount(415, "Authentication Error.")
        return _registration_refused(change, not_ours, from_status=RC.QUEUED)
    contact_set = _registration_contact_set(change, contacts.contact_set)
    if not contact_set:
        if change.is_put_back:
            why = "the registration record no longer names the reported address"
            return _registration_skip(change, why, tell_staff=True)
        why = "the registration record no longer names the old address"
        return _registration_skip(change, why, tell_staff=False)
    return contact_set


def _registration_done(
    change: RegistrationChange, reply: OpenSRSReply, *, sent: Collection[str]
) -> str:
    """OpenSRS made the change of the `sent` contacts: record its answer and registrant state."""
    name = change.domain.name
    details = reply.attributes.get("details")
    entry = details.get(name, {}) if isinstance(details, dict) else {}
    text = str(entry.get("response_text") or reply.text) if isinstance(entry, dict) else reply.text
    registrant = str(entry.get("registrant_status", "")) if isinstance(entry, dict) else ""
    return _registration_finish(
        change.pk,
        status=RC.DONE,
        action="registration.changed",
        code=reply.code,
        text=text,
        note=_note(change, "done").format(domain=name, kinds=_kinds(change, sent), text=text),
        registrant_change=registrant if "owner" in sent else "",
        sent=sent,
    )


def _registration_to_staff(
    change: RegistrationChange,
    *,
    status: str,
    action: str,
    code: int | None,
    error: str,
    outcome: str,
    from_status: str,
    **note_args: Any,
) -> str:
    """Close the change as `status` and reopen its ticket, high, with the note for `outcome`."""
    return _registration_finish(
        change.pk,
        status=status,
        action=action,
        code=code,
        text=error,
        note=_note(change, outcome).format(
            domain=change.domain.name, kinds=_kinds(change), error=error, **note_args
        ),
        reopen=True,
        from_status=from_status,
    )


def _registration_skip(change: RegistrationChange, why: str, *, tell_staff: bool) -> str:
    """A queued change that must not go to OpenSRS: closed as skipped, saying why."""
    note = _note(change, "skipped").format(domain=change.domain.name, why=why)
    return _registration_finish(
        change.pk,
        status=RC.SKIPPED,
        action="registration.skipped",
        code=None,
        text=why,
        note=note if tell_staff else "",
        from_status=RC.QUEUED,
    )


def _registration_refused(
    change: RegistrationChange, exc: OpenSRSError, *, from_status: str
) -> str:
    auth = isinstance(exc, OpenSRSAuthError)
    return _registration_to_staff(
        change,
        status=RC.FAILED if auth else RC.REFUSED,
        action="registration.refused",
        code=exc.code,
        error=str(exc),
        outcome="refused",
        from_status=from_status,
    )


def registration_change_unknown(*, change_id: int, error: str) -> str:
    """The change may have been made: never repeat it, hand it to staff."""
    change = RegistrationChange.objects.select_related("domain").get(pk=change_id)
    return _registration_to_staff(
        change,
        status=RC.UNKNOWN,
        action="registration.outcome_unknown",
        code=None,
        error=error,
        outcome="unknown",
        from_status=RC.SENDING,
    )


def registration_change_give_up(*, change_id: int, error: str) -> str:
    """The task failed for good: unknown if it was mid-call, failed (never sent) otherwise."""
    change = RegistrationChange.objects.select_related("domain").filter(pk=change_id).first()
    if change is None:
        return "skipped"
    if change.status == RC.SENDING:
        return registration_change_unknown(change_id=change_id, error=error)
    return _registration_to_staff(
        change,
        status=RC.FAILED,
        action="registration.gave_up",
        code=None,
        error=error,
        outcome="gave_up",
        from_status=RC.QUEUED,
        tries=change.attempts,
    )
