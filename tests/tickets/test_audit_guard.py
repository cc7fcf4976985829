"""The audit chain cannot be erased unnoticed: guards in the database, cross-checks in verify."""

import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from tests.factories import TicketFactory
from tests.markers import postgresql_only
from tickets.audit import GENESIS_HASH, audit_record, audit_verify
from tickets.models import ActionLog, AuditChainHead

guards_only = postgresql_only("the guards' trigger")


def _verify() -> int:
    code = 0
    try:
        call_command("verify_audit_log")
    except SystemExit as exc:
        code = int(exc.code)
    return code


def _as_superuser(*statements: str) -> None:
    # An attacker who may switch triggers off (superuser, or the tables' owner).
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        for sql in statements:
            cursor.execute(sql)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


@pytest.fixture
def chain(db):
    ticket = TicketFactory()
    audit_record(actor="system", action="ticket.created", ticket=ticket)
    for i in range(3):
        audit_record(actor="system", action="test.step", ticket=ticket, details={"i": i})
    if connection.vendor == "postgresql":
        # Run the deferred foreign-key checks now, as a commit would: TRUNCATE refuses a table
        # with pending trigger events, which would hide what the guards answer.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return ticket


@guards_only
@pytest.mark.parametrize(
    "sql",
    [
        "TRUNCATE tickets_actionlog",
        "TRUNCATE tickets_auditchainhead",
        "TRUNCATE tickets_actionlog, tickets_auditchainhead",
    ],
)
def test_truncating_the_chain_is_refused(chain, sql):
    with (
        pytest.raises(DatabaseError, match=r"TRUNCATE of tickets_\w+ refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)

    assert ActionLog.objects.count() == 4
    assert AuditChainHead.objects.get(pk=1).sequence == 4


@guards_only
def test_a_reset_of_everything_the_log_describes_is_allowed(chain):
    # What Django's flush does between transactional tests: one TRUNCATE of every table.
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tickets_actionlog, tickets_auditchainhead, tickets_ticket,"
            " accounts_customer CASCADE"
        )

    assert not ActionLog.objects.exists() and not AuditChainHead.objects.exists()


@guards_only
def test_deleting_the_head_is_refused(chain):
    with (
        pytest.raises(DatabaseError, match="DELETE of #4 refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM tickets_auditchainhead")

    assert AuditChainHead.objects.get(pk=1).sequence == 4


@guards_only
def test_a_head_with_nothing_chained_may_be_deleted(db):
    AuditChainHead.objects.create(pk=1)

    AuditChainHead.objects.all().delete()

    assert not AuditChainHead.objects.exists()


@guards_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE tickets_auditchainhead SET sequence = sequence - 1, last_hash = prev_hash",
        "UPDATE tickets_auditchainhead SET sequence = 0, last_hash = repeat('0', 64)",
        "UPDATE tickets_auditchainhead SET last_hash = repeat('f', 64)",  # same sequence
        "UPDATE tickets_auditchainhead SET sequence = sequence + 1",  # same hash
        "UPDATE tickets_auditchainhead SET id = 2, sequence = sequence + 1,"
        " last_hash = repeat('f', 64)",
    ],
)
def test_the_head_only_moves_forward(chain, sql):
    before = AuditChainHead.objects.get(pk=1)

    with (
        pytest.raises(DatabaseError, match="only moves forward"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)

    after = AuditChainHead.objects.get(pk=1)
    assert (after.sequence, after.last_hash) == (before.sequence, before.last_hash)


def test_appends_still_work_and_verify(chain):
    rows = [audit_record(actor="system", action="test.more", ticket=chain) for _ in range(3)]

    head = AuditChainHead.objects.get(pk=1)
    assert [row.sequence for row in rows] == [5, 6, 7]
    assert (head.sequence, head.last_hash, head.prev_hash) == (7, rows[-1].hash, rows[-2].hash)
    assert audit_verify().ok


def test_verify_fails_when_tickets_outlive_their_log(chain, capsys):
    # The log and its head emptied together, which verified as "intact: 0 rows" before.
    other = TicketFactory()
    audit_record(actor="system", action="ticket.created", ticket=other)
    if connection.vendor == "postgresql":
        _as_superuser("TRUNCATE tickets_actionlog, tickets_auditchainhead")
    else:
        _as_superuser("DELETE FROM tickets_actionlog", "DELETE FROM tickets_auditchainhead")

    assert _verify() == 1
    err = capsys.readouterr().err
    assert f"ticket {chain.reference} and 1 other tickets have no row in the log" in err
    assert "shorter than the tickets prove" in err


def test_verify_fails_when_the_head_does_not_name_the_last_row(chain, capsys):
    _as_superuser("UPDATE tickets_auditchainhead SET last_hash = '" + "f" * 64 + "'")

    assert _verify() == 1
    assert "#4: the chain head's hash does not match it" in capsys.readouterr().err


def test_verify_fails_when_rows_were_appended_behind_the_heads_back(chain, capsys):
    _as_superuser("UPDATE tickets_auditchainhead SET sequence = 3")

    assert _verify() == 1
    assert "#4: rows were appended without moving the chain head" in capsys.readouterr().err


def test_verify_fails_when_the_head_is_missing(chain, capsys):
    _as_superuser("DELETE FROM tickets_auditchainhead")

    assert _verify() == 1
    assert "#4: the chain head is missing" in capsys.readouterr().err


def test_verify_passes_on_an_intact_chain(chain, capsys):
    assert _verify() == 0
    assert "4 rows" in capsys.readouterr().out


def test_audit_head_prints_the_last_row(chain, capsys):
    last = ActionLog.objects.order_by("-sequence").first()

    call_command("audit_head", "--json")
    line = capsys.readouterr().out
    call_command("audit_head")
    readable = capsys.readouterr().out

    assert line.count("\n") == 1
    head = json.loads(line)
    assert head["sequence"] == last.sequence == 4
    assert head["hash"] == last.hash
    assert head["created_at"] == last.created_at.isoformat()
    assert "read_at" in head
    assert f"#{last.sequence}" in readable and last.hash in readable


def test_audit_head_of_an_empty_chain(db, capsys):
    call_command("audit_head", "--json")

    head = json.loads(capsys.readouterr().out)
    assert (head["sequence"], head["hash"], head["created_at"]) == (0, GENESIS_HASH, None)
