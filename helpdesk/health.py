"""Liveness of what the help desk depends on: the database and the Celery broker."""

import logging

from django.db import connection

from helpdesk.celery import app as celery_app

logger = logging.getLogger(__name__)

OK = "ok"
DOWN = "down"
STATUSES = (OK, DOWN)
BROKER_TIMEOUT_SECONDS = 2.0


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


def health_check() -> dict[str, str]:
    """`{"database": "ok"|"down", "broker": "ok"|"down"}`."""
    return {"database": database_status(), "broker": broker_status()}
