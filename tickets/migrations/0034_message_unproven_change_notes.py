"""Mark the notes and files of change requests made without a login and not verified yet.

Until now the note of such a request was shown to the customer as soon as the worker found
their record; it is anyone's words until the link mailed to the email on record is followed.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    Message = apps.get_model("tickets", "Message")
    Message.objects.filter(
        author="customer",
        author_user__isnull=True,
        sender_authentication__isnull=True,
        ticket__kind="modify_info",
        ticket__verified_at__isnull=True,
    ).update(unproven=True)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0033_message_unproven_backfill"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
