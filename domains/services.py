"""Writes about domains: the local cache of registration records."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Customer
from accounts.selectors import email_canonical
from domains.lock_objects import domains_lock
from domains.models import Domain
from domains.opensrs import (
    CONTACTS_BATCH_MAX,
    DomainContacts,
    OpenSRSClient,
    OpenSRSTransientError,
    client_from_settings,
)
from domains.validators import normalize_domain_name


@transaction.atomic
def domain_ensure(
    *,
    name: str,
    customer: Customer | None,
    registrant_email: str,
    bouncing: bool = False,
    admin_email: str | None = None,
) -> Domain:
    """Create or refresh a domain's cached registration record (demo data, imports)."""
    normalized = normalize_domain_name(name)
    status = Domain.EmailStatus.BOUNCING if bouncing else Domain.EmailStatus.VALID
    domain, created = Domain.objects.get_or_create(
        name=normalized,
        defaults={
            "customer": customer,
            "registrant_email": registrant_email,
            "registrant_email_status": status,
            "admin_email": admin_email if admin_email is not None else registrant_email,
            "synced_at": timezone.now(),
        },
    )
    if not created:
        domain.customer = customer
        domain.registrant_email = registrant_email
        domain.registrant_email_status = status
        domain.admin_email = admin_email if admin_email is not None else registrant_email
        domain.save(
            update_fields=[
                "customer",
                "registrant_email",
                "registrant_email_status",
                "admin_email",
                "updated_at",
            ]
        )
    return domain


# --- registration contacts read from OpenSRS ----------------------------------------------------


@dataclass
class ContactsRefresh:
    """What one run of the contacts refresh did; `next_after_pk` is set when domains remain."""

    read: int = 0
    changed: int = 0
    not_in_account: int = 0
    calls: int = 0
    next_after_pk: int | None = None


class ContactsRefreshRetry(Exception):
    """OpenSRS could not be read (after the client's own retries): go on from `after_pk` later."""

    def __init__(self, after_pk: int, error: str) -> None:
        super().__init__(error)
        self.after_pk = after_pk


def _contacts_store(domain: Domain, contacts: DomainContacts, now: datetime) -> bool:
    """Write what OpenSRS holds to the locked row; True when an address changed."""
    owner, admin = contacts.email("owner")[:254], contacts.email("admin")[:254]
    old = {"owner": domain.registrant_email, "admin": domain.admin_email}
    changed = email_canonical(old["owner"]) != email_canonical(owner) or email_canonical(
        old["admin"]
    ) != email_canonical(admin)
    if email_canonical(old["owner"]) != email_canonical(owner):
        # A new address has not bounced yet; an unchanged bouncing one is still dead.
        domain.registrant_email_status = Domain.EmailStatus.UNKNOWN
    domain.registrant_email = owner
    domain.admin_email = admin
    domain.registrant_change = contacts.status[:32]
    domain.synced_at = now
    domain.save(
        update_fields=[
            "registrant_email",
            "registrant_email_status",
            "admin_email",
            "registrant_change",
            "synced_at",
            "updated_at",
        ]
    )
    if changed:
        from tickets.audit import audit_record

        audit_record(
            actor="worker",
            action="domain.contacts_changed",
            customer=domain.customer,
            details={
                "domain": domain.name,
                "owner": {"old": old["owner"], "new": owner},
                "admin": {"old": old["admin"], "new": admin},
                "registrant_change": domain.registrant_change,
            },
        )
    return changed


def domain_contacts_refresh(
    *,
    after_pk: int = 0,
    domain_ids: list[int] | None = None,
    max_batches: int | None = None,
    client: OpenSRSClient | None = None,
) -> ContactsRefresh:
    """Read the owner and admin contacts of our domains from OpenSRS, in pk order and batches.

    One GET_DOMAINS_CONTACTS call per OPENSRS_CONTACTS_BATCH domains (at most 100), each call
    through the client's throttle and retries; stops after `max_batches` calls and says where to
    go on. Idempotent: it only stores what OpenSRS says now.
    """
    client = client or client_from_settings()
    size = max(1, min(settings.OPENSRS_CONTACTS_BATCH, CONTACTS_BATCH_MAX))
    result = ContactsRefresh()
    cursor = after_pk
    while max_batches is None or result.calls < max_batches:
        rows = Domain.objects.filter(pk__gt=cursor).order_by("pk")
        if domain_ids is not None:
            rows = rows.filter(pk__in=domain_ids)
        batch = list(rows.values_list("pk", "name")[:size])
        if not batch:
            return result
        try:
            found = client.get_domains_contacts([name for _, name in batch])
        except OpenSRSTransientError as exc:
            raise ContactsRefreshRetry(cursor, str(exc)) from exc
        result.calls += 1
        now = timezone.now()
        with transaction.atomic():
            for domain in domains_lock(pks=[pk for pk, _ in batch]):
                contacts = found.get(domain.name)
                if contacts is None:
                    result.not_in_account += 1
                    continue
                result.read += 1
                result.changed += _contacts_store(domain, contacts, now)
        cursor = batch[-1][0]
    result.next_after_pk = cursor
    return result


def domain_contacts_refresh_queue(*, domain_ids: list[int]) -> None:
    """Refresh these domains' contacts in the worker once the caller's transaction commits."""
    from domains.tasks import contacts_refresh as contacts_refresh_task

    ids = sorted(set(domain_ids))
    transaction.on_commit(lambda: contacts_refresh_task.delay(domain_ids=ids))
