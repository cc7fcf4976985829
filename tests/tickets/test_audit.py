import threading

import pytest
from django.core.management import call_command
from django.db import DatabaseError, close_old_connections, connection, transaction

from tests.factories import TicketFactory
from tickets.audit import audit_record, audit_verify
from tickets.models import ActionLog, ActionLogImmutableError


def _verify_exit_code() -> int:
    try:
        call_command("verify_audit_log")
    except SystemExit as exc:
        return int(exc.code)
    return 0


def _raw(sql: str, params: list) -> None:
    # Tampering as an attacker with database access would: straight SQL, bypassing the model.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # triggers off
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


@pytest.fixture
def chain(db):
    ticket = TicketFactory()
    for i in range(5):
        audit_record(actor="system", action="test.step", ticket=ticket, details={"i": i})
    return ticket


def test_an_intact_chain_verifies(chain, capsys):
    assert _verify_exit_code() == 0
    assert "5 rows" in capsys.readouterr().out


def test_an_edited_row_is_named(chain, capsys):
    row = ActionLog.objects.get(sequence=3)
    _raw("UPDATE tickets_actionlog SET details = %s WHERE id = %s", ['{"i": 99}', row.pk])

    assert _verify_exit_code() == 1
    assert "#3" in capsys.readouterr().err


def test_a_deleted_row_is_named(chain, capsys):
    _raw("DELETE FROM tickets_actionlog WHERE sequence = %s", [2])

    assert _verify_exit_code() == 1
    assert "#3" in capsys.readouterr().err


def test_a_deleted_last_row_is_caught(chain):
    _raw("DELETE FROM tickets_actionlog WHERE sequence = %s", [5])

    report = audit_verify()
    assert not report.ok and report.first_bad_sequence == 5


def test_an_inserted_row_is_named(chain, capsys):
    row = ActionLog.objects.get(sequence=4)
    # Shift rows 4.. up by one in two steps, since the sequence is unique row by row.
    _raw("UPDATE tickets_actionlog SET sequence = sequence + 1000 WHERE sequence >= %s", [4])
    _raw("UPDATE tickets_actionlog SET sequence = sequence - 999 WHERE sequence >= %s", [1000])
    _raw(
        "INSERT INTO tickets_actionlog"
        " (sequence, created_at, actor, action, details, prev_hash, hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [4, row.created_at, "system", "forged", "{}", row.prev_hash, "f" * 64],
    )

    assert _verify_exit_code() == 1
    assert "#4" in capsys.readouterr().err


def test_the_model_refuses_update_and_delete(chain):
    row = ActionLog.objects.first()
    row.actor = "someone else"

    with pytest.raises(ActionLogImmutableError):
        row.save()
    with pytest.raises(ActionLogImmutableError):
        row.delete()
    with pytest.raises(ActionLogImmutableError):
        ActionLog.objects.filter(pk=row.pk).update(actor="x")
    with pytest.raises(ActionLogImmutableError):
        ActionLog.objects.all().delete()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the trigger is PostgreSQL's")
def test_the_postgresql_trigger_refuses_update_and_delete(chain):
    for sql in ("UPDATE tickets_actionlog SET actor = 'x'", "DELETE FROM tickets_actionlog"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(sql)
    assert ActionLog.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain():
    ticket = TicketFactory()
    errors: list[Exception] = []

    def write(worker: int) -> None:
        close_old_connections()
        try:
            for i in range(250):
                audit_record(
                    actor=f"thread:{worker}", action="load", ticket=ticket, details={"i": i}
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert errors == []
    report = audit_verify()
    assert report.ok, report
    assert report.rows == 1000


@pytest.mark.django_db
def test_rows_with_awkward_details_hash_the_same_in_the_database_and_in_python(alice):
    # The PostgreSQL path hashes in SQL; verification hashes in Python: they must agree on
    # every byte, whatever the details hold (keys that mimic the row's own, non-ASCII text).
    ticket = TicketFactory(customer=alice)
    awkward = [
        {"sequence": 0, "ticket": "HD-FAKE0000", "note": '"sequence":0,"ticket":'},
        {"name": "Siti Nurhaliza binti Tarudin", "city": "Kota Bharu ✓", "emoji": "📧"},
        {"nested": {"deep": [1, 2.5, None, True, "x\\ny\u2028"]}, "empty": {}},
    ]
    rows = [
        audit_record(actor="worker", action="test.awkward", ticket=ticket, details=details)
        for details in awkward
    ]
    rows.append(audit_record(actor=None, action="test.no_ticket", details={}))

    written = ActionLog.objects.filter(action__startswith="test.")
    stored = {row.sequence: row.hash for row in written}
    assert stored == {row.sequence: row.hash for row in rows}
    assert [row.details for row in rows[:3]] == [
        ActionLog.objects.get(pk=row.pk).details for row in rows[:3]
    ]
    report = audit_verify()
    assert report.ok, report
    assert rows[-1].prev_hash == rows[-2].hash
