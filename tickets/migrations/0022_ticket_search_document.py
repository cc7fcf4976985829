"""Each ticket's search document (subject and messages), GIN-indexed, for the staff search.

PostgreSQL only and outside the model state, like the search indexes of 0015: the column is
written by tickets.services.search and read by tickets.selectors.search alone. Existing
tickets are filled here (the index is built after, in one sort).
"""

from django.db import migrations

from tickets.services.search import ticket_search_documents_rebuild


def search_document_add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE tickets_ticket ADD COLUMN IF NOT EXISTS search_vector tsvector", params=None
    )
    # The most common words and their shares, for the planner's estimates, down to rarer words
    # than the default keeps (and ticket_search_words_common, in tickets.selectors, reads).
    schema_editor.execute(
        "ALTER TABLE tickets_ticket ALTER COLUMN search_vector SET STATISTICS 1000", params=None
    )
    with schema_editor.connection.cursor() as cursor:
        if ticket_search_documents_rebuild(cursor):
            # Every row was written again, and each index of the table now holds both of its
            # versions: the trigram ones answered 300 times slower at a million tickets until
            # rebuilt (a VACUUM alone does not restore them).
            cursor.execute("REINDEX TABLE tickets_ticket")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS ticket_search_vector ON tickets_ticket USING gin (search_vector)",
        params=None,
    )
    # The words' shares, which the search reads (ticket_search_words_common), from the start.
    schema_editor.execute("ANALYZE tickets_ticket (search_vector)", params=None)


def search_document_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS ticket_search_vector", params=None)
    schema_editor.execute(
        "ALTER TABLE tickets_ticket DROP COLUMN IF EXISTS search_vector", params=None
    )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0021_fieldchange_pending_index")]

    operations = [migrations.RunPython(search_document_add, search_document_drop)]
