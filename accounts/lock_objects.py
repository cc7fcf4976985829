"""Row locks on logins, for the accounts and tickets services."""

from django.contrib.auth.models import User


def user_lock(*, pk: int) -> User:
    """Lock one login row; callers holding a ticket and its customer take it after them."""
    return User.objects.select_for_update(no_key=True).get(pk=pk)


def user_limits_lock(*, user: User) -> None:
    """Lock a login's row so what it may have only so many of is counted one request at a time."""
    User.objects.select_for_update(no_key=True).filter(pk=user.pk).first()
