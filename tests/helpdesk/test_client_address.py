"""Whose address a request is counted under: X-Forwarded-For only from the trusted proxies."""

import pytest
from django.test import Client, RequestFactory

from helpdesk.ratelimit import client_ip
from tests.helpdesk.test_deploy import _settings_load

READY = "/api/v1/health/"


def _request(remote: str, forwarded: str | None = None):
    extra = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


def test_forwarded_for_is_ignored_without_a_trusted_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert client_ip(_request("127.0.0.1", "1.2.3.4")) == "127.0.0.1"


def test_forwarded_for_is_read_from_the_trusted_hop(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert client_ip(_request("127.0.0.1", "6.6.6.6, 203.0.113.9")) == "203.0.113.9"
    assert client_ip(_request("::1", "203.0.113.9")) == "203.0.113.9"


def test_forwarded_for_from_a_client_that_reached_the_app_directly_is_ignored(settings):
    # given a proxy in front, and a client that reaches the app's port without it
    settings.TRUSTED_PROXY_COUNT = 1

    # when it names another address in X-Forwarded-For
    request = _request("203.0.113.50", "10.0.8.77")

    # then it is counted under its own
    assert client_ip(request) == "203.0.113.50"


def test_the_trusted_proxies_are_a_setting_of_addresses_and_networks(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "192.0.2.7"]

    assert client_ip(_request("10.0.0.9", "203.0.113.9")) == "203.0.113.9"
    assert client_ip(_request("192.0.2.7", "203.0.113.9")) == "203.0.113.9"
    assert client_ip(_request("127.0.0.1", "203.0.113.9")) == "127.0.0.1"  # not listed now


def test_each_hop_is_believed_only_when_a_trusted_proxy_wrote_it(settings):
    # given a CDN (192.0.2.0/24) in front of a proxy on the same host as the app
    settings.TRUSTED_PROXY_COUNT = 2
    settings.TRUSTED_PROXIES = ["127.0.0.1", "192.0.2.0/24"]

    through_both = _request("127.0.0.1", "6.6.6.6, 203.0.113.9, 192.0.2.5")
    around_the_cdn = _request("127.0.0.1", "6.6.6.6, 198.51.100.3")

    assert client_ip(through_both) == "203.0.113.9"
    # the local proxy was reached by 198.51.100.3 itself: what it claimed before is not believed
    assert client_ip(around_the_cdn) == "198.51.100.3"


@pytest.mark.usefixtures("rate_window_start")
def test_a_client_reaching_the_app_directly_cannot_dodge_its_limit_with_forwarded_for(db, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_client": (2, 900)}
    client = Client(REMOTE_ADDR="203.0.113.50")

    codes = [
        client.post(
            "/accounts/login/",
            {"username": f"nobody{n}", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(4)
    ]

    assert codes == [200, 200, 429, 429]


def test_a_bad_trusted_proxy_setting_stops_the_start(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from helpdesk.settings import networks_from_env

    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32,::1")
    assert networks_from_env("TRUSTED_PROXIES", []) == ["10.0.0.0/8", "2001:db8::/32", "::1"]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        networks_from_env("TRUSTED_PROXIES", [])
    monkeypatch.delenv("TRUSTED_PROXIES")
    assert networks_from_env("TRUSTED_PROXIES", ["127.0.0.1"]) == ["127.0.0.1"]


# --- who is never throttled on the readiness check ---


def _ready_statuses(remote: str, forwarded: str | None = None, times: int = 3) -> list[int]:
    extra = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    client = Client(REMOTE_ADDR=remote)
    return [client.get(READY, **extra).status_code for _ in range(times)]


@pytest.fixture
def one_probe_a_minute(db, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_per_client": (1, 60)}
    settings.HEALTH_UNTHROTTLED_IPS = ["10.0.8.0/24"]


@pytest.mark.usefixtures("rate_window_start")
def test_clients_of_an_untrusted_proxy_on_this_host_are_not_taken_for_loopback(
    one_probe_a_minute, settings
):
    # given a proxy on the app's host that the app was not told to trust
    settings.TRUSTED_PROXY_COUNT = 0

    # when a client's requests come through it (REMOTE_ADDR is the proxy's loopback address)
    through_the_proxy = _ready_statuses("127.0.0.1", "198.51.100.4")

    # then they are throttled as the proxy's one address, not let through as a local probe
    assert through_the_proxy == [200, 429, 429]


def test_a_probe_straight_from_this_host_is_never_throttled(one_probe_a_minute, settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert _ready_statuses("127.0.0.1", times=5) == [200] * 5
    assert _ready_statuses("::1", times=5) == [200] * 5


@pytest.mark.usefixtures("rate_window_start")
def test_behind_a_trusted_proxy_the_named_client_decides(one_probe_a_minute, settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert _ready_statuses("127.0.0.1", "10.0.8.77", times=5) == [200] * 5  # a listed monitor
    assert _ready_statuses("127.0.0.1", "198.51.100.4") == [200, 429, 429]
    # a client reaching the app directly cannot name a monitor
    assert _ready_statuses("203.0.113.50", "10.0.8.77") == [200, 429, 429]


def test_metrics_allowed_to_loopback_are_not_open_to_clients_of_an_untrusted_local_proxy(
    db, settings
):
    # given metrics allowed to this host, as .env.example suggests, behind an untrusted proxy
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "::1"]
    settings.TRUSTED_PROXY_COUNT = 0

    # when a client asks through the proxy, and a scraper on the host asks directly
    through_the_proxy = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")
    scraper = Client(REMOTE_ADDR="127.0.0.1")

    # then only the scraper is answered
    assert through_the_proxy.get("/metrics").status_code == 403
    assert scraper.get("/metrics").status_code == 200


# --- https is believed only from the trusted proxies, as X-Forwarded-For is ---


@pytest.fixture
def behind_a_tls_proxy(db, settings):
    """Production behind a TLS-terminating proxy at 10.0.0.1: http is redirected to https."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True


def test_a_client_reaching_the_app_directly_cannot_claim_https(behind_a_tls_proxy):
    # when a client that reaches the app's port itself, over plain http, says it came by https
    response = Client(REMOTE_ADDR="203.0.113.9").get("/", HTTP_X_FORWARDED_PROTO="https")

    # then it is plain http to the app: redirected to https, as without the header
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_the_trusted_proxy_says_whether_the_client_came_by_https(behind_a_tls_proxy):
    proxy = Client(REMOTE_ADDR="10.0.0.1")

    assert proxy.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert proxy.get("/", HTTP_X_FORWARDED_PROTO="http").status_code == 301


def test_loopback_claims_nothing_unless_it_is_a_trusted_proxy(behind_a_tls_proxy, settings):
    local = Client(REMOTE_ADDR="127.0.0.1")
    assert local.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 301

    settings.TRUSTED_PROXY_COUNT = 0  # no proxy believed at all, even one listed
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert local.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 301


# --- every allow-list of addresses is checked at start ---

ADDRESS_LISTS = ["TRUSTED_PROXIES", "METRICS_ALLOWED_IPS", "HEALTH_UNTHROTTLED_IPS"]


@pytest.mark.parametrize("variable", ADDRESS_LISTS)
@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.5,proxy.internal",  # a host name: matches no address, so allows nobody
        "10.0.0.256",  # a typo of an address
        "10.0.8.0/33",  # a prefix that cannot be
        "10.0.8.0/2",  # a typo of /24: a quarter of the internet
        "203.0.113.9/0",  # everybody, by way of an address with a prefix
    ],
)
def test_a_bad_address_list_stops_the_start_and_names_it(variable, value):
    process = _settings_load({"DEBUG": "1", "ENV_FILE": "", variable: value})
    _out, err = process.communicate(timeout=60)

    assert process.returncode != 0
    assert "ImproperlyConfigured" in err
    message = err.strip().splitlines()[-1]
    assert variable in message, message


@pytest.mark.parametrize("variable", ADDRESS_LISTS)
def test_a_good_address_list_is_read_as_written(variable, monkeypatch):
    from helpdesk.settings import networks_from_env

    monkeypatch.setenv(variable, "10.0.0.5, 10.0.8.0/24,2001:db8::/32,::1,0.0.0.0/0")
    process = _settings_load({"DEBUG": "1", "ENV_FILE": "", variable: "10.0.0.5, 10.0.8.0/24"})

    assert networks_from_env(variable, []) == [
        "10.0.0.5",
        "10.0.8.0/24",
        "2001:db8::/32",
        "::1",
        "0.0.0.0/0",
    ]
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


@pytest.fixture
def behind_a_cdn_and_a_balancer(db, settings):
    """Two proxies: a CDN edge (TLS ends there) and a balancer in front of the app, over IPv6."""
    settings.TRUSTED_PROXY_COUNT = 2
    settings.TRUSTED_PROXIES = ["2001:db8:cd::/48", "2001:db8:1b::10"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True


def test_https_is_believed_only_from_the_whole_chain_of_proxies(behind_a_cdn_and_a_balancer):
    balancer = Client(REMOTE_ADDR="2001:db8:1b::10")

    # a client that came by https through the CDN edge and then the balancer
    through_both = "2001:db8:ff::9, 2001:db8:cd::7"
    assert (
        balancer.get(
            "/", HTTP_X_FORWARDED_FOR=through_both, HTTP_X_FORWARDED_PROTO="https"
        ).status_code
        == 200
    )

    # when a client skips the CDN and reaches the balancer itself over plain http, the balancer
    # passing on what the client wrote (the CDN's header), its own address appended
    for forged in ("2001:db8:ff::9", "2001:db8:cd::7, 2001:db8:ff::9", "203.0.113.9"):
        response = balancer.get("/", HTTP_X_FORWARDED_FOR=forged, HTTP_X_FORWARDED_PROTO="https")
        # then it is plain http to the app: the hop before the balancer is not a trusted proxy
        assert response.status_code == 301, forged
    # and without the header the balancer forwarded, nobody vouched for the hop before it
    assert balancer.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 301


def test_a_proxy_seen_on_a_dual_stack_socket_is_still_the_trusted_proxy(behind_a_tls_proxy):
    # given the app listening on [::] (IPv4 and IPv6 on one socket), where the IPv4 proxy's
    # connections arrive as IPv4-mapped IPv6 addresses
    proxy = Client(REMOTE_ADDR="::ffff:10.0.0.1")

    # then it is the proxy listed as 10.0.0.1: its https is believed, not redirected forever
    assert proxy.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    # and the client it names is the client, not the proxy for everyone
    assert client_ip(_request("::ffff:10.0.0.1", "203.0.113.9")) == "203.0.113.9"
    # while any other address so written is still no proxy
    stranger = Client(REMOTE_ADDR="::ffff:203.0.113.50")
    assert stranger.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 301
    assert client_ip(_request("::ffff:203.0.113.50", "10.0.8.77")) == "::ffff:203.0.113.50"
