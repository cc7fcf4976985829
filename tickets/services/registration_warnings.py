"""Warn before a dead registration address locks a customer out of their domain.

A daily sweep finds customers' domains whose registration (owner) email bounces, from our own
mail events, or is not the customer's email on record. It tells the customer once per domain
and address, and once more after REGISTRATION_WARNING_REPEAT_DAYS if it is still so; never
more. The notice carries a signed one-click link that asks us to bring the record in step.

An address at the domain itself (a reseller's dns-admin@ role address) is told about too, once
with the same limits, saying why: it may well be read, but a password sent there cannot arrive
once the domain lapses or its mail breaks, which is when one is needed.
"""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import Customer
from accounts.selectors import email_canonical
from domains.models import Domain, RegistrationWarning
from helpdesk.exceptions import ApplicationError
from helpdesk.links import site_url
from tickets.audit import audit_record
from tickets.lock_objects import (
    customer_lock,
    customer_warnings_lock,
    registration_warning_lock,
)
from tickets.models import OPEN_STATUS_VALUES, Message, Ticket
from tickets.selectors.registration import registration_problem_domains
from tickets.services.general import request_general
from tickets.services.lifecycle import account_locked_out_refusal
from tickets.services.outbox import notification_queue
from tickets.services.replies import ticket_reply_add

# Notices per domain and address, ever.
REGISTRATION_WARNING_MAX_NOTICES = 2
REGISTRATION_FIX_INVALID = gettext_noop(
    "This link is not valid or has expired. Ask us from the help desk home page instead."
)
REGISTRATION_FIX_SUBJECT = "Update the registration email of {domain}"
REGISTRATION_FIX_BODY = (
    "Please update the registration record of {domain}: its {what} is {address}, and my email "
    "on record is {email}. (Asked from the one-click link in our notice.)"
)
REGISTRATION_FIX_NOTE = (
    "Registration record of {domain}: owner email {address} ({reason}). The customer asks to "
    "change it to their email on record, {email}. If the owner address still works, change it "
    "at OpenSRS (the registrant will be asked to confirm a change of registrant). If it bounces, "
    "OpenSRS needs a direct request with identity documents: send the customer the instructions."
)
_FIX_SALT = "tickets.registration_fix"
_FIX_MAX_AGE = timedelta(days=120)
_REASON_TEXT: dict[str, str] = {
    RegistrationWarning.Reason.BOUNCING: "our mail to it bounces",
    RegistrationWarning.Reason.DIFFERS: "not the email on record",
}
# Said too of an address at the domain itself, as the customer's notice says it.
_AT_DOMAIN_TEXT = (
    "an address at the domain itself: a password sent there cannot arrive once the domain "
    "expires or its mail stops working"
)


def registration_fix_url(*, domain: Domain) -> str:
    """The signed one-click link, on SITE_URL, that asks us to update the domain's record.

    It names the domain's record, and the customer and email on record it was mailed to.
    """
    customer = cast(Customer, domain.customer)  # only a customer's domains are warned about
    token = signing.dumps(
        [domain.pk, domain.registrant_email, customer.pk, email_canonical(customer.email)],
        salt=_FIX_SALT,
    )
    return site_url("portal:registration-fix", token)


def registration_fix_read(*, token: str) -> Domain:
    """The domain a still-valid link names; ApplicationError when forged, old or out of date.

    Out of date: the domain's record, its customer or that customer's email on record changed
    since the link was mailed. A link to an address no longer on record (the old mailbox may
    not be the owner's) never acts for the account, nor one for a domain since moved to another
    customer for its new one. Links from before they named the customer (two parts) are out of
    date too: their mailbox cannot be told from the owner's.
    """
    try:
        payload = signing.loads(token, salt=_FIX_SALT, max_age=_FIX_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        payload = None
    if not (
        isinstance(payload, list)
        and len(payload) == 4
        and isinstance(payload[0], int)
        and isinstance(payload[2], int)
    ):
        raise ApplicationError(REGISTRATION_FIX_INVALID)
    domain_pk, registrant_email, customer_pk, customer_email = payload
    domain = Domain.objects.select_related("customer").filter(pk=domain_pk).first()
    if (
        domain is None
        or domain.customer is None
        or domain.customer_id != customer_pk
        or email_canonical(domain.customer.email) != str(customer_email)
        or email_canonical(domain.registrant_email) != email_canonical(str(registrant_email))
    ):
        raise ApplicationError(REGISTRATION_FIX_INVALID)
    return domain


def _reason(domain: Domain) -> str:
    if domain.registrant_email_status == Domain.EmailStatus.BOUNCING:
        return RegistrationWarning.Reason.BOUNCING
    return RegistrationWarning.Reason.DIFFERS


def _reason_text(domain: Domain) -> str:
    """Why the record's owner email is a risk, for the staff note the one-click link leaves."""
    reason = _REASON_TEXT[_reason(domain)]
    return f"{reason}; {_AT_DOMAIN_TEXT}" if domain.registrant_email_at_domain else reason


def registration_warnings_sweep(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Tell customers about dead or out-of-date registration addresses; returns emails queued.

    Idempotent: each domain and address is told at most twice, the second time no sooner than
    REGISTRATION_WARNING_REPEAT_DAYS after the first; one email per customer per run.
    """
    now = now or timezone.now()
    repeat_after = now - timedelta(days=settings.REGISTRATION_WARNING_REPEAT_DAYS)
    domains = (
        registration_problem_domains()
        .select_related("customer")
        .order_by("customer_id", "name")[:batch_size]
    )
    by_customer: dict[int, list[Domain]] = defaultdict(list)
    for domain in domains:
        by_customer[domain.customer_id].append(domain)  # type: ignore[index]  # filtered non-null
    queued = 0
    for customer_id, candidates in by_customer.items():
        queued += _registration_warn_customer(customer_id, candidates, now, repeat_after)
    return queued


@transaction.atomic
def _registration_warn_customer(
    customer_id: int, candidates: list[Domain], now: datetime, repeat_after: datetime
) -> int:
    customer = customer_warnings_lock(pk=customer_id)
    due = []
    for domain in candidates:
        # The link names the email it is mailed to: the one read under the lock.
        domain.customer = customer
        warning = registration_warning_lock(
            domain=domain, address=domain.registrant_email.lower(), reason=_reason(domain)
        )
        if warning.notices >= REGISTRATION_WARNING_MAX_NOTICES:
            continue
        if warning.last_sent_at is not None and warning.last_sent_at > repeat_after:
            continue
        warning.notices += 1
        warning.last_sent_at = now
        warning.save(update_fields=["notices", "last_sent_at", "updated_at"])
        due.append((domain, warning))
    if not due:
        return 0
    notification_queue(
        template="registration_warning",
        recipient=customer.email,
        language=customer.language,
        key=f"registration_warning:{customer.pk}:{now.date().isoformat()}",
        context={
            "name": customer.full_name,
            "email": customer.email,
            "manage_url": settings.OPENSRS_MANAGE_URL,
            "repeat_days": settings.REGISTRATION_WARNING_REPEAT_DAYS,
            "direct_request_url": settings.OPENSRS_DIRECT_REQUEST_URL,
            "domains": [
                {
                    "domain": domain.unicode_name,
                    "address": domain.registrant_email,
                    "bouncing": warning.reason == RegistrationWarning.Reason.BOUNCING,
                    # Say why an address of the domain's own (a reseller's role address) is a
                    # risk, rather than that it does not reach them, which we cannot know.
                    "at_domain": domain.registrant_email_at_domain,
                    "link": registration_fix_url(domain=domain),
                }
                for domain, warning in due
            ],
        },
    )
    audit_record(
        actor="system",
        action="registration.warned",
        customer=customer,
        details={
            "domains": [
                {
                    "domain": d.name,
                    "address": d.registrant_email,
                    "reason": w.reason,
                    "notice": w.notices,
                }
                for d, w in due
            ]
        },
    )
    return 1


def registration_fix_request(*, token: str, client_key: str) -> Ticket:
    """The one-click link: log (once) a request to bring the domain's record in step."""
    domain = registration_fix_read(token=token)
    customer = cast(Customer, domain.customer)  # registration_fix_read refuses one without
    subject = REGISTRATION_FIX_SUBJECT.format(domain=domain.unicode_name)
    bouncing = domain.registrant_email_status == Domain.EmailStatus.BOUNCING
    with transaction.atomic():
        # Looked for under the customer's lock: two presses at once queue here, and the second
        # finds the first one's request. The account is read again there too: a frozen or
        # closed one asks for no change of its registration records, nor does a press the
        # freeze or the closure overtook (AccountLockedOut, saying which).
        mailed_to = email_canonical(customer.email)
        customer = customer_lock(pk=customer.pk)
        refusal = account_locked_out_refusal(customer)
        if refusal is not None:
            raise refusal
        if email_canonical(customer.email) != mailed_to:
            # An email change committed since the link was read: it was mailed to the old one.
            raise ApplicationError(REGISTRATION_FIX_INVALID)
        existing = Ticket.objects.filter(
            customer=customer,
            kind=Ticket.Kind.GENERAL,
            subject=subject,
            status__in=OPEN_STATUS_VALUES,
        ).first()
        if existing is not None:
            return existing
        ticket = request_general(
            subject=subject,
            body=REGISTRATION_FIX_BODY.format(
                domain=domain.unicode_name,
                what="owner email, which bounces" if bouncing else "owner email",
                address=domain.registrant_email,
                email=customer.email,
            ),
            contact_email=customer.email,
            actor=customer,
            customer=customer,
            language=customer.language,
            client_key=client_key,
        )
        ticket_reply_add(
            ticket=ticket,
            body=REGISTRATION_FIX_NOTE.format(
                domain=domain.name,
                address=domain.registrant_email,
                reason=_reason_text(domain),
                email=customer.email,
            ),
            actor="system",
            author=Message.Author.SYSTEM,
            channel=Ticket.Channel.SYSTEM,
            internal=True,
        )
    return ticket
