"""Move DRF's plain-text tokens into ApiToken as digests, then drop DRF's table.

Each key keeps working (a client need not change anything) until it expires, 90 days after
this migration, or is revoked; only its SHA-512 digest is kept. The reverse cannot bring plain
keys back (they are not stored any more): it leaves the hashed tokens as they are.
"""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS

PLAIN_TABLE = "authtoken_token"
MIGRATED_TTL = timedelta(days=90)
MIGRATED_NAME = "Token issued before tokens were hashed"


def hash_plain_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if PLAIN_TABLE not in connection.introspection.table_names():
        return  # a database made after rest_framework.authtoken was dropped
    api_token = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {PLAIN_TABLE}")  # noqa: S608
        rows = cursor.fetchall()
    expiry = timezone.now() + MIGRATED_TTL
    for key, user_id, created in rows:
        token = api_token(
            digest=hash_token(key),
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            user_id=user_id,
            expiry=expiry,
            name=MIGRATED_NAME,
        )
        token.save()
        # `created` is auto_now_add: keep when the key was really issued.
        api_token.objects.filter(pk=token.pk).update(created=created)
    schema_editor.execute(f"DROP TABLE {PLAIN_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_api_token")]

    operations = [migrations.RunPython(hash_plain_tokens, migrations.RunPython.noop)]
