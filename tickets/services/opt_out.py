"""Opt-out: preferences, one-click unsubscribe, mailings."""

import hashlib
import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import customer_get_by_email
from helpdesk.exceptions import ApplicationError
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customer_lock
from tickets.models import AnonymousRequest, Notification, Ticket
from tickets.services.anonymous import (
    anonymous_request_attach,
    anonymous_request_limits,
    anonymous_request_store,
)
from tickets.services.lifecycle import ticket_create
from tickets.services.outbox import notification_queue
from tickets.services.shared import CONTROL_CHARACTERS, ticket_move
from tickets.services.verification import verification_start

logger = logging.getLogger(__name__)

S = Ticket.Status


OPT_OUT_LISTS = ("product_mailings", "reseller_newsletters")
OPT_OUT_LIST_LABELS = {
    "product_mailings": gettext_noop("Product mailings"),
    "reseller_newsletters": gettext_noop("Reseller newsletters"),
}
OPT_OUT_SUBJECT = gettext_noop("Stop mailings")
OPT_OUT_NO_LISTS = gettext_noop("Choose at least one mailing list.")
OPT_OUT_UNKNOWN_LIST = gettext_noop("Unknown mailing list: {name}")
OPT_OUT_EMAIL_INVALID = gettext_noop("Enter the email address we have on record for you.")
UNSUBSCRIBE_INVALID = gettext_noop(
    "This unsubscribe link is not valid. Use the link from the latest email, or change your "
    "mailing preferences after signing in."
)
MAILING_UNKNOWN_LIST = "Unknown mailing list {name!r}; use one of: {lists}."
MAILING_EMPTY = "A mailing needs a subject and a body."
MAILING_BAD_ID = "A mailing id is 1 to 80 letters, digits, dots, dashes or underscores."
MAILING_BATCH_SIZE = 500
_UNSUBSCRIBE_SALT = "tickets.unsubscribe"
# A link older than this leads to the preferences page instead of unsubscribing.
UNSUBSCRIBE_LINK_MAX_AGE = timedelta(days=365)


class UnsubscribeLinkOld(ApplicationError):
    """A genuine unsubscribe link, too old to act on by itself."""


_MAILING_ID_SHAPE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def _opt_out_lists_clean(lists: Any) -> list[str]:
    """The asked-for lists in a fixed order; ValidationError keyed `lists` for anything else."""
    if isinstance(lists, str) or not isinstance(lists, list | tuple | set | frozenset) or not lists:
        raise ValidationError({"lists": [gettext(OPT_OUT_NO_LISTS)]})
    unknown = [str(name)[:64] for name in lists if name not in OPT_OUT_LISTS]
    if unknown:
        raise ValidationError(
            {"lists": [gettext(OPT_OUT_UNKNOWN_LIST).format(name=name) for name in unknown]}
        )
    return [name for name in OPT_OUT_LISTS if name in lists]


def _preferences_url() -> str:
    return settings.SITE_URL + reverse("portal:preferences")


def _mailing_flags_set(
    customer: Customer, wanted: dict[str, bool], *, actor: Actor, ticket: Ticket | None, how: str
) -> list[dict[str, Any]]:
    """Write the list booleans that differ on a locked customer; audit old and new values."""
    rows = [
        {"list": name, "old": getattr(customer, name), "new": value}
        for name, value in wanted.items()
        if getattr(customer, name) != value
    ]
    if not rows:
        return rows
    for row in rows:
        setattr(customer, row["list"], row["new"])
    fields = [row["list"] for row in rows]
    if any(row["new"] for row in rows):
        customer.mailing_version += 1
        fields.append("mailing_version")
    customer.save(update_fields=[*fields, "updated_at"])
    audit_record(
        actor=actor,
        action="customer.mailing_preferences_changed",
        ticket=ticket,
        customer=customer,
        details={"how": how, "changes": rows},
    )
    return rows


def _opt_out_set(
    customer: Customer, names: list[str], *, actor: Actor, ticket: Ticket, how: str
) -> list[dict[str, Any]]:
    """Turn lists off on a locked customer and confirm to the email on record if any changed."""
    rows = _mailing_flags_set(
        customer, dict.fromkeys(names, False), actor=actor, ticket=ticket, how=how
    )
    if rows:
        notification_queue(
            ticket=ticket,
            template="opt_out_confirmed",
            recipient=customer.email,
            context={"lists": [row["list"] for row in rows], "preferences_url": _preferences_url()},
            key=f"opt_out_confirmed:{ticket.reference}",
            language=customer.language,
        )
    return rows


@transaction.atomic
def opt_out_apply(
    *, customer: Customer, lists: list[str], actor: Actor, channel: str, source: str
) -> Ticket:
    """Stop the chosen mailings and record it as an auto-resolved `opt_out` ticket.

    Idempotent in effect: lists already off change nothing and send no confirmation; the
    request is still recorded as a ticket.
    """
    names = _opt_out_lists_clean(lists)
    locked = customer_lock(pk=customer.pk)
    ticket = ticket_create(
        kind=Ticket.Kind.OPT_OUT,
        subject=OPT_OUT_SUBJECT,
        actor=actor,
        customer=locked,
        contact_email=locked.email,
        channel=channel,
        details={"lists": names, "source": source},
    )
    rows = _opt_out_set(locked, names, actor=actor, ticket=ticket, how=source)
    ticket_move(
        ticket,
        to=S.RESOLVED,
        actor="system",
        reason="mailings stopped" if rows else "these mailings were already off",
    )
    return ticket


@transaction.atomic
def preferences_update(
    *, customer: Customer, product_mailings: bool, reseller_newsletters: bool, actor: Actor
) -> Ticket | None:
    """Set both mailing lists from the preferences page; returns the opt-out ticket, if any.

    Newsletters are a reseller list: for other customers that choice is ignored.
    """
    locked = customer_lock(pk=customer.pk)
    wanted = {"product_mailings": bool(product_mailings)}
    if locked.is_reseller:
        wanted["reseller_newsletters"] = bool(reseller_newsletters)
    offs = [name for name, value in wanted.items() if not value and getattr(locked, name)]
    ons = [name for name, value in wanted.items() if value and not getattr(locked, name)]
    ticket = None
    if offs:
        ticket = opt_out_apply(
            customer=locked,
            lists=offs,
            actor=actor,
            channel=Ticket.Channel.PORTAL,
            source="preferences",
        )
    if ons:
        rows = _mailing_flags_set(
            locked, dict.fromkeys(ons, True), actor=actor, ticket=None, how="preferences"
        )
        notification_queue(
            template="opt_in_confirmed",
            recipient=locked.email,
            context={"lists": [row["list"] for row in rows], "preferences_url": _preferences_url()},
            language=locked.language,
        )
    return ticket


@transaction.atomic
def request_opt_out(
    *, email: str, lists: list[str], client_key: str, actor: Actor, channel: str
) -> Ticket:
    """Log an opt-out asked for without a login; the worker mails a link to the email on record.

    The request does the same work whether or not the address is on record (the ticket, its
    audit row, the request row, one task); `opt_out_anonymous_continue` looks it up. Raises
    ValidationError keyed `email` or `lists`, RateLimited past the per-client or global limit.
    """
    anonymous_request_limits(client_key=client_key)
    email = email.strip() if isinstance(email, str) else ""
    if "@" not in email or len(email) > 254 or CONTROL_CHARACTERS.search(email):
        raise ValidationError({"email": [gettext(OPT_OUT_EMAIL_INVALID)]})
    names = _opt_out_lists_clean(lists)
    ticket = ticket_create(
        kind=Ticket.Kind.OPT_OUT,
        subject=OPT_OUT_SUBJECT,
        actor=actor,
        channel=channel,
        status=S.AWAITING_VERIFICATION,
        details={"lists": names},
    )
    anonymous_request_store(ticket=ticket, actor=actor, email=email, lists=names)
    return ticket


def opt_out_anonymous_continue(*, ticket: Ticket, request: AnonymousRequest) -> str:
    """The worker's half of an anonymous opt-out, on the locked ticket: mail the link.

    Nothing is sent for an address not on record (the ticket expires); past the per-address
    limit the ticket is joined to the last request that mailed a link.
    """
    owner = customer_get_by_email(email=request.email)
    if owner is None:
        return AnonymousRequest.Outcome.NO_RECORD
    if not anonymous_request_attach(ticket=ticket, request=request, owner=owner):
        return AnonymousRequest.Outcome.COALESCED
    verification_start(ticket=ticket, send_to=owner.email)
    return AnonymousRequest.Outcome.LINK_SENT


def opt_out_verified(*, ticket: Ticket, actor: Actor) -> None:
    """The requester proved they read the email on record: stop the mailings asked for."""
    request = AnonymousRequest.objects.filter(ticket=ticket).first()
    names = [name for name in (request.lists if request else []) if name in OPT_OUT_LISTS]
    if ticket.customer_id is None or not names:
        return
    # The ticket is locked already; the customer comes second, as everywhere else.
    customer = customer_lock(pk=ticket.customer_id)
    rows = _opt_out_set(customer, names, actor=actor, ticket=ticket, how="verified request")
    ticket_move(
        ticket,
        to=S.RESOLVED,
        actor="system",
        reason="mailings stopped" if rows else "these mailings were already off",
    )


def unsubscribe_token(*, customer: Customer, list_name: str) -> str:
    """A signed, timestamped, URL-safe token naming a customer, a list and its subscription."""
    return signing.dumps(
        [customer.number, list_name, customer.mailing_version], salt=_UNSUBSCRIBE_SALT
    )


def unsubscribe_url(*, customer: Customer, list_name: str) -> str:
    """The one-click unsubscribe link for one customer and list, on SITE_URL."""
    token = unsubscribe_token(customer=customer, list_name=list_name)
    return settings.SITE_URL + reverse("portal:unsubscribe", args=[token])


def unsubscribe_token_read(*, token: str) -> tuple[Customer, str]:
    """The customer and list a token names.

    Raises UnsubscribeLinkOld for a genuine link older than UNSUBSCRIBE_LINK_MAX_AGE, and
    ApplicationError for one forged, altered, or issued before the customer last subscribed.
    """
    try:
        payload = signing.loads(token, salt=_UNSUBSCRIBE_SALT, max_age=UNSUBSCRIBE_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise UnsubscribeLinkOld(UNSUBSCRIBE_INVALID) from None
    except (signing.BadSignature, ValueError, TypeError):
        payload = None
    customer = None
    if (
        isinstance(payload, list)
        and len(payload) in (2, 3)
        and all(isinstance(part, str) for part in payload[:2])
        and payload[1] in OPT_OUT_LISTS
    ):
        # Links from before versions were signed name version 0.
        version = payload[2] if len(payload) == 3 else 0
        customer = Customer.objects.filter(number=payload[0], mailing_version=version).first()
    if customer is None:
        raise ApplicationError(gettext(UNSUBSCRIBE_INVALID))
    return customer, payload[1]


@transaction.atomic
def unsubscribe_by_token(*, token: str) -> Ticket | None:
    """One-click unsubscribe; None when that list was already off (nothing recorded again)."""
    customer, list_name = unsubscribe_token_read(token=token)
    # Checked under the lock, so two clicks at once make one ticket.
    locked = customer_lock(pk=customer.pk)
    if not getattr(locked, list_name):
        return None
    return opt_out_apply(
        customer=locked,
        lists=[list_name],
        actor="anonymous",
        channel=Ticket.Channel.EMAIL,
        source="one-click",
    )


def _mailing_headers(list_name: str, link: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers: the signed one-click link and a mailto fallback."""
    address = (
        settings.BILLING_EMAIL if list_name == "reseller_newsletters" else settings.SUPPORT_EMAIL
    )
    return {
        "List-Unsubscribe": f"<{link}>, <mailto:{address}?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Precedence": "bulk",
    }


def mailing_default_id(*, list_name: str, subject: str, body_text: str) -> str:
    """A stable id for a mailing: the same list, subject and body give the same id."""
    digest = hashlib.sha256(f"{list_name}\n{subject}\n{body_text}".encode()).hexdigest()
    return f"{list_name}-{digest[:16]}"


def _mailing_recipients(list_name: str) -> QuerySet[Customer]:
    recipients = Customer.objects.filter(**{list_name: True}).exclude(
        account_status=Customer.AccountStatus.CLOSED
    )
    if list_name == "reseller_newsletters":
        recipients = recipients.filter(is_reseller=True)
    return recipients


@transaction.atomic
def _mailing_batch(
    *,
    mailing_id: str,
    list_name: str,
    subject: str,
    body_text: str,
    after: int,
    size: int,
    actor: Actor,
    number: int,
) -> tuple[int, int, int]:
    """Queue one batch; returns (customers seen, rows queued now, last customer pk)."""
    # Locked so a customer opting out right now is either skipped here or queued before.
    batch = list(
        _mailing_recipients(list_name)
        .filter(pk__gt=after)
        .order_by("pk")
        .select_for_update(of=("self",))[:size]
    )
    if not batch:
        return 0, 0, after
    keys = {customer.pk: f"mailing:{mailing_id}:{customer.number}" for customer in batch}
    done = set(
        Notification.objects.filter(idempotency_key__in=keys.values()).values_list(
            "idempotency_key", flat=True
        )
    )
    queued = 0
    for customer in batch:
        if keys[customer.pk] in done:
            continue
        # One token per email: the header and the body carry the same link.
        link = unsubscribe_url(customer=customer, list_name=list_name)
        notification_queue(
            template="mailing",
            recipient=customer.email,
            context={
                "subject": subject,
                "body": body_text,
                "list_name": list_name,
                "full_name": customer.full_name,
                "customer": customer.number,
                "unsubscribe_url": link,
                "preferences_url": _preferences_url(),
            },
            key=keys[customer.pk],
            language=customer.language,
            headers=_mailing_headers(list_name, link),
        )
        queued += 1
    if queued:
        audit_record(
            actor=actor,
            action="mailing.batch_queued",
            details={
                "mailing": mailing_id,
                "list": list_name,
                "batch": number,
                "queued": queued,
                "already_queued": len(batch) - queued,
            },
        )
    return len(batch), queued, batch[-1].pk


def mailing_send(
    *,
    list_name: str,
    subject: str,
    body_text: str,
    actor: Actor,
    mailing_id: str | None = None,
    batch_size: int = MAILING_BATCH_SIZE,
) -> int:
    """Queue a mailing to every customer still subscribed to `list_name`; the worker sends it.

    Idempotent by unique key: each outbox row is keyed `mailing:<mailing id>:<customer
    number>`, so running it again (after a crash, or twice) queues only the ones missing.
    The id defaults to a digest of list, subject and body. Returns how many rows this run queued.
    """
    if list_name not in OPT_OUT_LISTS:
        raise ApplicationError(
            MAILING_UNKNOWN_LIST.format(name=list_name, lists=", ".join(OPT_OUT_LISTS))
        )
    if not subject.strip() or not body_text.strip():
        raise ApplicationError(MAILING_EMPTY)
    mailing_id = mailing_id or mailing_default_id(
        list_name=list_name, subject=subject, body_text=body_text
    )
    if not _MAILING_ID_SHAPE.match(mailing_id):
        raise ApplicationError(MAILING_BAD_ID)
    after, total, batch_number, conflicts = 0, 0, 0, 0
    while True:
        try:
            seen, queued, last = _mailing_batch(
                mailing_id=mailing_id,
                list_name=list_name,
                subject=subject,
                body_text=body_text,
                after=after,
                size=batch_size,
                actor=actor,
                number=batch_number + 1,
            )
        except IntegrityError:
            # Another run of the same mailing queued some of this batch first: redo it.
            conflicts += 1
            if conflicts > 3:
                raise
            continue
        if not seen:
            break
        batch_number += 1
        total += queued
        after = last
        logger.info(
            "mailing %s batch %d: %d queued, %d already queued (%d queued in this run)",
            mailing_id,
            batch_number,
            queued,
            seen - queued,
            total,
        )
    logger.info("mailing %s done: %d queued in this run", mailing_id, total)
    return total
