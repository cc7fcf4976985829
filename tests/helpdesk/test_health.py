"""Liveness (/healthz) and readiness (/api/v1/health/): what each looks at, and who may ask."""

import logging
import re
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import Client, override_settings
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from gunicorn.config import Config

from helpdesk.gunicorn_logging import AccessLogWithoutProbes
from helpdesk.models import PeriodicRun
from helpdesk.observability import token_redacted
from tickets.models import Notification
from tickets.tasks import notifications_sweep

READY = "/api/v1/health/"
# A Redis cache where none listens (restored before the fixtures clear the cache).
NO_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
    }
}


def test_healthz_takes_a_thousand_requests_a_minute_from_one_client_without_the_database(
    settings, caplog
):
    # No `db` fixture: any query would fail the test. The cache points nowhere.
    settings.RATE_LIMITS = dict.fromkeys(settings.RATE_LIMITS, (1, 60))
    client = Client(REMOTE_ADDR="203.0.113.7")
    started = time.monotonic()

    with override_settings(CACHES=NO_CACHE), caplog.at_level(logging.INFO):
        statuses = [client.get("/healthz").status_code for _ in range(1000)]

    assert statuses == [200] * 1000
    assert time.monotonic() - started < 60
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_healthz_answers_a_probe_by_address_over_plain_http(settings):
    settings.ALLOWED_HOSTS = ["help.exabytes.example"]
    settings.SECURE_SSL_REDIRECT = True

    response = Client().get("/healthz", HTTP_HOST="10.0.3.17:8000")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Cache-Control"] == "no-store"


def test_gunicorn_access_log_leaves_out_the_liveness_probe(caplog):
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLogWithoutProbes(config)
    logger.access_log.propagate = True
    response = SimpleNamespace(status="200 OK", headers=[], sent=3, response_length=3)
    request = SimpleNamespace(headers=[])
    environ = {
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "RAW_URI": "/",
    }

    with caplog.at_level(logging.INFO, logger="gunicorn.access"):
        logger.access(
            response,
            request,
            {**environ, "PATH_INFO": "/healthz", "RAW_URI": "/healthz"},
            timedelta(0),
        )
        logger.access(
            response, request, {**environ, "PATH_INFO": "/my/", "RAW_URI": "/my/"}, timedelta(0)
        )

    logged = [r.getMessage() for r in caplog.records if r.name == "gunicorn.access"]
    assert len(logged) == 1
    assert "/my/" in logged[0]


@pytest.mark.parametrize(
    ("path", "logged_as"),
    [
        ("/verify/SECRETtoken_1/", "/verify/[token]/"),
        ("/not-me/SECRETtoken_1/", "/not-me/[token]/"),
        ("/track/SECRETtoken_1/reply/", "/track/[token]/reply/"),
        ("/track/SECRETtoken_1/attachments/7/", "/track/[token]/attachments/7/"),
        ("/unsubscribe/SECRETtoken_1:1vX:sig/", "/unsubscribe/[token]/"),
        ("/satisfaction/SECRETtoken_1/yes/", "/satisfaction/[token]/yes/"),
        ("/requests/registration/SECRETtoken_1/", "/requests/registration/[token]/"),
        ("/accounts/password-reset/MQ/SECRETtoken_1/", "/accounts/password-reset/MQ/[token]/"),
        ("/verify/done/", "/verify/done/"),
        (
            "/accounts/password-reset/MQ/set-password/",
            "/accounts/password-reset/MQ/set-password/",
        ),
        ("/accounts/password-reset/done/", "/accounts/password-reset/done/"),
        ("/accounts/password-reset/sent/", "/accounts/password-reset/sent/"),
    ],
)
def test_gunicorn_access_log_never_writes_a_links_token(caplog, path, logged_as):
    # A token in a path is a live link: whoever reads the log could confirm a request, freeze
    # an account or reset a password with it.
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", '"%(r)s" %(U)s')
    logger = AccessLogWithoutProbes(config)
    logger.access_log.propagate = True
    response = SimpleNamespace(status="200 OK", headers=[], sent=3, response_length=3)
    environ = {
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "RAW_URI": path + "?x=1",
        "PATH_INFO": path,
        "QUERY_STRING": "x=1",
    }

    with caplog.at_level(logging.INFO, logger="gunicorn.access"):
        logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(0))

    (line,) = [r.getMessage() for r in caplog.records if r.name == "gunicorn.access"]
    assert "SECRET" not in line
    assert line == f'"GET {logged_as}?x=1 HTTP/1.1" {logged_as}'


def test_gunicorn_access_log_never_writes_a_links_token_from_the_referer():
    # A page of a link (the status page's stylesheet, its reply form) is asked for with the
    # link's address as Referer, which gunicorn's default format writes. Read from gunicorn's
    # own logger: in production its lines reach no handler of LOGGING.
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLogWithoutProbes(config)
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.access_log.addHandler(capture)
    response = SimpleNamespace(status="200 OK", headers=[], sent=3, response_length=3)
    environ = {
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "RAW_URI": "/static/site.css",
        "PATH_INFO": "/static/site.css",
        "HTTP_REFERER": "https://help.exabytes.example/track/SECRETtoken_1/",
    }

    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(0))

    (line,) = lines
    assert "SECRET" not in line
    assert '"https://help.exabytes.example/track/[token]/"' in line
    assert "/static/site.css" in line


def _routes_with_a_token(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes_with_a_token(pattern.url_patterns, prefix + str(pattern.pattern))
        elif "token" in pattern.pattern.converters:
            yield prefix + str(pattern.pattern)


# A value for each other part of such an address.
_OTHER_PARTS = {"uidb64": "MQ", "attachment_id": "7", "answer": "yes"}


def test_every_address_that_holds_a_token_is_logged_without_it():
    # Taken from the URLconf, so a new mailed link, or one moved, cannot be missed.
    routes = sorted(set(_routes_with_a_token(get_resolver().url_patterns)))
    assert len(routes) >= 8

    for route in routes:
        path = "/" + re.sub(
            r"<(?:\w+:)?(\w+)>",
            lambda m: "SECRETtoken_1" if m[1] == "token" else _OTHER_PARTS[m[1]],
            route,
        )
        redacted = token_redacted(path)
        assert "SECRET" not in redacted, route
        assert redacted == path.replace("SECRETtoken_1", "[token]"), route


def test_readiness_names_the_cache_when_it_is_down(db):
    with override_settings(CACHES=NO_CACHE):
        response = Client().get(READY)

    assert response.status_code == 503
    assert response.json()["cache"] == "down"
    assert response.json()["database"] == "ok"


def test_readiness_reports_the_oldest_pending_notification_and_the_last_sweep(db):
    notification = Notification.objects.create(
        template="ticket_received", recipient="alice@example.test", idempotency_key="health-1"
    )
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(seconds=120)
    )
    PeriodicRun.objects.create(
        task="tickets.notifications_sweep", ran_at=timezone.now() - timedelta(seconds=30)
    )

    body = Client().get(READY).json()

    assert 120 <= body["oldest_pending_notification_seconds"] < 130
    assert 30 <= body["last_sweep_seconds"] < 40
    assert body["sweeps"] == "ok"


def test_readiness_is_a_503_when_no_sweep_ran_lately(db, settings):
    settings.SWEEP_LATE_AFTER = timedelta(minutes=5)
    PeriodicRun.objects.create(
        task="tickets.notifications_sweep", ran_at=timezone.now() - timedelta(minutes=6)
    )

    response = Client().get(READY)

    assert response.status_code == 503
    assert response.json()["sweeps"] == "down"
    assert response.json()["last_sweep_seconds"] >= 360


def test_readiness_is_a_503_when_no_sweep_ran_since_the_process_started_long_ago(db, settings):
    # given no periodic run recorded at all, in a process older than SWEEP_LATE_AFTER
    settings.SWEEP_LATE_AFTER = timedelta(0)

    response = Client().get(READY)

    assert response.status_code == 503
    assert response.json()["sweeps"] == "down"
    assert response.json()["last_sweep_seconds"] is None


def test_a_finished_sweep_is_recorded(db):
    before = timezone.now()

    notifications_sweep.apply()

    run = PeriodicRun.objects.get(task="tickets.notifications_sweep")
    assert run.ran_at >= before


def test_readiness_is_not_throttled_for_loopback_and_monitoring_addresses(db, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_per_client": (1, 60)}
    settings.HEALTH_UNTHROTTLED_IPS = ["10.0.8.0/24", "192.0.2.10"]

    for address in ("127.0.0.1", "::1", "10.0.8.77", "192.0.2.10"):
        client = Client(REMOTE_ADDR=address)
        assert [client.get(READY).status_code for _ in range(5)] == [200] * 5, address
    stranger = Client(REMOTE_ADDR="198.51.100.4")
    assert [stranger.get(READY).status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("method", ["get", "head"])
def test_healthz_carries_the_security_headers_every_page_does(db, method):
    page = Client().get("/")
    response = getattr(Client(), method)("/healthz")

    assert response.status_code == 200
    for header in (
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Content-Security-Policy",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    ):
        assert response.get(header) == page[header], header
