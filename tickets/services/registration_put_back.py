"""Put back at OpenSRS the registration records an account takeover changed.

The freeze ("this wasn't me", services.freeze) offers one put-back per domain whose record was
sent to OpenSRS naming an address the freeze took back: from that address to the email on record
the freeze restored. Nothing goes to OpenSRS until a supervisor asks for it with one click on the
frozen ticket, once the customer's identity is checked: the freeze link only proves who reads the
old address, and a changed owner email is a change of registrant at OpenSRS that the help desk
cannot take back. The worker then makes each put-back through the registration change path
(services.registration_change), while the account is still frozen: it puts back only a contact
that still names the reported address, and never writes to or mails that address.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import Customer
from accounts.selectors import email_canonical, is_supervisor
from domains.models import RegistrationChange
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tickets.audit import Actor, audit_record
from tickets.lock_objects import registration_changes_offered_lock, tickets_and_customers_lock
from tickets.models import Ticket
from tickets.services.publishing import registration_changes_publish
from tickets.services.versions import ticket_change_save, ticket_version_check

RC = RegistrationChange.Status
PURPOSE = RegistrationChange.Purpose

PUT_BACK_SUPERVISOR_ONLY = gettext_noop(
    "Only a supervisor can put registration records back at OpenSRS."
)
NOTHING_TO_PUT_BACK = gettext_noop(
    "There is no registration record waiting to be put back on this ticket."
)
# What reached OpenSRS, or may have: a change in flight when the freeze commits included.
REGISTRATION_SENT = (RC.SENDING, RC.DONE, RC.UNKNOWN)


def registration_put_backs_offer(
    *, ticket: Ticket, customer: Customer, taken_back: list[str], actor: Actor
) -> list[str]:
    """Offer on `ticket` a put-back of each record sent to OpenSRS naming a taken-back address.

    Called in the freeze's transaction, the email on record already restored: that is where each
    record goes back to. Returns the domains' names. Nothing is sent before a supervisor asks.

    Longer than most: which contacts of which changes go back is one decision, read at once
    from the changes in every state a takeover may have left them in.
    """
    taken = {email_canonical(address) for address in taken_back}
    restored = customer.email
    if not taken or email_canonical(restored) in taken:
        return []
    sent = (
        RegistrationChange.objects.filter(
            ticket__customer=customer, purpose=PURPOSE.CHANGE, status__in=REGISTRATION_SENT
        )
        .select_related("domain")
        .order_by("created_at", "pk")
    )
    by_domain: dict[int, list[RegistrationChange]] = {}
    for change in sent:
        if email_canonical(change.new_email) in taken:
            by_domain.setdefault(change.domain_id, []).append(change)
    put_backs = []
    for changes in by_domain.values():
        owner = any(change.update_owner for change in changes)
        admin = any(change.update_admin for change in changes)
        put_backs.append(
            RegistrationChange(
                ticket=ticket,
                domain=changes[0].domain,
                purpose=PURPOSE.PUT_BACK,
                # The address the record was last sent: what it names now, if it changed.
                old_email=changes[-1].new_email,
                new_email=restored,
                owner_matches=owner,
                admin_matches=admin,
                update_owner=owner,
                update_admin=admin,
            )
        )
    if not put_backs:
        return []
    # One offer per ticket and domain: a second freeze through the same ticket adds none.
    RegistrationChange.objects.bulk_create(put_backs, ignore_conflicts=True)
    names = sorted(change.domain.name for change in put_backs)
    audit_record(
        actor=actor,
        action="registration.put_back_offered",
        ticket=ticket,
        details={
            "domains": [
                {
                    "domain": change.domain.name,
                    "owner": change.update_owner,
                    "admin": change.update_admin,
                    "from": change.old_email,
                    "to": change.new_email,
                }
                for change in sorted(put_backs, key=lambda c: c.domain.name)
            ]
        },
    )
    return names


@transaction.atomic
def registration_put_back(
    *, ticket: Ticket, actor: Actor, expected_version: int | None = None
) -> list[int]:
    """A supervisor asks for the put-backs offered on the ticket; the worker makes them.

    Allowed while the account is frozen (that is when it is needed). Returns the queued rows.
    """
    if isinstance(actor, str | Customer) or not is_supervisor(actor):
        raise TransitionNotAllowed(PUT_BACK_SUPERVISOR_ONLY)
    [locked] = tickets_and_customers_lock(ticket.pk)
    ticket_version_check(locked, expected_version)
    offered = registration_changes_offered_lock(ticket=locked, purpose=PURPOSE.PUT_BACK)
    if not offered:
        raise ApplicationError(NOTHING_TO_PUT_BACK)
    now = timezone.now()
    queued = [change.pk for change in offered]
    RegistrationChange.objects.filter(pk__in=queued).update(
        status=RC.QUEUED, chosen_at=now, updated_at=now
    )
    ticket_change_save(
        locked,
        actor=actor,
        action="registration.put_back_queued",
        details={"domains": [change.domain.name for change in offered]},
    )
    transaction.on_commit(lambda: registration_changes_publish(queued))
    return queued
