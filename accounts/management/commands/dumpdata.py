from typing import Any

from django.core.management.commands import dumpdata

# Each row's key is a live credential: whoever reads a dump could sign in as its login.
NEVER_DUMPED = ("sessions.session",)


class Command(dumpdata.Command):
    """Django's dumpdata, leaving out the rows that hold credentials in clear.

    A dump is handed around (a bug report, a copy for staging); the sessions' keys in it would
    sign its reader in as every login signed in when it was made, staff and superusers too. They
    are left out even when asked for by name.
    """

    def handle(self, *app_labels: str, **options: Any) -> None:
        options["exclude"] = [*(options.get("exclude") or []), *NEVER_DUMPED]
        super().handle(*app_labels, **options)
