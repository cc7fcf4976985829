"""Reads about customers and staff."""

import unicodedata
from typing import TypeGuard, cast

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import ApiToken, Customer
from domains.validators import domain_compare_form


def email_canonical(email: str) -> str:
    """Compare addresses after Unicode normalisation and case folding; never send to the result."""
    local, at, domain = email.strip().rpartition("@")
    if not at:
        return unicodedata.normalize("NFKC", domain).casefold()
    # The domain by IDNA 2008, not case folding, which makes `faß.de` into another domain.
    return f"{unicodedata.normalize('NFKC', local).casefold()}@{domain_compare_form(domain)}"


def customer_get_by_email(*, email: str) -> Customer | None:
    """The customer whose email on record matches, compared canonically."""
    canonical = email_canonical(email)
    if not canonical or "@" not in canonical:
        return None
    for customer in Customer.objects.filter(email__iexact=canonical)[:2]:
        # iexact is ASCII-only on some backends: confirm with the same canonical form.
        if email_canonical(customer.email) == canonical:
            return customer
    return None


def customer_for_user(user: User | AnonymousUser | None) -> Customer | None:
    """The customer record a portal login belongs to, if any."""
    if user is None or not user.is_authenticated or user.is_staff:
        return None
    try:
        return user.customer
    except Customer.DoesNotExist:
        return None


def is_staff_member(user: User | AnonymousUser | None) -> TypeGuard[User]:
    """An active login in a staff role: the staff flag alone only lets a login into the admin."""
    return bool(
        user
        and user.is_authenticated
        and user.is_staff
        and user.is_active
        and user.has_perm("tickets.work_ticket")
    )


def is_supervisor(user: User | AnonymousUser | None) -> TypeGuard[User]:
    return is_staff_member(user) and user.has_perm("tickets.approve_sensitive_change")


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's API tokens that still work, newest first (never their keys: none is kept)."""
    now = timezone.now()
    tokens = ApiToken.objects.filter(user=user).filter(Q(expiry__isnull=True) | Q(expiry__gt=now))
    return cast("QuerySet[ApiToken]", tokens)  # knox's manager has no type hints
