import os
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from typing import NamedTuple

import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from accounts.roles import AGENTS, SUPERVISORS
from accounts.services import customer_ensure, staff_user_ensure
from domains.fake_opensrs import FakeOpenSRS
from domains.models import Domain
from tests.migrations import migrate_latest
from tests.tickets.resend_helpers import ANYMAIL_TEST, API_URL, TYPED, send_outbox
from tickets import services
from tickets.models import Notification, Ticket
from tickets.services import publishing

# The suite runs in this many processes at once, one per core of the machines it runs on (CI
# has two; more than the cores only makes each process slower). `-n 0`, `-p no:xdist` or
# `--pdb` run it in one; `-n N` chooses another count.
TEST_PROCESSES = 2


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Run on TEST_PROCESSES unless the command line says how many (see above)."""
    if (
        config.pluginmanager.hasplugin("xdist")
        and not hasattr(config, "workerinput")  # a process of a run already shared out
        and config.option.numprocesses is None
        and not config.option.usepdb
    ):
        config.option.numprocesses = TEST_PROCESSES
        # Tests marked xdist_group(name) run in one process, one after the other.
        config.option.dist = "loadgroup" if config.option.dist == "no" else config.option.dist


@pytest.fixture(scope="session", autouse=True)
def _worker_connections_closed(django_db_setup, django_db_blocker):
    """End the sessions of the in-process Celery workers' threads before the test database goes.

    Workers keep their connection between tasks (as in production); their threads are gone by
    now, but their sessions would hold the database open.
    """
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


class RedisUrls(NamedTuple):
    broker: str
    cache: str


@pytest.fixture(scope="session")
def redis_urls():
    """A real Redis's broker and cache databases: REDIS_URL's, or a private redis-server's.

    `make test` with nothing set has no shared Redis; where redis-server is installed this
    starts one of its own on a free loopback port, so Redis tests still run against a real one.
    """
    if os.environ.get("REDIS_URL"):
        yield RedisUrls(django_settings.CELERY_BROKER_URL, django_settings.CACHE_URL)
        return
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("neither REDIS_URL nor redis-server under CI")
        pytest.skip("no REDIS_URL and no redis-server on the PATH")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603 - our own argument list, the binary from PATH
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield RedisUrls(f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/15")
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(autouse=True)
def _test_overrides(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SITE_URL = "https://help.exabytes.example"
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost", "help.exabytes.example"]
    # Counts computed on every queue page (tests that check the cache set their own).
    settings.STAFF_QUEUE_COUNTS_CACHE_SECONDS = 0
    # Beat does not run here, and the suite outlives SWEEP_LATE_AFTER: readiness would call the
    # sweeps down in every test after the first five minutes. Tests of that rule set their own.
    settings.SWEEP_LATE_AFTER = timedelta(days=1)
    publishing._broker_down_until = 0.0  # a broker outage staged by one test ends with it
    cache.clear()
    yield
    cache.clear()
    # A request in another language leaves it active in this thread (LocaleMiddleware does
    # not undo it); the next test starts in the default language.
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def latest_schema_afterwards():
    """For a migration test (tests.migrations.migrate_to): every migration applied again after."""
    yield
    migrate_latest()


@pytest.fixture
def cache_unreachable(monkeypatch):
    """The cache's reads and writes fail as they do while Redis is down."""

    def unreachable(*args, **kwargs):
        raise redis.exceptions.ConnectionError("connection refused")

    for name in ("get", "set", "get_many", "add"):
        monkeypatch.setattr(caches["default"], name, unreachable)


@pytest.fixture
def alice(db):
    """A customer with a portal login."""
    return customer_ensure(
        email="alice@example.test",
        full_name="Alice Tan",
        password="alice-demo-pass",
        phone="+60312345678",
        address_line1="12 Jalan Ampang",
        city="Kuala Lumpur",
        postcode="50450",
        country="MY",
    )


@pytest.fixture
def bob(db):
    """Another customer: the outsider for Alice's tickets."""
    return customer_ensure(
        email="bob@example.test",
        full_name="Bob Lim",
        password="bob-demo-pass",
        is_reseller=True,
        reseller_newsletters=True,
        country="MY",
    )


@pytest.fixture
def agent(db):
    return staff_user_ensure(username="agent", password="agent-demo-pass", role=AGENTS)


@pytest.fixture
def supervisor(db):
    return staff_user_ensure(
        username="supervisor", password="supervisor-demo-pass", role=SUPERVISORS
    )


def _logged_in_client(user):
    """A client of its own: two of these fixtures in one test are two people, not one."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice):
    return _logged_in_client(alice.user)


@pytest.fixture
def agent_client(agent):
    return _logged_in_client(agent)


@pytest.fixture
def supervisor_client(supervisor):
    return _logged_in_client(supervisor)


@pytest.fixture
def fake_opensrs(settings, tmp_path):
    """The fake OpenSRS over real HTTP, with the settings pointing at it."""
    settings.EMAIL_BACKEND = ANYMAIL_TEST
    with FakeOpenSRS(username="u", key="k", calls_log=tmp_path / "calls.jsonl") as server:
        settings.OPENSRS_URL = server.url
        settings.OPENSRS_USERNAME = "u"
        settings.OPENSRS_KEY = "k"
        settings.OPENSRS_READ_TIMEOUT = 5
        settings.OPENSRS_RETRY_BACKOFF = 0
        yield server


@pytest.fixture
def alice_shop(alice):
    return Domain.objects.create(
        name="alice-shop.test",
        customer=alice,
        registrant_email="alice@example.test",
        registrant_email_status=Domain.EmailStatus.VALID,
    )


@pytest.fixture
def notice(fake_opensrs, alice_shop):
    """A resend done end to end: our notice to the registration address has been sent."""
    response = APIClient().post(
        API_URL, {"domain": "alice-shop.test", "contact_email": TYPED}, format="json"
    )
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    services.password_resend_process(ticket_id=ticket.pk)
    send_outbox()
    return Notification.objects.get(ticket=ticket, template="password_resend_notice")


@pytest.fixture
def stale_mail(db):
    return Domain.objects.create(
        name="stale-mail.test",
        registrant_email="carol@defunct.test",
        registrant_email_status=Domain.EmailStatus.BOUNCING,
    )


@pytest.fixture
def rate_window_start():
    """The clock moved back to just after the hour began, and running from there.

    Rate limits count in windows aligned to the clock (a minute, 15 minutes, an hour: each
    divides an hour), so a test that fills one and then expects a refusal would lose its count
    if a window ended while it ran; from the hour's first seconds none ends for a minute.
    """
    now = time.time()
    with time_machine.travel(now - now % 3600 + 1, tick=True):
        yield
