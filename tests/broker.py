"""Celery's broker out of reach, for tests of what survives a broker outage."""

from collections.abc import Iterator
from contextlib import contextmanager

from helpdesk.celery import app as celery_app


@contextmanager
def broker_unreachable() -> Iterator[None]:
    """Point publishing at a port where no broker listens, then restore it."""
    conf = celery_app.conf
    saved = (
        conf.broker_url,
        conf.broker_write_url,
        conf.broker_transport,
        conf.broker_transport_options,
    )

    def reset_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    conf.broker_url = conf.broker_write_url = "redis://127.0.0.1:9/0"
    conf.broker_transport = None  # the embedded broker's transport would win over the URL
    conf.broker_transport_options = {}
    reset_pools()
    try:
        yield
    finally:
        (
            conf.broker_url,
            conf.broker_write_url,
            conf.broker_transport,
            conf.broker_transport_options,
        ) = saved
        reset_pools()
