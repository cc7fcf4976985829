"""Indexes for the staff search: customer name and partial emails (trigram), message text.

PostgreSQL only (SQLite has neither GIN nor text search), so RunPython creates them outside the
model state, as 0003 did. The message index is one GIN over the English and the 'simple'
configurations together: PostgreSQL has no Malay dictionary, so Malay words are matched as
written (lower-cased, no stemming) by 'simple'. tickets.selectors.search.MESSAGE_TSVECTOR must
stay the very expression indexed here, or the planner cannot use the index.
"""

from django.db import migrations

# Index name -> (table, indexed expression, method). The trigram ones serve Django's icontains
# (`UPPER(column::text) LIKE UPPER('%…%')`).
SEARCH_INDEXES = {
    "customer_full_name_trgm": ("accounts_customer", "UPPER(full_name) gin_trgm_ops"),
    "customer_email_trgm": ("accounts_customer", "UPPER(email) gin_trgm_ops"),
    "ticket_contact_email_trgm": ("tickets_ticket", "UPPER(contact_email) gin_trgm_ops"),
    "message_body_fts": (
        "tickets_message",
        "(to_tsvector('english'::regconfig, body) || to_tsvector('simple'::regconfig, body))",
    ),
}


def search_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    for name, (table, expression) in SEARCH_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})", params=None
        )


def search_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in SEARCH_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_api_token_from_plain"),
        ("tickets", "0014_pause_waiting_tickets_sla"),
    ]

    operations = [migrations.RunPython(search_indexes_create, search_indexes_drop)]
