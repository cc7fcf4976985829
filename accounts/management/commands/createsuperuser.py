import os
from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.contrib.auth.models import User
from django.core.management import CommandError
from django.db import transaction
from django.db.models.signals import post_save

from accounts.services import login_addresses_refusal, login_change_record

ACTOR = "command:createsuperuser"


def _refusal(**fields: str) -> str:
    """Why a new superuser may not have these username and email ("" when it may)."""
    return " ".join(login_addresses_refusal(user=User(**fields), customer=None).values())


class Command(createsuperuser.Command):
    """Django's createsuperuser, held to the rule every login is: no customer's address.

    A superuser holding a customer's email on record (in any spelling) would have its
    password-reset links mailed to that customer. The login it makes is put on the audit chain,
    as one made in the admin is, in the same transaction.
    """

    def _validate_username(self, username: str, verbose_field_name: str, database: str) -> Any:
        return super()._validate_username(username, verbose_field_name, database) or (  # type: ignore[misc]
            _refusal(username=username) or None
        )

    def get_input_data(self, field: Any, message: str, default: Any = None) -> Any:
        value = super().get_input_data(field, message, default)
        why = _refusal(email=value) if field.name == "email" and value else ""
        if why:
            self.stderr.write(f"Error: {why}")
            return None
        return value

    def handle(self, *args: Any, **options: Any) -> None:
        email = options.get("email") or os.environ.get("DJANGO_SUPERUSER_EMAIL") or ""
        why = _refusal(email=email) if email else ""
        if why:
            raise CommandError(why)
        made: list[User] = []

        def collect(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
            if created:
                made.append(instance)

        # Django's handle() makes the login deep inside; this process's saves are all its own.
        post_save.connect(collect, sender=User, weak=False, dispatch_uid=ACTOR)
        try:
            with transaction.atomic(using=options["database"]):
                super().handle(*args, **options)
                for user in made:
                    login_change_record(user=user, actor=ACTOR, before=None)
        finally:
            post_save.disconnect(sender=User, dispatch_uid=ACTOR)
