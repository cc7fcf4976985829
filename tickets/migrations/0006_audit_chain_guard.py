"""The audit chain cannot be emptied or wound back on PostgreSQL.

0002's row-level trigger refuses UPDATE and DELETE on the log, but TRUNCATE fires no row
trigger, and the chain head had no guard: `TRUNCATE tickets_actionlog` plus
`DELETE FROM tickets_auditchainhead` left an empty chain that verified. Here:

- TRUNCATE of the log or the head is refused unless it leaves nothing the log describes: no
  audit row, no head, no ticket and no customer. The check runs AFTER TRUNCATE (statement
  level), when every table named in the statement is already empty, so resetting the whole
  database in one statement still works: that is Django's `flush`, which the test suite runs
  between transactional tests (row triggers never fired on it, and no session setting is
  involved). A BEFORE trigger cannot tell that case from erasing the log alone.
- The head row only moves forward: an UPDATE must keep its id, raise its sequence and change
  its hash (the append in tickets/audit.py moves it by one; bulk loaders such as
  bench/queue.py move it by many). DELETE is refused, except of a head at sequence 0, which
  has nothing chained behind it (a new database; tests/tickets/test_notifications.py).

A superuser can still switch triggers off (`session_replication_role = replica`, `ALTER TABLE
... DISABLE TRIGGER`) or drop them, as can the tables' owner: run the app as another role (see
README, Production) and keep the head hash outside the database (`manage.py audit_head`).

No SQLite triggers: SQLite cannot switch triggers off, and the test suite edits and deletes
audit rows directly on SQLite to stage tampering (tests/tickets/test_audit.py), deletes the head
(test_notifications.py) and flushes transactional tests with DELETE, all of which such
triggers would refuse. SQLite is the development database only.
"""

from django.db import migrations

from tickets.migrations._postgresql import run_sql_on_postgresql

FORWARD = """
CREATE OR REPLACE FUNCTION tickets_audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM tickets_actionlog)
       OR EXISTS (SELECT 1 FROM tickets_auditchainhead)
       OR EXISTS (SELECT 1 FROM tickets_ticket)
       OR EXISTS (SELECT 1 FROM accounts_customer) THEN
        RAISE EXCEPTION 'TRUNCATE of % refused: the audit chain is append-only while the data '
            'it describes remains', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tickets_actionlog_no_truncate
    AFTER TRUNCATE ON tickets_actionlog
    FOR EACH STATEMENT EXECUTE FUNCTION tickets_audit_refuse_truncate();
CREATE TRIGGER tickets_auditchainhead_no_truncate
    AFTER TRUNCATE ON tickets_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION tickets_audit_refuse_truncate();

CREATE OR REPLACE FUNCTION tickets_auditchainhead_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.sequence = 0 THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'tickets_auditchainhead only moves forward: DELETE of #% refused',
            OLD.sequence
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.sequence <= OLD.sequence
       OR NEW.last_hash = OLD.last_hash THEN
        RAISE EXCEPTION 'tickets_auditchainhead only moves forward: UPDATE from #% to #% refused',
            OLD.sequence, NEW.sequence
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tickets_auditchainhead_forward_only
    BEFORE UPDATE OR DELETE ON tickets_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION tickets_auditchainhead_forward_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS tickets_auditchainhead_forward_only ON tickets_auditchainhead;
DROP FUNCTION IF EXISTS tickets_auditchainhead_forward_only();
DROP TRIGGER IF EXISTS tickets_auditchainhead_no_truncate ON tickets_auditchainhead;
DROP TRIGGER IF EXISTS tickets_actionlog_no_truncate ON tickets_actionlog;
DROP FUNCTION IF EXISTS tickets_audit_refuse_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("tickets", "0005_ticket_owner_verified")]

    operations = [run_sql_on_postgresql(FORWARD, BACKWARD)]
