"""A smaller pending list for each GIN index the staff search reads (PostgreSQL only).

A GIN index takes new entries into a pending list, merged into the index by a vacuum or by the
write that takes the list past gin_pending_list_limit (4 MB by default), and every read of the
index scans the whole list. Between autovacuum runs the ticket writes fill them (each ticket
written adds to every GIN index of its table), so a search's reads cost up to the full list.

Measured on copies of the 100,000-ticket bench database, alternating (bench/README.md,
2026-12-06 17:00): one read of the contact addresses' trigram index 6.4 ms with 480 pending
pages (3.8 MB) against 2.2 ms with 61 (512 kB bounds it at 64) and 1.6 ms with none; the
requested domains' 3.7 against 0.8 ms, the search documents' 1.6 against 0.35 ms. The writes:
a ticket update (a new entry in every index of the table) 0.47 ms a row with 4 MB lists,
0.56 ms with 512 kB, and 1.25 ms with `fastupdate = off` (not kept); ticket_create through
the service, 4,000 tickets each, 7.4 against 6.8 ms (median: within the noise).
"""

from django.db import migrations

# Created by 0003 (trigram), 0015 (trigram) and 0022 (the tickets' search documents).
SEARCH_GIN_INDEXES = (
    "ticket_subject_trgm",
    "ticket_requested_domain_trgm",
    "ticket_contact_email_trgm",
    "ticket_search_vector",
    "customer_full_name_trgm",
    "customer_email_trgm",
    "domain_name_trgm",
)
PENDING_LIST_LIMIT_KB = 512


def pending_list_limit_set(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in SEARCH_GIN_INDEXES:
        schema_editor.execute(
            f"ALTER INDEX IF EXISTS {name} SET (gin_pending_list_limit = {PENDING_LIST_LIMIT_KB})",
            params=None,
        )


def pending_list_limit_reset(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in SEARCH_GIN_INDEXES:
        schema_editor.execute(
            f"ALTER INDEX IF EXISTS {name} RESET (gin_pending_list_limit)", params=None
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0023_ticket_merged_from_any")]

    operations = [migrations.RunPython(pending_list_limit_set, pending_list_limit_reset)]
