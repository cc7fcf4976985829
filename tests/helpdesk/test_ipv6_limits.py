"""Per-client limits count an IPv6 client by its /64: a new address in it is the same client."""

import pytest

from helpdesk.ratelimit import rate_limit_client_key

pytestmark = pytest.mark.django_db

OPT_OUT_API = "/api/v1/requests/opt-out/"
OPT_OUT_BODY = {"email": "x@example.test", "lists": ["product_mailings"]}


def api_opt_out(client, address: str) -> int:
    return client.post(
        OPT_OUT_API, OPT_OUT_BODY, content_type="application/json", REMOTE_ADDR=address
    ).status_code


@pytest.mark.usefixtures("rate_window_start")
def test_a_client_cannot_escape_its_limit_by_rotating_ipv6_addresses_in_its_64(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}
    codes = [
        client.post(
            "/api/v1/requests/opt-out/",
            {"email": "x@example.test", "lists": ["product_mailings"]},
            content_type="application/json",
            REMOTE_ADDR=f"2001:db8:1:2::{n:x}",
        ).status_code
        for n in range(1, 5)
    ]
    assert codes == [202, 202, 429, 429]


@pytest.mark.usefixtures("rate_window_start")
def test_two_ipv6_64s_are_limited_separately(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}
    first = [api_opt_out(client, f"2001:db8:1:2::{n}") for n in (1, 2, 3)]

    # a neighbour in the next /64 still has its whole budget
    neighbour = [api_opt_out(client, f"2001:db8:1:3:ffff::{n}") for n in (1, 2, 3)]

    assert first == neighbour == [202, 202, 429]


@pytest.mark.usefixtures("rate_window_start")
def test_ipv4_clients_are_still_limited_per_address(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}
    limited = [api_opt_out(client, "198.51.100.7") for _ in range(3)]

    # the next address of the same /24 (or any network) is another client
    assert limited == [202, 202, 429]
    assert api_opt_out(client, "198.51.100.8") == 202


@pytest.mark.usefixtures("rate_window_start")
def test_an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}
    codes = [
        api_opt_out(client, a) for a in ("198.51.100.7", "::ffff:198.51.100.7", "198.51.100.7")
    ]

    assert codes == [202, 202, 429]
    assert api_opt_out(client, "::ffff:198.51.100.8") == 202


# The portal's forms, each with input it accepts and the per-client limit it meets.
PORTAL_FORMS = {
    "general help": (
        "/requests/new/",
        {"subject": "Hi", "message": "hello", "email": "a@b.test"},
        "request_per_client",
    ),
    "opt-out": (
        "/requests/opt-out/",
        {"email": "a@b.test", "lists": ["product_mailings"]},
        "request_per_client",
    ),
    "password reset": ("/accounts/password-reset/", {"email": "a@b.test"}, "request_per_client"),
    "track": ("/track/", {"reference": "HD-AAAAAAAA", "email": "a@b.test"}, "track_per_client"),
}


@pytest.mark.parametrize("name", list(PORTAL_FORMS))
@pytest.mark.usefixtures("rate_window_start")
def test_a_portal_form_counts_every_address_of_a_64_as_one_client(client, settings, name):
    path, data, scope = PORTAL_FORMS[name]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, scope: (2, 3600)}

    codes = [
        client.post(path, data, REMOTE_ADDR=f"2001:db8:7:7::{n:x}").status_code
        for n in (1, 2, 3, 4)
    ]

    assert codes == [codes[0], codes[0], 429, 429] and codes[0] != 429
    assert client.post(path, data, REMOTE_ADDR="2001:db8:7:8::1").status_code == codes[0]


@pytest.mark.usefixtures("rate_window_start")
def test_failed_logins_from_every_address_of_a_64_count_as_one_client(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_client": (2, 900)}

    def log_in(n: int, address: str) -> int:
        # each attempt under another username: only the per-client limit is met
        data = {"username": f"nobody{n}", "password": "wrong"}
        return client.post("/accounts/login/", data, REMOTE_ADDR=address).status_code

    codes = [log_in(n, f"2001:db8:7:7::{n:x}") for n in (1, 2, 3, 4)]

    assert codes == [200, 200, 429, 429]
    assert log_in(5, "2001:db8:7:8::1") == 200


@pytest.mark.usefixtures("rate_window_start")
def test_failures_for_one_username_from_every_address_of_a_64_count_as_one_client(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_username": (2, 900)}

    def log_in(address: str) -> int:
        data = {"username": "alice@example.test", "password": "wrong"}
        return client.post("/accounts/login/", data, REMOTE_ADDR=address).status_code

    codes = [log_in(f"2001:db8:7:7::{n:x}") for n in (1, 2, 3, 4)]

    assert codes == [200, 200, 429, 429]
    assert log_in("2001:db8:7:8::1") == 200


@pytest.mark.parametrize(
    ("key", "counted_as"),
    [
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("ip:2001:db8:1:2::1", "ip:2001:db8:1:2::/64"),
        ("reset:2001:db8:1:2::1", "reset:2001:db8:1:2::/64"),
        ("dead:beef::1", "dead:beef::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("ip:::ffff:198.51.100.7", "ip:198.51.100.7"),
        ("198.51.100.7", "198.51.100.7"),
        ("reset:198.51.100.7", "reset:198.51.100.7"),
        ("", ""),
        ("k", "k"),
        ("user:7", "user:7"),
    ],
)
def test_the_key_a_per_client_limit_counts_under(key, counted_as):
    assert rate_limit_client_key(key) == counted_as


def test_the_ipv6_network_a_client_is_counted_by_is_a_setting(settings):
    settings.IPV6_CLIENT_PREFIX_LENGTH = 56

    assert rate_limit_client_key("2001:db8:1:2ff::1") == "2001:db8:1:200::/56"


def test_the_ipv6_prefix_length_is_read_from_the_environment(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from helpdesk.settings import ipv6_client_prefix_length_from_env

    monkeypatch.delenv("IPV6_CLIENT_PREFIX_LENGTH", raising=False)
    assert ipv6_client_prefix_length_from_env() == 64
    monkeypatch.setenv("IPV6_CLIENT_PREFIX_LENGTH", "48")
    assert ipv6_client_prefix_length_from_env() == 48
    monkeypatch.setenv("IPV6_CLIENT_PREFIX_LENGTH", "0")
    with pytest.raises(ImproperlyConfigured, match="IPV6_CLIENT_PREFIX_LENGTH"):
        ipv6_client_prefix_length_from_env()
