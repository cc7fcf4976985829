"""Markers the tests share."""

import pytest
from django.db import connection


def postgresql_only(what: str) -> pytest.MarkDecorator:
    """Skip where the database is SQLite (development only): `what` needs PostgreSQL.

    CI runs the suite on PostgreSQL, where none of these is skipped.
    """
    return pytest.mark.skipif(connection.vendor != "postgresql", reason=f"PostgreSQL's own: {what}")
