"""The Django admin's site: only staff logins that are no customer's get in.

Django lets in any active login with the staff flag. A customer's portal login never holds
one (accounts.services.login_roles_refusal), but one given it before that rule, or in the
database by hand, would still reach the admin's pages; `is_staff_login` refuses it.
"""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


class StaffAdminSite(AdminSite):
    """Django's admin site, entered by `accounts.selectors.is_staff_login` only."""

    def has_permission(self, request: HttpRequest) -> bool:
        # Imported here: this module is loaded with the app configs, before the models.
        from accounts.selectors import is_staff_login

        return is_staff_login(request.user)


class StaffAdminConfig(AdminConfig):
    """Django's admin app with `StaffAdminSite` as `admin.site`."""

    default_site = "helpdesk.admin_site.StaffAdminSite"
