"""Celery tasks of the domains app: each loads ids, calls one service, and returns."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)

# Retries of one refresh run while OpenSRS cannot be read; the next daily run starts over.
CONTACTS_REFRESH_MAX_RETRIES = 8


@shared_task(bind=True, name="domains.contacts_refresh", acks_late=True, max_retries=None)
def contacts_refresh(self, *, after_pk: int = 0, domain_ids: list[int] | None = None) -> int:
    """Read registration contacts from OpenSRS, a bounded number of batches per run.

    Idempotent: it stores only what OpenSRS says now. A run that has domains left queues the
    next one from its cursor; one that could not reach OpenSRS retries from where it stopped,
    backing off, then leaves the rest to the next daily run.
    """
    from django.conf import settings

    from domains.services import ContactsRefreshRetry, domain_contacts_refresh

    try:
        result = domain_contacts_refresh(
            after_pk=after_pk,
            domain_ids=domain_ids,
            max_batches=settings.OPENSRS_CONTACTS_BATCHES_PER_TASK,
        )
    except ContactsRefreshRetry as exc:
        if self.request.retries >= CONTACTS_REFRESH_MAX_RETRIES:
            logger.warning("contacts refresh gave up after domain pk %s: %s", exc.after_pk, exc)
            return 0
        raise self.retry(
            exc=exc,
            countdown=min(3600, 60 * 2**self.request.retries),
            kwargs={"after_pk": exc.after_pk, "domain_ids": domain_ids},
        ) from exc
    if result.next_after_pk is not None:
        contacts_refresh.apply_async(
            kwargs={"after_pk": result.next_after_pk, "domain_ids": domain_ids}
        )
    return result.read
