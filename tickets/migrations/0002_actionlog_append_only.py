from django.db import migrations

from tickets.migrations._postgresql import run_sql_on_postgresql

FORWARD = """
CREATE OR REPLACE FUNCTION tickets_actionlog_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tickets_actionlog is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tickets_actionlog_append_only
    BEFORE UPDATE OR DELETE ON tickets_actionlog
    FOR EACH ROW EXECUTE FUNCTION tickets_actionlog_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS tickets_actionlog_append_only ON tickets_actionlog;
DROP FUNCTION IF EXISTS tickets_actionlog_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [run_sql_on_postgresql(FORWARD, BACKWARD)]
