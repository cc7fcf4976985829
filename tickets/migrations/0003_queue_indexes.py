"""Indexes for the staff queue: one per sort key (keyset pages), open-ticket counts, search.

The trigram indexes for the search exist on PostgreSQL only (SQLite has no GIN), so they are
created by RunPython and are not part of the model state.
"""

import datetime

import django.db.models.functions.comparison
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

# Index name -> (table, indexed expression). The ticket ones serve Django's icontains
# (`UPPER(column::text) LIKE UPPER('%…%')`); the domain one serves `name LIKE '%…%'` (domain
# names are stored lower-case), the queue's search by part of a domain name.
TRIGRAM_INDEXES = {
    "ticket_subject_trgm": ("tickets_ticket", "UPPER(subject)"),
    "ticket_requested_domain_trgm": ("tickets_ticket", "UPPER(requested_domain)"),
    "domain_name_trgm": ("domains_domain", "name"),
}


def trigram_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    for name, (table, expression) in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX {name} ON {table} USING gin ({expression} gin_trgm_ops)", params=None
        )


def trigram_indexes_drop(apps, schema_editor):
    # The pg_trgm extension stays: other schemas may use it, and dropping it needs more rights.
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_staff_roles'),
        ('domains', '0001_initial'),
        ('tickets', '0002_actionlog_append_only'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='ticket',
            index=models.Index(django.db.models.functions.comparison.Coalesce('due_at', models.Value(datetime.datetime(9999, 12, 31, 0, 0, tzinfo=datetime.timezone.utc))), models.F('id'), condition=models.Q(('status__in', ('awaiting_customer', 'awaiting_verification', 'new', 'open'))), name='ticket_open_due_key'),
        ),
        migrations.AddIndex(
            model_name='ticket',
            index=models.Index(django.db.models.functions.comparison.Coalesce('due_at', models.Value(datetime.datetime(9999, 12, 31, 0, 0, tzinfo=datetime.timezone.utc))), models.F('id'), name='ticket_due_key'),
        ),
        migrations.AddIndex(
            model_name='ticket',
            index=models.Index(models.Case(models.When(priority='low', then=models.Value(1)), models.When(priority='normal', then=models.Value(2)), models.When(priority='high', then=models.Value(3)), models.When(priority='urgent', then=models.Value(4)), default=models.Value(0)), models.F('id'), name='ticket_priority_key'),
        ),
        migrations.AddIndex(
            model_name='ticket',
            index=models.Index(fields=['updated_at', 'id'], name='ticket_updated'),
        ),
        migrations.AddIndex(
            model_name='ticket',
            index=models.Index(condition=models.Q(('status__in', ('awaiting_customer', 'awaiting_verification', 'new', 'open'))), fields=['status', 'assignee', 'due_at', 'id'], name='ticket_open_counts'),
        ),
        migrations.AddIndex(
            model_name='ticket',
            index=models.Index(django.db.models.functions.text.Upper('contact_email'), name='ticket_contact_email_ci'),
        ),
        migrations.RunPython(trigram_indexes_create, trigram_indexes_drop),
    ]
