"""The Celery application: configured from Django settings under the CELERY_ namespace."""

import os

from celery import Celery
from celery.signals import task_prerun, task_success

from helpdesk.observability import request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _database_connections_as_for_a_request(task_id=None, task=None, **kwargs) -> None:
    """Drop broken or CONN_MAX_AGE-expired connections, as Django does before each request."""
    if task is not None and getattr(task.request, "is_eager", False):
        return  # run in line by the caller, inside the caller's transaction
    if task_id:
        request_id_var.set(task_id)  # the request id of this task's log lines
    from django.db import close_old_connections

    close_old_connections()


@task_success.connect
def _periodic_run_recorded(sender=None, **kwargs) -> None:
    """Note when a periodic task finished, for readiness (`sweeps`) and metrics."""
    from django.conf import settings

    name = getattr(sender, "name", None)
    if name not in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}:
        return
    from django.utils import timezone

    from helpdesk.models import PeriodicRun

    PeriodicRun.objects.update_or_create(task=name, defaults={"ran_at": timezone.now()})
