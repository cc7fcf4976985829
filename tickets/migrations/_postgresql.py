"""Raw SQL that some migrations run on PostgreSQL only (not a migration: the loader skips `_`).

Their triggers have no SQLite counterpart: SQLite is the development database only, and the
test suite edits audit rows there on purpose (see 0006_audit_chain_guard).
"""

from functools import partial

from django.db import migrations


def _execute_on_postgresql(apps, schema_editor, *, sql: str) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(sql, params=None)


def run_sql_on_postgresql(forward: str, backward: str) -> migrations.RunPython:
    """A RunPython step that executes `forward` (undone by `backward`) on PostgreSQL only."""
    return migrations.RunPython(
        partial(_execute_on_postgresql, sql=forward), partial(_execute_on_postgresql, sql=backward)
    )
