"""`migrate` and `check --database` warn when PostgreSQL's autovacuum is off."""

import pytest
from django.db import connection

from helpdesk.checks import autovacuum_on

pytestmark = pytest.mark.django_db


def _server_autovacuum() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0]


def test_the_check_warns_exactly_when_the_servers_autovacuum_is_off():
    # given the database the suite runs on
    warnings = autovacuum_on(databases=["default"])

    # then a warning names it when (and only when) PostgreSQL runs without autovacuum
    if connection.vendor != "postgresql":
        assert warnings == []
        return
    off = _server_autovacuum() != "on"
    assert [w.id for w in warnings] == (["helpdesk.W001"] if off else [])
    if off:
        assert "autovacuum is off on database 'default'" in warnings[0].msg


def test_the_check_reads_no_database_unless_asked():
    # `check` without --database, as at every start: no query, no warning
    assert autovacuum_on(databases=None) == []
