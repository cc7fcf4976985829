"""Writes about customers and staff."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import Customer
from accounts.roles import ROLE_PERMISSIONS


def roles_ensure() -> dict[str, Group]:
    """Create the staff groups with their permissions (idempotent)."""
    groups = {}
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)
        groups[name] = group
    return groups


@transaction.atomic
def staff_user_ensure(*, username: str, password: str, role: str | None, superuser: bool = False):
    """Create or refresh a staff login in a role."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"is_staff": True})
    user.is_staff = True
    user.is_superuser = superuser
    user.set_password(password)
    user.save()
    if role:
        user.groups.set([roles_ensure()[role]])
    return user


@transaction.atomic
def customer_ensure(
    *, email: str, full_name: str, password: str | None = None, **fields
) -> Customer:
    """Create or refresh a customer (and a portal login when a password is given)."""
    customer = Customer.objects.filter(email__iexact=email).first()
    if customer is None:
        customer = Customer(email=email, full_name=full_name, **fields)
        customer.full_clean()
        customer.save()
    if password:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=email, defaults={"email": email})
        user.email = email
        user.is_staff = False
        user.set_password(password)
        user.save()
        if customer.user_id != user.pk:
            customer.user = user
            customer.save(update_fields=["user", "updated_at"])
    return customer
