"""Fixtures of the login tests: a staff login, and a login ceiling low enough to fill."""

import pytest
from django.contrib.auth.models import User

ROOT_PASSWORD = "root-secret-pass"


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@exabytes.example", ROOT_PASSWORD)


@pytest.fixture
def limits(settings, rate_window_start):
    """A ceiling of ten failures from every client (the default is 100), to fill it quickly."""
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_username_all_clients": (10, 900),
    }
    return settings.RATE_LIMITS
