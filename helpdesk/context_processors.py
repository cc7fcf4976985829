import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest

from accounts.selectors import is_staff_member


def site(request: HttpRequest) -> dict[str, str]:
    """Company name and addresses for every template."""
    return {
        "COMPANY_NAME": settings.COMPANY_NAME,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        "BILLING_EMAIL": settings.BILLING_EMAIL,
        "SITE_URL": settings.SITE_URL,
    }


def login_kind(request: HttpRequest) -> dict[str, Callable[[], bool]]:
    """`staff_member`: whether the login works the staff pages (is_staff_member), for menus.

    Not the staff flag, which a customer's login may hold and which alone opens no staff page.
    Read only when a template asks (it calls it): a customer's login is answered from its
    flags and its customer, loaded with it; a staff member's from the permissions the staff
    pages have read already.
    """
    return {"staff_member": functools.partial(is_staff_member, getattr(request, "user", None))}
