"""Adapters from model signals to services: the one place every save of a row passes.

A login let back in is counted however it was saved (the admin, a service, a shell or a data
fix), as its device cookies depend on it (accounts.services.login_reactivated), and a login
turned off, made staff or renamed lets the staff list kept in the cache go. The receivers
only pass the row on; what to do is the services' to say. A queryset `update()` sends no
signal: no path of ours makes a login or an account able to sign in again that way.
"""

from typing import Any

from django.contrib.auth.models import User
from django.db.models.signals import pre_save
from django.dispatch import receiver

from accounts.models import Customer
from accounts.services import customer_saving, login_saving


@receiver(pre_save, sender=User, dispatch_uid="accounts.login_saving")
def _login_saving(sender: type[User], instance: User, raw: bool, **kwargs: Any) -> None:
    if not raw:  # a fixture being loaded is no login let back in
        login_saving(user=instance, update_fields=kwargs.get("update_fields"))


@receiver(pre_save, sender=Customer, dispatch_uid="accounts.customer_saving")
def _customer_saving(sender: type[Customer], instance: Customer, raw: bool, **kwargs: Any) -> None:
    if not raw:
        customer_saving(customer=instance, update_fields=kwargs.get("update_fields"))
