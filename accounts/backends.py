"""How a login's permissions are read: Django's model backend, in one query instead of two."""

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.http import HttpRequest

from accounts.login_devices import login_device_current
from accounts.selectors import customer_login_allowed
from helpdesk.joined_rows import joined_row_get
from helpdesk.ratelimit import login_device_counts, login_device_revoke

# A login's own permissions and its groups', as "app_label", "codename" rows. Written out: the
# ORM took 0.5 ms of CPU to build its UNION on every staff page, against 0.07 ms to send this;
# and PostgreSQL plans the ids' UNION in an IN in 0.10 ms, the UNION of two joined rows in 0.16
# (hd_bench_s_1m, 2026-12-06).
PERMISSIONS_OF_USER_SQL = """
    SELECT ct.app_label, p.codename
    FROM auth_permission p
    JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE p.id IN (
        SELECT permission_id FROM auth_user_user_permissions WHERE user_id = %s
        UNION
        SELECT gp.permission_id
        FROM auth_group_permissions gp
        JOIN auth_user_groups ug ON ug.group_id = gp.group_id
        WHERE ug.user_id = %s
    )
"""


class OneQueryModelBackend(ModelBackend):
    """Django's ModelBackend, reading a user's own and group permissions in one query.

    Every staff page asks `has_perm` (the supervisor's approvals tab, the audit log link), and
    Django's backend reads the user's permissions and their groups' as two queries. Both are
    kept on the user object for the rest of the request, as Django keeps them.

    Every sign-in (the portal and admin login forms, the API's token for a password) and every
    request of a session passes `user_can_authenticate`: a login whose customer account is
    suspended or closed is refused as a wrong password is, and its session is signed out.
    Every one passes `authenticate` too: there a failed attempt carrying a device cookie issued
    under another password or state of the login than today's revokes it (accounts.login_devices).
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and request is not None and username:
            cookie = request.COOKIES.get(settings.LOGIN_DEVICE_COOKIE_NAME)
            if login_device_counts(username=username, device_cookie=cookie):
                # Read again (the failure above does not say why), with the customer the
                # version reads; a login deleted since makes every cookie of its name outdated.
                login = (
                    User.objects.select_related("customer", "login_state")
                    .filter(username=username)
                    .first()
                )
                if login is None or not login_device_current(cookie, user=login):
                    login_device_revoke(username=username, device_cookie=cookie)
        return user

    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and customer_login_allowed(user)

    def get_user(self, user_id: Any) -> User | None:
        # With its customer record, in the one query Django makes: the check above reads it,
        # and a portal page finds it loaded (one query fewer); and with its state, which the
        # device cookie's version reads (accounts.login_devices). The join costs a staff request
        # 0.3 ms (0.59 against 0.34 ms on hd_bench_s; an EXISTS for the status, 0.68 ms).
        # The row of select_related("customer", "login_state") by SQL made once: 2,570 Python
        # calls a staff request as a queryset, 350 this way (hd_bench, 2026-12-08).
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        user = joined_row_get(User, ("customer", "login_state"), where="t.id = %s", params=[pk])
        if user is None:
            return None
        return user if self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        cached: set[str] | None = getattr(user_obj, "_helpdesk_permissions", None)
        if cached is None:
            if user_obj.is_superuser:
                rows = list(Permission.objects.values_list("content_type__app_label", "codename"))
            else:
                with connection.cursor() as cursor:
                    cursor.execute(PERMISSIONS_OF_USER_SQL, [user_obj.pk, user_obj.pk])
                    rows = cursor.fetchall()
            cached = {f"{app_label}.{codename}" for app_label, codename in rows}
            user_obj._helpdesk_permissions = cached
        return cached
