from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0031_verification_resolution_at_backfill"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="unproven",
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
