"""How a login's permissions are read: Django's model backend, in one query instead of two."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission


class OneQueryModelBackend(ModelBackend):
    """Django's ModelBackend, reading a user's own and group permissions in one UNION query.

    Every staff page asks `has_perm` (the supervisor's approvals tab, the audit log link), and
    Django's backend reads the user's permissions and their groups' as two queries. Both are
    kept on the user object for the rest of the request, as Django keeps them.
    """

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        cached: set[str] | None = getattr(user_obj, "_helpdesk_permissions", None)
        if cached is None:
            names = ("content_type__app_label", "codename")
            if user_obj.is_superuser:
                rows = Permission.objects.values_list(*names)
            else:
                # No ORDER BY: Permission's default ordering is not allowed inside a UNION.
                own = Permission.objects.filter(user=user_obj).order_by().values_list(*names)
                groups = Permission.objects.filter(group__user=user_obj).order_by()
                rows = own.union(groups.values_list(*names))
            cached = {f"{app_label}.{codename}" for app_label, codename in rows}
            user_obj._helpdesk_permissions = cached
        return cached
