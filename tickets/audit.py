"""The tamper-evident audit log: every row hashes the previous row's hash and its own content."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Customer
from tickets.models import ActionLog, AuditChainHead, Ticket

GENESIS_HASH = "0" * 64

Actor = AbstractBaseUser | Customer | str | None


def actor_label(actor: Actor) -> str:
    """How an actor is written in the log: `staff:agent`, `customer:C12345678`, `system`."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    if isinstance(actor, Customer):
        return f"customer:{actor.number}"
    prefix = "staff" if getattr(actor, "is_staff", False) else "user"
    return f"{prefix}:{actor.get_username()}"


def _canonical(
    *,
    sequence: int,
    created_at: str,
    actor: str,
    action: str,
    ticket: str,
    customer: str,
    details: Any,
) -> bytes:
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


def _row_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def _normalise(details: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so the hash covers exactly what the database stores.
    return json.loads(json.dumps(details, default=str))


def _chain_advance() -> tuple[int, str]:
    """Take the chain head's row lock and the next sequence number, in one statement.

    The lock is held until the caller's transaction ends, which serialises writers so the
    chain never forks.
    """
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    # The table name is the model's own, quoted; nothing here comes from input.
    sql = f"UPDATE {table} SET sequence = sequence + 1 WHERE id = 1 RETURNING sequence, last_hash"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        advanced = cursor.fetchone()
        if advanced is None:  # a new database: the head row is made once
            AuditChainHead.objects.get_or_create(pk=1)
            cursor.execute(sql)
            advanced = cursor.fetchone()
    return advanced[0], advanced[1]


def audit_record(
    *,
    actor: Actor,
    action: str,
    ticket: Ticket | None = None,
    customer: Customer | None = None,
    details: dict[str, Any] | None = None,
) -> ActionLog:
    """Append one row to the chain inside the caller's transaction (three statements)."""
    if customer is None and ticket is not None:
        customer = ticket.customer
    clean = _normalise(details or {})
    label = actor_label(actor)
    # No savepoint: a failed audit write must fail the action that asked for it.
    with transaction.atomic(savepoint=False):
        sequence, prev_hash = _chain_advance()
        created_at = timezone.now()
        canonical = _canonical(
            sequence=sequence,
            created_at=created_at.isoformat(),
            actor=label,
            action=action,
            ticket=ticket.reference if ticket else "",
            customer=customer.number if customer else "",
            details=clean,
        )
        row_hash = _row_hash(prev_hash, canonical)
        row = ActionLog(
            sequence=sequence,
            created_at=created_at,
            actor=label,
            action=action,
            ticket=ticket,
            customer=customer,
            details=clean,
            prev_hash=prev_hash,
            hash=row_hash,
        )
        row.save(force_insert=True)
        AuditChainHead.objects.filter(pk=1).update(last_hash=row_hash)
        return row


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    first_bad_sequence: int | None = None
    problem: str = ""


def audit_verify(*, batch_size: int = 2000) -> ChainReport:
    """Walk the whole chain and report the first row that was altered, inserted or removed."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    rows = 0
    last_seq = 0
    query = (
        ActionLog.objects.order_by("sequence")
        .values_list(
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
        .iterator(chunk_size=batch_size)
    )
    for seq, created_at, actor, action, ticket_ref, customer_no, details, prev, row_hash in query:
        rows += 1
        if seq != expected_seq:
            problem = "a row is missing before it" if seq > expected_seq else "duplicate sequence"
            return ChainReport(False, rows, seq, problem)
        if prev != expected_prev:
            return ChainReport(False, rows, seq, "its link to the previous row is broken")
        canonical = _canonical(
            sequence=seq,
            created_at=created_at.isoformat(),
            actor=actor,
            action=action,
            ticket=ticket_ref or "",
            customer=customer_no or "",
            details=details,
        )
        if _row_hash(prev, canonical) != row_hash:
            return ChainReport(False, rows, seq, "its content does not match its hash")
        expected_prev = row_hash
        expected_seq += 1
        last_seq = seq
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.sequence != last_seq:
        return ChainReport(False, rows, last_seq + 1, "rows at the end of the chain were removed")
    return ChainReport(True, rows)
