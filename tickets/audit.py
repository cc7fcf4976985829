"""The tamper-evident audit log: every row hashes the previous row's hash and its own content."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from accounts.models import Customer
from accounts.selectors import login_is_customers
from tickets.lock_objects import audit_chain_head_lock
from tickets.models import ActionLog, AuditChainHead, Ticket

GENESIS_HASH = "0" * 64

Actor = User | Customer | str | None


def actor_label(actor: Actor) -> str:
    """How an actor is written in the log: `staff:agent`, `customer:C12345678`, `system`."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    if isinstance(actor, Customer):
        return f"customer:{actor.number}"
    # Not the flag alone: a customer's login holding a stale staff flag is never staff
    # (accounts.selectors.is_staff_login), even once it is deactivated.
    staff = getattr(actor, "is_staff", False) and not login_is_customers(actor)
    prefix = "staff" if staff else "user"
    return f"{prefix}:{actor.get_username()}"


def audit_canonical(
    *,
    sequence: int,
    created_at: str,
    actor: str,
    action: str,
    ticket: str,
    customer: str,
    details: Any,
) -> bytes:
    """The bytes a row's hash covers (with the previous row's hash, see `audit_row_hash`).

    Public for a writer outside `audit_record` that continues the chain itself under the head
    row's lock: the bench seeder, which appends its rows in bulk.
    """
    payload = {
        "sequence": sequence,
        "created_at": created_at,
        "actor": actor,
        "action": action,
        "ticket": ticket,
        "customer": customer,
        "details": details,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def audit_row_hash(prev_hash: str, canonical: bytes) -> str:
    """A row's hash: its `audit_canonical` bytes chained to the previous row's hash."""
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def _normalise(details: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so the hash covers exactly what the database stores; without NUL
    # characters, which PostgreSQL's jsonb refuses (a row naming what a client sent must not
    # fail the action it records).
    return _without_nul(json.loads(json.dumps(details, default=str)))


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def audit_chain_lock() -> None:
    """Wait for the writers of the chain and hold them off until the caller's transaction ends.

    Every service that writes holds this lock from its first audit row to its commit.
    """
    audit_chain_head_lock()


def audit_record(
    *,
    actor: Actor,
    action: str,
    ticket: Ticket | None = None,
    customer: Customer | None = None,
    details: dict[str, Any] | None = None,
) -> ActionLog:
    """Append one row to the chain inside the caller's transaction: lock the head, hash, insert.

    The head row's lock is held until that transaction ends, which serialises writers so the
    chain never forks.
    """
    if customer is None and ticket is not None:
        customer = ticket.customer
    row = ActionLog(
        actor=actor_label(actor),
        action=action,
        ticket=ticket,
        customer=customer,
        details=_normalise(details or {}),
    )
    # No savepoint: a failed audit write must fail the action that asked for it.
    with transaction.atomic(savepoint=False):
        head = audit_chain_head_lock()
        # Dated once the head is held: a row is never dated before the row it follows.
        row.created_at = timezone.now()
        row.sequence = head.sequence + 1
        row.prev_hash = head.last_hash
        canonical = audit_canonical(
            sequence=row.sequence,
            created_at=row.created_at.isoformat(),
            actor=row.actor,
            action=action,
            ticket=ticket.reference if ticket else "",
            customer=customer.number if customer else "",
            details=row.details,
        )
        row.hash = audit_row_hash(row.prev_hash, canonical)
        row.save(force_insert=True)
        # One UPDATE that raises the sequence and changes the hash (the PostgreSQL guard
        # refuses any other move of the head).
        AuditChainHead.objects.filter(pk=head.pk).update(
            sequence=row.sequence, prev_hash=row.prev_hash, last_hash=row.hash
        )
    return row


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    first_bad_sequence: int | None = None
    problem: str = ""


AUDIT_TRUSTED_HASH_MISMATCH = (
    "row #{sequence} does not have the trusted hash: the log was rewritten at or before it"
)
AUDIT_TRUSTED_ROW_MISSING = "row #{sequence}, the trusted starting point, is not in the log"

Progress = Callable[[int, int], None]


def audit_verify(
    *,
    batch_size: int = 2000,
    from_sequence: int = 0,
    trusted_hash: str = GENESIS_HASH,
    progress: Progress | None = None,
) -> ChainReport:
    """Walk the chain and report the first row that was altered, inserted or removed.

    Then cross-check the chain against what it describes: the head must name the last row
    (its sequence and hash), and every ticket must appear in the log. On PostgreSQL, outside
    a transaction, everything is read in one snapshot, so rows appended meanwhile are not
    taken for a tampered end of the chain.

    :param from_sequence: walk only the rows after this one, whose hash must be
        `trusted_hash` (a head printed by `audit_head` earlier and kept outside the database);
        0 with the genesis hash is the whole chain.
    :param progress: called after each batch with the rows checked and the rows to check.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return _verify(batch_size, from_sequence, trusted_hash, progress)
    return _verify(batch_size, from_sequence, trusted_hash, progress)


def _trusted_start_check(sequence: int, trusted_hash: str) -> ChainReport | None:
    """Row `sequence` exists, has the trusted hash and its content still matches it; or why not."""
    if sequence == 0:
        if trusted_hash != GENESIS_HASH:
            problem = AUDIT_TRUSTED_HASH_MISMATCH.format(sequence=0)
            return ChainReport(False, 0, 0, problem)
        return None
    row = ActionLog.objects.filter(sequence=sequence).values_list(*_VERIFIED_FIELDS).first()
    if row is None:
        return ChainReport(False, 0, sequence, AUDIT_TRUSTED_ROW_MISSING.format(sequence=sequence))
    if row[-1] != trusted_hash:
        problem = AUDIT_TRUSTED_HASH_MISMATCH.format(sequence=sequence)
        return ChainReport(False, 0, sequence, problem)
    if audit_row_hash(row[-2], _row_canonical(row)) != trusted_hash:
        return ChainReport(False, 1, sequence, "its content does not match its hash")
    return None


_VERIFIED_FIELDS = (
    "sequence",
    "created_at",
    "actor",
    "action",
    "ticket__reference",
    "customer__number",
    "details",
    "prev_hash",
    "hash",
)


def _row_canonical(row: tuple[Any, ...]) -> bytes:
    seq, created_at, actor, action, ticket_ref, customer_no, details = row[:7]
    return audit_canonical(
        sequence=seq,
        created_at=created_at.isoformat(),
        actor=actor,
        action=action,
        ticket=ticket_ref or "",
        customer=customer_no or "",
        details=details,
    )


def _verify(
    batch_size: int, from_sequence: int, trusted_hash: str, progress: Progress | None
) -> ChainReport:
    refused = _trusted_start_check(from_sequence, trusted_hash)
    if refused is not None:
        return refused
    expected_prev = trusted_hash
    expected_seq = from_sequence + 1
    rows = 0
    last_seq = from_sequence
    head = AuditChainHead.objects.filter(pk=1).first()
    to_check = max(0, (head.sequence if head else 0) - from_sequence)
    query = (
        ActionLog.objects.filter(sequence__gt=from_sequence)
        .order_by("sequence")
        .values_list(*_VERIFIED_FIELDS)
        .iterator(chunk_size=batch_size)
    )
    for row in query:
        seq, prev, row_hash = row[0], row[-2], row[-1]
        rows += 1
        if seq != expected_seq:
            problem = "a row is missing before it" if seq > expected_seq else "duplicate sequence"
            return ChainReport(False, rows, seq, problem)
        if prev != expected_prev:
            return ChainReport(False, rows, seq, "its link to the previous row is broken")
        if audit_row_hash(prev, _row_canonical(row)) != row_hash:
            return ChainReport(False, rows, seq, "its content does not match its hash")
        expected_prev = row_hash
        expected_seq += 1
        last_seq = seq
        if progress is not None and rows % batch_size == 0:
            progress(rows, max(rows, to_check))
    if progress is not None:
        progress(rows, max(rows, to_check))
    if head is None:
        if rows:
            return ChainReport(False, rows, last_seq, "the chain head is missing")
    elif head.sequence > last_seq:
        return ChainReport(False, rows, last_seq + 1, "rows at the end of the chain were removed")
    elif head.sequence < last_seq:
        return ChainReport(
            False, rows, head.sequence + 1, "rows were appended without moving the chain head"
        )
    elif head.last_hash != expected_prev:
        return ChainReport(False, rows, last_seq, "the chain head's hash does not match it")
    return _tickets_check(rows, since_sequence=from_sequence) or ChainReport(True, rows)


def _tickets_check(rows: int, *, since_sequence: int = 0) -> ChainReport | None:
    """A ticket the log never names: proof that rows were erased, or None.

    Every ticket is created with its `ticket.created` row, so a truncated log and head (which
    verify as an empty chain) leave tickets behind that no row names. This asks for any row
    naming the ticket, not for the `ticket.created` action: the anti-join is then answered
    from the index on `ticket_id` alone (an index-only scan, linear in tickets and rows, fine
    at a million tickets), and tickets made without the service (test factories, bulk loads)
    that other rows name still verify.
    """
    tickets = Ticket.objects.all()
    if since_sequence:
        # Only the tickets made since the trusted row: the older ones were checked before, and
        # removing their rows since would have broken the walk from the trusted row.
        since = ActionLog.objects.filter(sequence=since_sequence).values("created_at")
        tickets = tickets.filter(created_at__gte=Subquery(since))
    missing = tickets.filter(~Exists(ActionLog.objects.filter(ticket=OuterRef("pk"))))
    first = missing.order_by("pk").values_list("reference", flat=True).first()
    if first is None:
        return None
    count = missing.count()
    others = f" and {count - 1} other tickets have" if count > 1 else " has"
    return ChainReport(
        False,
        rows,
        None,
        f"ticket {first}{others} no row in the log: the log is shorter than the tickets prove",
    )


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str
    created_at: datetime | None  # of the last row; None for an empty chain


def audit_head() -> ChainHead:
    """The head of the chain: what to keep outside the database to detect a rewritten log."""
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None or head.sequence == 0:
        return ChainHead(0, GENESIS_HASH, None)
    created_at = (
        ActionLog.objects.filter(sequence=head.sequence)
        .values_list("created_at", flat=True)
        .first()
    )
    return ChainHead(head.sequence, head.last_hash, created_at)
