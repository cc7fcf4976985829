"""Mark the messages that were held from the customer by their ticket's state.

Until now an unproven opener's words were told apart by the ticket (linked by its address, not
confirmed) and the message (the requester's, written without a login or authenticated mail).
The same messages are marked now, so the mark moves with them.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    Message = apps.get_model("tickets", "Message")
    Message.objects.filter(
        author="customer",
        author_user__isnull=True,
        sender_authentication__isnull=True,
        ticket__customer_by_contact=True,
        ticket__verified_at__isnull=True,
    ).update(unproven=True)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0032_message_unproven"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
