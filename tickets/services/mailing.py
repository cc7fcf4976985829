"""Mailings to a list: queued in batches to every customer still subscribed, sent by the worker."""

import hashlib
import logging
import re

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import Customer
from accounts.selectors import mailing_recipients
from helpdesk.exceptions import ApplicationError
from helpdesk.validators import CONTROL_CHARACTERS, HIDDEN_CHARACTERS
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customers_batch_lock
from tickets.models import Notification
from tickets.services.opt_out import OPT_OUT_LISTS, preferences_url, unsubscribe_url
from tickets.services.outbox import notification_queue

logger = logging.getLogger(__name__)

MAILING_UNKNOWN_LIST = "Unknown mailing list {name!r}; use one of: {lists}."
MAILING_EMPTY = "A mailing needs a subject and a body."
MAILING_HIDDEN_CHARACTERS = (
    "Remove the control characters (bidi overrides, isolates, separators, a BOM) from the "
    "subject or body: customers' mail programs would show it otherwise than it was written."
)
MAILING_BAD_ID = "A mailing id is 1 to 80 letters, digits, dots, dashes or underscores."
MAILING_BATCH_SIZE = 500
_MAILING_ID_SHAPE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


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


def _mailing_queue(
    customer: Customer, list_name: str, subject: str, body_text: str, *, key: str
) -> None:
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
            "preferences_url": preferences_url(),
        },
        key=key,
        language=customer.language,
        headers=_mailing_headers(list_name, link),
    )


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
    batch = customers_batch_lock(rows=mailing_recipients(list_name), after=after, size=size)
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
        _mailing_queue(customer, list_name, subject, body_text, key=keys[customer.pk])
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
    if CONTROL_CHARACTERS.search(subject) or HIDDEN_CHARACTERS.search(body_text):
        raise ApplicationError(MAILING_HIDDEN_CHARACTERS)
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
