"""Opt-out: preferences, one-click unsubscribe links, opt-out requests (mailings: mailing.py)."""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import customer_get_by_email
from helpdesk.exceptions import ApplicationError
from helpdesk.links import site_url
from helpdesk.ratelimit import rate_limit_hit
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customer_lock
from tickets.models import AnonymousRequest, Notification, Ticket
from tickets.services.anonymous import (
    anonymous_request_attach,
    anonymous_request_email,
    anonymous_request_limits,
    anonymous_request_links_count,
    anonymous_request_open,
)
from tickets.services.lifecycle import ticket_create
from tickets.services.outbox import notification_queue
from tickets.services.transitions import ticket_move
from tickets.services.verification import verification_start

S = Ticket.Status


OPT_OUT_LISTS = ("product_mailings", "reseller_newsletters")
OPT_OUT_SUBJECT = gettext_noop("Stop mailings")
OPT_OUT_NO_LISTS = gettext_noop("Choose at least one mailing list.")
OPT_OUT_UNKNOWN_LIST = gettext_noop("Unknown mailing list: {name}")
UNSUBSCRIBE_INVALID = gettext_noop(
    "This unsubscribe link is not valid. Use the link from the latest email, or change your "
    "mailing preferences after signing in."
)
OPT_OUT_ALREADY_OFF = "these mailings were already off"
_UNSUBSCRIBE_SALT = "tickets.unsubscribe"
# A link older than this leads to the preferences page instead of unsubscribing.
UNSUBSCRIBE_LINK_MAX_AGE = timedelta(days=365)


class UnsubscribeLinkOld(ApplicationError):
    """A genuine unsubscribe link, too old to act on by itself."""


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


def preferences_url() -> str:
    return site_url("portal:preferences")


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
            context={"lists": [row["list"] for row in rows], "preferences_url": preferences_url()},
            key=f"opt_out_confirmed:{ticket.reference}",
            language=customer.language,
        )
    return rows


def _opt_out_links_recent(customer: Customer) -> int:
    """Mails with links to `customer`'s email on record for requests not proven theirs, lately.

    The opt-out links of this module and the requester links of change and opt-out requests
    together, within `request_per_email`'s window.
    """
    since = timezone.now() - timedelta(seconds=settings.RATE_LIMITS["request_per_email"][1])
    links = Notification.objects.filter(
        template="opt_out_link", ticket__customer=customer, created_at__gt=since
    ).count()
    return links + anonymous_request_links_count(customer=customer, since=since)


def _opt_out_links_send(customer: Customer, names: list[str], *, ticket: Ticket) -> str:
    """Mail the email on record a one-click unsubscribe link for each of `names` still on.

    Returns why the request is resolved. Anyone may ask in the customer's name, as often as they
    like: past `request_per_email` links to that address nothing more is mailed.
    """
    still_on = [name for name in names if getattr(customer, name)]
    if not still_on:
        return OPT_OUT_ALREADY_OFF
    if _opt_out_links_recent(customer) >= settings.RATE_LIMITS["request_per_email"][0]:
        return "no link sent: the email on record had enough of them within the hour"
    links = [
        {"list": name, "url": unsubscribe_url(customer=customer, list_name=name)}
        for name in still_on
    ]
    notification_queue(
        ticket=ticket,
        template="opt_out_link",
        recipient=customer.email,
        context={"unsubscribe_links": links, "preferences_url": preferences_url()},
        key=f"opt_out_link:{ticket.reference}",
        language=customer.language,
    )
    return "unsubscribe link sent to the email on record"


@transaction.atomic
def opt_out_apply(
    *,
    customer: Customer,
    lists: list[str],
    actor: Actor,
    channel: str,
    source: str,
    sender_proven: bool = True,
) -> Ticket:
    """Stop the chosen mailings and record it as an auto-resolved `opt_out` ticket.

    Idempotent in effect: lists already off change nothing and send no confirmation; the
    request is still recorded as a ticket. With `sender_proven=False` (asked for in the
    customer's name by someone not proven to be them: an email whose sender our mail server
    could not authenticate) nothing changes: the email on record gets a one-click unsubscribe
    link for each asked-for list still on, and its owner decides.
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
        details={
            "lists": names,
            "source": source,
            **({} if sender_proven else {"sender_authenticated": False}),
        },
    )
    if sender_proven:
        done = bool(_opt_out_set(locked, names, actor=actor, ticket=ticket, how=source))
        reason = "mailings stopped" if done else OPT_OUT_ALREADY_OFF
    else:
        reason = _opt_out_links_send(locked, names, ticket=ticket)
    ticket_move(ticket, to=S.RESOLVED, actor="system", reason=reason)
    return ticket


@transaction.atomic
def preferences_update(
    *,
    customer: Customer,
    product_mailings: bool,
    reseller_newsletters: bool,
    actor: Actor,
    shown: Mapping[str, bool] | None = None,
) -> Ticket | None:
    """Set both mailing lists from the preferences page; returns the opt-out ticket, if any.

    Newsletters are a reseller list: for other customers that choice is ignored. Limited per
    customer (RateLimited): each change is a ticket or an email and an audit row.

    :param shown: what the page showed of each list. A list saved as it was shown was not
        chosen on it: it keeps what it holds now, so a page opened before an unsubscribe link
        (or another tab) turned a mailing off or on never turns it back.
    """
    rate_limit_hit(scope="preferences_per_customer", key=str(customer.pk))
    locked = customer_lock(pk=customer.pk)
    wanted = {"product_mailings": bool(product_mailings)}
    if locked.is_reseller:
        wanted["reseller_newsletters"] = bool(reseller_newsletters)
    shown = shown or {}
    wanted = {name: value for name, value in wanted.items() if shown.get(name) != value}
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
            context={"lists": [row["list"] for row in rows], "preferences_url": preferences_url()},
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
    email = anonymous_request_email(email)
    names = _opt_out_lists_clean(lists)
    return anonymous_request_open(
        kind=Ticket.Kind.OPT_OUT,
        subject=OPT_OUT_SUBJECT,
        actor=actor,
        channel=channel,
        email=email,
        details={"lists": names},
        lists=names,
    )


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
    # Held since the link was confirmed (tickets_and_customers_lock): read again, locked.
    customer = customer_lock(pk=ticket.customer_id)
    rows = _opt_out_set(customer, names, actor=actor, ticket=ticket, how="verified request")
    ticket_move(
        ticket,
        to=S.RESOLVED,
        actor="system",
        reason="mailings stopped" if rows else OPT_OUT_ALREADY_OFF,
    )


def unsubscribe_token(*, customer: Customer, list_name: str) -> str:
    """A signed, timestamped, URL-safe token naming a customer, a list and its subscription."""
    return signing.dumps(
        [customer.number, list_name, customer.mailing_version], salt=_UNSUBSCRIBE_SALT
    )


def unsubscribe_links_end(customer: Customer) -> str:
    """End every unsubscribe link issued so far to a locked customer; the field to save.

    For an email change: those links went to the old address, whose mailbox may no longer be
    the owner's (the very reason for a change), and would go on turning their mailings off.
    """
    customer.mailing_version += 1
    return "mailing_version"


def unsubscribe_url(*, customer: Customer, list_name: str) -> str:
    """The one-click unsubscribe link for one customer and list, on SITE_URL."""
    token = unsubscribe_token(customer=customer, list_name=list_name)
    return site_url("portal:unsubscribe", token)


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
    if locked.mailing_version != customer.mailing_version:
        # A subscription or an email change committed since the link was read ended it.
        raise ApplicationError(gettext(UNSUBSCRIBE_INVALID))
    if not getattr(locked, list_name):
        return None
    return opt_out_apply(
        customer=locked,
        lists=[list_name],
        actor="anonymous",
        channel=Ticket.Channel.EMAIL,
        source="one-click",
    )
