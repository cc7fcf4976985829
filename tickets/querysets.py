from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from tickets.models import ActionLog, Notification


class NotificationQuerySet(models.QuerySet["Notification"]):
    def due_for_sweep(self, *, older_than) -> "NotificationQuerySet":
        """Pending rows whose task should have run by now (e.g. the broker was down at commit)."""
        return self.filter(status="pending", next_attempt_at__lt=older_than)


class ActionLogQuerySet(models.QuerySet["ActionLog"]):
    def update(self, **kwargs):
        from tickets.models import ActionLogImmutableError

        raise ActionLogImmutableError("audit log rows cannot be changed")

    def delete(self):
        from tickets.models import ActionLogImmutableError

        raise ActionLogImmutableError("audit log rows cannot be deleted")
