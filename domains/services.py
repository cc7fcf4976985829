"""Writes about domains: the local cache of registration records."""

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer
from domains.models import Domain
from domains.validators import normalize_domain_name


@transaction.atomic
def domain_ensure(
    *, name: str, customer: Customer | None, registrant_email: str, bouncing: bool = False
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
            "synced_at": timezone.now(),
        },
    )
    if not created:
        domain.customer = customer
        domain.registrant_email = registrant_email
        domain.registrant_email_status = status
        domain.save(
            update_fields=["customer", "registrant_email", "registrant_email_status", "updated_at"]
        )
    return domain
