import io
import itertools
import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, close_old_connections, connection, transaction

from tests.factories import TicketFactory
from tests.markers import postgresql_only
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


@postgresql_only("the trigger")
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
    # and the chain's order is the order in time: no row is dated before the one it follows
    times = list(ActionLog.objects.order_by("sequence").values_list("created_at", flat=True))
    assert [later for earlier, later in itertools.pairwise(times) if later < earlier] == []


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


# --- a daily check of a long chain: progress, and walking only what is new ---


def _verify_command(*args: str) -> int:
    try:
        call_command("verify_audit_log", *args)
    except SystemExit as exc:
        return int(exc.code)
    return 0


def _trusted_head() -> tuple[str, str]:
    out = io.StringIO()
    call_command("audit_head", "--json", stdout=out)
    head = json.loads(out.getvalue())
    return str(head["sequence"]), head["hash"]


@pytest.fixture
def shipped_chain(chain):
    """Five rows shipped as a trusted head, then three more written since."""
    sequence, head_hash = _trusted_head()
    for i in range(3):
        audit_record(actor="system", action="test.later", ticket=chain, details={"i": i})
    return sequence, head_hash


def test_progress_is_reported_on_stderr_and_the_summary_on_stdout(chain, capsys):
    assert _verify_command("--progress", "--progress-interval", "0") == 0

    captured = capsys.readouterr()
    assert "Audit log: 5 of 5 rows checked (100%)" in captured.err
    assert "5 rows, chain verified" in captured.out
    assert "rows checked" not in captured.out


def test_progress_is_reported_after_each_batch(chain):
    seen: list[tuple[int, int]] = []

    report = audit_verify(batch_size=2, progress=lambda done, total: seen.append((done, total)))

    assert report.ok
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_from_a_trusted_head_only_the_new_rows_are_walked(shipped_chain, capsys):
    sequence, head_hash = shipped_chain

    code = _verify_command("--from-sequence", sequence, "--expect-hash", head_hash)

    assert code == 0
    assert "3 rows after #5 verified" in capsys.readouterr().out
    report = audit_verify(from_sequence=int(sequence), trusted_hash=head_hash)
    assert report.ok and report.rows == 3


def test_a_row_tampered_after_the_trusted_head_is_caught(shipped_chain, capsys):
    sequence, head_hash = shipped_chain
    row = ActionLog.objects.get(sequence=7)
    _raw("UPDATE tickets_actionlog SET details = %s WHERE id = %s", ['{"i": 99}', row.pk])

    code = _verify_command("--from-sequence", sequence, "--expect-hash", head_hash)

    assert code == 1
    assert "BROKEN at row #7" in capsys.readouterr().err


def test_the_trusted_row_itself_tampered_is_caught(shipped_chain, capsys):
    sequence, head_hash = shipped_chain
    row = ActionLog.objects.get(sequence=5)
    _raw("UPDATE tickets_actionlog SET actor = %s WHERE id = %s", ["someone", row.pk])

    assert _verify_command("--from-sequence", sequence, "--expect-hash", head_hash) == 1
    assert "BROKEN at row #5: its content does not match" in capsys.readouterr().err


def test_a_wrong_trusted_hash_is_refused(shipped_chain, capsys):
    sequence, _ = shipped_chain

    code = _verify_command("--from-sequence", sequence, "--expect-hash", "ab" * 32)

    assert code == 1
    err = capsys.readouterr().err
    assert "BROKEN at row #5: row #5 does not have the trusted hash" in err


def test_a_rewritten_chain_does_not_end_in_the_shipped_head(shipped_chain, capsys):
    # given the rows up to the shipped head were rewritten and re-hashed consistently
    sequence, head_hash = shipped_chain
    forged = "f" * 64
    _raw("UPDATE tickets_actionlog SET hash = %s WHERE sequence = %s", [forged, 5])

    # then the shipped hash no longer matches the row at its sequence
    assert _verify_command("--from-sequence", sequence, "--expect-hash", head_hash) == 1
    assert "does not have the trusted hash" in capsys.readouterr().err


def test_a_trusted_row_that_is_gone_is_named(shipped_chain, capsys):
    _, head_hash = shipped_chain

    assert _verify_command("--from-sequence", "50", "--expect-hash", head_hash) == 1
    assert "row #50, the trusted starting point, is not in the log" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--from-sequence", "5"],
        ["--expect-hash", "0" * 64],
        ["--from-sequence", "5", "--expect-hash", "not-a-hash"],
        ["--from-sequence", "-1", "--expect-hash", "0" * 64],
    ],
)
def test_a_trusted_start_needs_both_a_row_and_its_hash(shipped_chain, args):
    with pytest.raises(CommandError):
        call_command("verify_audit_log", *args)


def test_a_ticket_made_after_the_trusted_head_with_no_row_is_caught(shipped_chain, capsys):
    sequence, head_hash = shipped_chain
    orphan = TicketFactory()  # a ticket no row names, as if its rows were erased

    assert _verify_command("--from-sequence", sequence, "--expect-hash", head_hash) == 1
    assert orphan.reference in capsys.readouterr().err
