"""Publishing tasks to the broker from a request or a sweep, in batches, riding out an outage."""

import logging
import time
from typing import Any

from helpdesk.celery import app as celery_app
from tickets.tasks import registration_change_process

logger = logging.getLogger(__name__)

# After a publish fails, the request path skips publishing for a few seconds instead of making
# every request wait for the broker's connect timeout; the rows wait in the outbox and the
# sweeps, which always try, queue them once the broker is back. Kept for its figure: a publish
# to an unreachable broker takes 2.0 s (test_worker.py measures 2.0 s for each request without
# this flag; bench/faults.py "redis outage": slowest request 2.0 s with it, see bench/README.md).
BROKER_RETRY_AFTER_SECONDS = 5.0
_broker_down_until = 0.0
# Tasks queued in one round trip to the broker (a sweep may queue hundreds).
PUBLISH_BATCH = 100


def tasks_publish(
    messages: list[tuple[Any, dict[str, Any]]], *, what: str, sweep: bool = False
) -> bool:
    """Queue tasks, (task, kwargs) each, in one round trip to the broker where it allows.

    False when they were not queued (the sweep will).
    """
    global _broker_down_until
    if not messages or (not sweep and time.monotonic() < _broker_down_until):
        return False
    try:
        with celery_app.producer_or_acquire() as producer, producer.batch():
            for task, kwargs in messages:
                task.apply_async(kwargs=kwargs, retry=False, producer=producer)
    except Exception as exc:
        _broker_down_until = time.monotonic() + BROKER_RETRY_AFTER_SECONDS
        logger.warning("%s not queued (%s); the sweep will retry", what, exc)
        return False
    return True


def tasks_publish_each(task: Any, ids: list[int], *, key: str, what: str, sweep: bool) -> bool:
    """Queue `task(key=id)` for each of `ids`, as tasks_publish does (`what` names them in logs).

    PUBLISH_BATCH tasks go in one round trip. False when some were not queued (the sweep will).
    """
    queued = bool(ids)
    for start in range(0, len(ids), PUBLISH_BATCH):
        batch = ids[start : start + PUBLISH_BATCH]
        tasks = [(task, {key: pk}) for pk in batch]
        queued = tasks_publish(tasks, what=f"{what} {batch[:5]}", sweep=sweep) and queued
    return queued


def registration_changes_publish(ids: list[int], *, sweep: bool = False) -> bool:
    """Queue the registration change worker for each change; False when some were not queued.

    A broker that cannot be reached loses nothing: the changes stay queued for the sweep
    (registration_changes_requeue_due), and the request that queued them still answers.
    """
    return tasks_publish_each(
        registration_change_process, ids, key="change_id", what="registration changes", sweep=sweep
    )
