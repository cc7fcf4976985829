from django.db import models
from django.utils import timezone


class BaseModel(models.Model):
    """Timestamps every table carries."""

    created_at = models.DateTimeField(db_index=True, default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class PeriodicRun(BaseModel):
    """When each periodic task (CELERY_BEAT_SCHEDULE) last finished: stale means beat is down."""

    task = models.CharField(max_length=100, unique=True)
    ran_at = models.DateTimeField()

    class Meta:
        ordering = ["task"]

    def __str__(self) -> str:
        return f"{self.task} at {self.ran_at:%Y-%m-%d %H:%M:%S}"
