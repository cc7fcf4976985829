"""Row locks on domains, for the domains services."""

from domains.models import Domain


def domains_lock(*, pks: list[int]) -> list[Domain]:
    """Lock these domains with their customers loaded, in pk order like every lock on domains."""
    return list(
        Domain.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk__in=pks)
        .select_related("customer")
        .order_by("pk")
    )
