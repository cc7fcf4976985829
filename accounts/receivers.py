"""Adapters from model signals to services: the one place every save of a row passes.

A login let back in is counted however it was saved (the admin, a service, a shell or a data
fix), as its device cookies depend on it (accounts.services.login_reactivated), and a login
turned off, made staff, renamed or deleted, a role given or taken, or a permission given to a
login or a role, lets the staff list kept in the cache go. The receivers only pass the row on;
what to do is the services' to say. A queryset `update()` or `delete()` sends no signal: no
path of ours makes a login or an account able to sign in again that way, and the staff list
kept is then seen as the rows are within its 60 s (assignment checks the database anyway).
"""

from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models.signals import m2m_changed, post_delete, pre_save
from django.dispatch import receiver

from accounts.models import Customer
from accounts.services import customer_saving, login_deleted, login_saving, staff_list_changed


@receiver(pre_save, sender=User, dispatch_uid="accounts.login_saving")
def _login_saving(sender: type[User], instance: User, raw: bool, **kwargs: Any) -> None:
    if not raw:  # a fixture being loaded is no login let back in
        login_saving(user=instance, update_fields=kwargs.get("update_fields"))


@receiver(pre_save, sender=Customer, dispatch_uid="accounts.customer_saving")
def _customer_saving(sender: type[Customer], instance: Customer, raw: bool, **kwargs: Any) -> None:
    if not raw:
        customer_saving(customer=instance, update_fields=kwargs.get("update_fields"))


@receiver(post_delete, sender=User, dispatch_uid="accounts.login_deleted")
def _login_deleted(sender: type[User], instance: User, **kwargs: Any) -> None:
    login_deleted(user=instance)


@receiver(post_delete, sender=Group, dispatch_uid="accounts.role_deleted")
def _role_deleted(sender: type[Group], instance: Group, **kwargs: Any) -> None:
    staff_list_changed()


# A login's roles and permissions, and a role's permissions: what the staff list is read by.
_ACCESS_LINKS = (
    User.groups.through,
    User.user_permissions.through,
    Group.permissions.through,
)
_LINKS_CHANGED = frozenset({"post_add", "post_remove", "post_clear"})


def _access_links_changed(sender: type, action: str, **kwargs: Any) -> None:
    if action in _LINKS_CHANGED:
        staff_list_changed()


for _through in _ACCESS_LINKS:
    m2m_changed.connect(
        _access_links_changed, sender=_through, dispatch_uid=f"accounts.access:{_through.__name__}"
    )
