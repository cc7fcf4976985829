from typing import Any

from django.contrib.auth.models import User
from django.core.management.commands import loaddata
from django.db import transaction
from django.db.models.signals import post_save, pre_save

from accounts.selectors import login_access_read
from accounts.services import login_change_record

ACTOR = "command:loaddata"


class Command(loaddata.Command):
    """Django's loaddata, with every login it makes or writes over put on the audit chain.

    A fixture saves rows as they are, past every service: one holding a login could make a
    superuser, raise an agent to one or replace a password. What each login was before and is
    after is recorded, as a change in the admin is, in the transaction that loads it.
    """

    def handle(self, *fixture_labels: str, **options: Any) -> None:
        using = options["database"]
        before: dict[int, tuple[dict[str, Any], str]] = {}
        saved: dict[int, None] = {}

        def saving(sender: type[User], instance: User, **kwargs: Any) -> None:
            if instance.pk is None or instance.pk in before or instance.pk in saved:
                return
            stored = User.objects.using(using).filter(pk=instance.pk).first()
            if stored is not None:
                before[instance.pk] = (login_access_read(stored), stored.password)

        def collect(sender: type[User], instance: User, **kwargs: Any) -> None:
            saved.setdefault(instance.pk)

        # This process's saves of logins are the fixture's alone.
        pre_save.connect(saving, sender=User, weak=False, dispatch_uid=ACTOR)
        post_save.connect(collect, sender=User, weak=False, dispatch_uid=ACTOR)
        try:
            with transaction.atomic(using=using):
                super().handle(*fixture_labels, **options)
                for pk in saved:
                    user = User.objects.using(using).get(pk=pk)
                    was, password = before.get(pk, (None, ""))
                    login_change_record(
                        user=user,
                        actor=ACTOR,
                        before=was,
                        password_replaced=was is not None and password != user.password,
                    )
        finally:
            pre_save.disconnect(sender=User, dispatch_uid=ACTOR)
            post_save.disconnect(sender=User, dispatch_uid=ACTOR)
