"""Readiness of what the help desk depends on: database, broker, cache, and that beat runs.

Liveness (`/healthz`, helpdesk.middleware.HealthzMiddleware) looks at none of these.
"""

import logging
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from helpdesk.celery import app as celery_app
from helpdesk.models import PeriodicRun
from tickets.selectors.outbox import outbox_oldest_pending_at

logger = logging.getLogger(__name__)

OK = "ok"
DOWN = "down"
STATUSES = (OK, DOWN)
BROKER_TIMEOUT_SECONDS = 2.0
# Before the first sweep is recorded, beat gets this long from the start of this process.
_PROCESS_STARTED = time.time()


def database_status() -> str:
    """Run a real query on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any driver error means the same thing here: not usable
        logger.warning("health: database unreachable", exc_info=True)
        return DOWN
    return OK


def broker_status() -> str:
    """Open a short-lived connection to the Celery broker."""
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(
                max_retries=1,
                interval_start=0,
                interval_step=0,
                timeout=BROKER_TIMEOUT_SECONDS,  # type: ignore[arg-type]  # kombu takes float seconds; its stub says int
            )
    except Exception:  # kombu raises transport-specific errors; all of them mean "down"
        logger.warning("health: broker unreachable", exc_info=True)
        return DOWN
    return OK


def cache_status() -> str:
    """Write and read back a key in the shared cache."""
    try:
        cache.set("health:probe", 1, timeout=10)
        if cache.get("health:probe") != 1:
            return DOWN
    except Exception:  # a Redis client error of any kind: the cache is not usable
        logger.warning("health: cache unreachable", exc_info=True)
        return DOWN
    return OK


def _age_seconds(moment: datetime | None) -> int | None:
    return None if moment is None else max(0, int((timezone.now() - moment).total_seconds()))


def health_check() -> dict[str, Any]:
    """Each dependency `ok` or `down`, and how old the outbox's backlog and the last sweep are.

    `sweeps` is down when no periodic task finished within SWEEP_LATE_AFTER (beat or the
    workers are not running).
    """
    status: dict[str, Any] = {
        "database": database_status(),
        "broker": broker_status(),
        "cache": cache_status(),
    }
    oldest_pending = last_sweep = None
    if status["database"] == OK:
        try:
            oldest_pending = outbox_oldest_pending_at()
            last_sweep = PeriodicRun.objects.aggregate(last=Max("ran_at"))["last"]
        except Exception:  # e.g. tables not migrated yet: report the database as not ready
            logger.warning("health: outbox or sweep query failed", exc_info=True)
            status["database"] = DOWN
    late_after = settings.SWEEP_LATE_AFTER.total_seconds()
    since = last_sweep.timestamp() if last_sweep else _PROCESS_STARTED
    status["sweeps"] = OK if time.time() - since <= late_after else DOWN
    status["oldest_pending_notification_seconds"] = _age_seconds(oldest_pending)
    status["last_sweep_seconds"] = _age_seconds(last_sweep)
    return status


def healthy(status: dict[str, Any]) -> bool:
    return all(status[name] == OK for name in ("database", "broker", "cache", "sweeps"))
