import logging
import os
import socket
import subprocess
import sys
import threading

import pytest
import time_machine
from django.core.cache import caches
from pytest_socket import SocketConnectBlockedError

from helpdesk import ratelimit
from helpdesk.exceptions import RateLimited
from helpdesk.ratelimit import rate_limit_hit, rate_limit_hits
from tickets.redaction import REDACTED, redact_card_numbers


@pytest.mark.usefixtures("rate_window_start")
def test_rate_limit_allows_up_to_the_limit_then_refuses(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "resend_per_domain": (3, 900)}
    for _ in range(3):
        rate_limit_hit(scope="resend_per_domain", key="alice-shop.test")

    with pytest.raises(RateLimited) as info:
        rate_limit_hit(scope="resend_per_domain", key="ALICE-SHOP.test")

    assert 1 <= info.value.retry_after <= 900
    rate_limit_hit(scope="resend_per_domain", key="bob-reseller.test")  # other targets unaffected


@pytest.fixture(params=["locmem", "redis"])
def counter_cache(request, settings):
    """The limiter on each cache backend it supports."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_urls").cache
        backend = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    else:
        backend = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    settings.CACHES = {"default": {**backend, "KEY_PREFIX": "limiter-test"}}
    caches["default"].clear()
    yield caches["default"]
    caches["default"].clear()


@pytest.mark.usefixtures("rate_window_start")
def test_concurrent_hits_are_counted_exactly_and_the_counter_expires(settings, counter_cache):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (10, 60)}
    refused = []

    def hit() -> None:
        try:
            rate_limit_hit(scope="request_per_client", key="198.51.100.7")
        except RateLimited:
            refused.append(1)

    threads = [threading.Thread(target=hit) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(refused) == 15  # exactly the limit got through
    if hasattr(counter_cache, "_cache") and hasattr(counter_cache._cache, "get_client"):
        client = counter_cache._cache.get_client(write=False)
        keys = client.keys("limiter-test:*rl:request_per_client:*")
        assert len(keys) == 1
        assert 0 < client.ttl(keys[0]) <= 65  # the window plus a little, never forever


@time_machine.travel(1_800_000_100, tick=False)  # 100 s into a 900 s window, not near its end
@pytest.mark.usefixtures("rate_window_start")
def test_several_counters_are_counted_together_and_any_one_refuses(settings, counter_cache):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "request_per_client": (3, 60),
        "resend_per_domain": (1, 900),
    }
    rate_limit_hits(("request_per_client", "198.51.100.7"), ("resend_per_domain", "a.test"))

    # the domain is past its limit, the client is not: refused, and the client still counted
    with pytest.raises(RateLimited) as info:
        rate_limit_hits(("request_per_client", "198.51.100.7"), ("resend_per_domain", "a.test"))
    assert 60 < info.value.retry_after <= 900  # the longer wait of the refusing counter

    rate_limit_hits(("request_per_client", "198.51.100.7"), ("resend_per_domain", "b.test"))
    with pytest.raises(RateLimited):
        rate_limit_hit(scope="request_per_client", key="198.51.100.7")  # its 4th request


@pytest.mark.parametrize(
    "text",
    [
        "my card 4111 1111 1111 1111 thanks",
        "4111-1111-1111-1111",
        "5500005555555559",
        "x378282246310005y",
        "ref-4111111111111111",
        "4111111111111111.5",
        "4111111111111111@example.test",
        "card 4111 1111 1111 1111. 5 more",
    ],
)
def test_card_numbers_are_redacted(text):
    clean, found = redact_card_numbers(text)

    assert found
    assert REDACTED in clean
    assert "1111 1111" not in clean
    assert "5555555559" not in clean


@pytest.mark.parametrize(
    "text",
    [
        "call +60 12-345 6789",
        "order 1234567890123",
        "HD-7K3M9Q2X",
        "ref-1234567890123",
        "order ORD-2024-1234567890123",
        "1234567890123.5",
        "+60 3-2171 9999 / +60 12-345 6789",
        "tracking 41111111111111110000",
    ],
)
def test_other_numbers_are_kept(text):
    assert redact_card_numbers(text) == (text, False)


@pytest.fixture
def cache_down(settings):
    """The shared cache points at a port where no Redis listens."""
    saved = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    ratelimit._fallback.clear()
    ratelimit._last_warning = 0.0
    yield
    ratelimit._fallback.clear()
    settings.CACHES = saved  # before the suite's own fixtures clear the cache


@pytest.mark.usefixtures("rate_window_start")
def test_limits_still_hold_in_each_process_while_the_cache_is_down(settings, cache_down, caplog):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "resend_per_domain": (2, 900)}
    with caplog.at_level(logging.WARNING, logger="helpdesk.ratelimit"):
        rate_limit_hit(scope="resend_per_domain", key="alice-shop.test")
        rate_limit_hit(scope="resend_per_domain", key="alice-shop.test")

    with pytest.raises(RateLimited):
        rate_limit_hit(scope="resend_per_domain", key="alice-shop.test")
    assert "rate-limit cache unreachable" in caplog.text


@pytest.mark.django_db
def test_a_request_is_still_accepted_while_the_cache_is_down(client, cache_down):
    from tickets.models import Ticket

    response = client.post(
        "/api/v1/requests/password-resend/",
        {"domain": "alice-shop.test", "contact_email": "someone@example.test"},
        content_type="application/json",
    )

    assert response.status_code == 202
    assert Ticket.objects.filter(reference=response.json()["reference"]).exists()


@pytest.mark.django_db
def test_the_staff_ticket_page_works_without_the_cache(agent_client, cache_down):
    from tests.factories import TicketFactory

    ticket = TicketFactory()

    response = agent_client.get(f"/staff/tickets/{ticket.reference}/")

    assert response.status_code == 200
    assert ticket.reference in response.content.decode()


def test_a_test_cannot_reach_the_network_only_loopback():
    # pytest-socket (pyproject.toml addopts) refuses a connection to any other host.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=0.5)  # TEST-NET-1, documentation only


def _settings_in_a_fresh_process(expression: str, **environ: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "helpdesk.settings", "DEBUG": "1", **environ}
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_secret_key_fallbacks_are_read_from_the_environment_comma_separated():
    read = _settings_in_a_fresh_process(
        "settings.SECRET_KEY_FALLBACKS", SECRET_KEY_FALLBACKS="older-key-1,oldest-key-2,"
    )

    assert read == "['older-key-1', 'oldest-key-2']"
    assert (
        _settings_in_a_fresh_process("settings.SECRET_KEY_FALLBACKS", SECRET_KEY_FALLBACKS="")
        == "[]"
    )
