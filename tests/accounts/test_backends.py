"""A login's permissions: the same answers as Django's model backend, read in one query."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AGENT_PERMISSIONS, SUPERVISOR_PERMISSIONS

pytestmark = pytest.mark.django_db


def _fresh(user):
    return get_user_model().objects.get(pk=user.pk)


def test_a_supervisor_has_the_groups_permissions_in_one_query(supervisor):
    user = _fresh(supervisor)
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("tickets.approve_sensitive_change")
        assert user.has_perm("tickets.view_audit_log")
        assert not user.has_perm("tickets.delete_ticket")
    assert len(queries) == 1
    assert user.get_all_permissions() == set(SUPERVISOR_PERMISSIONS)


def test_an_agent_lacks_what_only_supervisors_have(agent):
    user = _fresh(agent)
    assert user.has_perm("tickets.work_ticket")
    assert not user.has_perm("tickets.approve_sensitive_change")
    assert user.get_all_permissions() == set(AGENT_PERMISSIONS)


def test_own_and_group_permissions_add_up_as_djangos_backend_says(agent):
    # one of its own, and one it also has through its group
    agent.user_permissions.add(Permission.objects.get(codename="export_customer"))
    agent.user_permissions.add(Permission.objects.get(codename="work_ticket"))
    user = _fresh(agent)
    assert user.get_all_permissions() == {*AGENT_PERMISSIONS, "tickets.export_customer"}
    assert user.get_all_permissions() == ModelBackend().get_all_permissions(_fresh(agent))


def test_an_inactive_user_has_none_and_a_superuser_has_all(agent):
    agent.is_active = False
    agent.save(update_fields=["is_active"])
    assert _fresh(agent).get_all_permissions() == set()
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 20)
    assert _fresh(root).get_all_permissions() == {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.select_related("content_type")
    }
