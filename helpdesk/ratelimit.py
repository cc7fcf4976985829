"""Cache-backed rate limits per client and per target (Redis in production)."""

import contextlib
import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest
from django.utils.translation import gettext_noop

from accounts.login_devices import login_device_nonce
from helpdesk.exceptions import CACHE_DOWN_ERRORS, RateLimited

logger = logging.getLogger(__name__)

# The scopes whose key is the client's address (`client_ip`) end so (settings.RATE_LIMITS).
PER_CLIENT = "_per_client"

RATE_LIMITED = gettext_noop("Too many requests. Please wait a little and try again.")


def _forwarding_chain(request: HttpRequest) -> list[str]:
    """The addresses the request passed, nearest first: REMOTE_ADDR, then X-Forwarded-For's.

    Each proxy appends the address it was reached from, so the header is read from its end.
    """
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [p.strip() for p in header.split(",") if p.strip()]
    return [request.META.get("REMOTE_ADDR", ""), *reversed(forwarded)]


def _client_address(request: HttpRequest) -> tuple[str, bool]:
    """The client's address, and whether it is known: the request came direct or vouched for.

    Walking back from REMOTE_ADDR, an entry is believed only while the hop that wrote it is one
    of TRUSTED_PROXIES, for at most TRUSTED_PROXY_COUNT hops: a client that reaches the app (or
    a proxy further out) directly is counted under its own address, whatever it put in the
    header.
    """
    chain = _forwarding_chain(request)
    if len(chain) == 1:
        return chain[0], True
    hops = 0
    while (
        hops < settings.TRUSTED_PROXY_COUNT
        and hops + 1 < len(chain)
        and ip_in(chain[hops], settings.TRUSTED_PROXIES, loopback=False)
    ):
        hops += 1
    return chain[hops], hops > 0


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the request came through the whole chain of trusted proxies (headers believed).

    X-Forwarded-Proto is then believed: the outermost proxy, where TLS ends, wrote it.

    Each of the TRUSTED_PROXY_COUNT hops, walked back from REMOTE_ADDR as X-Forwarded-For is
    read, must have been written by one of TRUSTED_PROXIES (loopback only when listed). A peer
    that is trusted is not enough with several proxies: a client reaching an inner one (the
    balancer behind a CDN) directly over http hands it a header the inner proxy passes on.
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return False
    writers = _forwarding_chain(request)[:count]
    return len(writers) == count and all(
        ip_in(writer, settings.TRUSTED_PROXIES, loopback=False) for writer in writers
    )


def client_ip(request: HttpRequest) -> str:
    """The client's address: X-Forwarded-For is believed only as written by a trusted proxy."""
    return _client_address(request)[0]


def client_ip_known(request: HttpRequest) -> str | None:
    """The client's address if it came direct or a trusted proxy names it; else None.

    A request passed on by a proxy that is not believed (TRUSTED_PROXY_COUNT=0 behind a proxy on
    this host) shows that proxy's address, loopback, for every client: an allow-list must not
    take it for the client's.
    """
    address, known = _client_address(request)
    return address if known else None


def ip_in(address: str, networks: list[str], *, loopback: bool = True) -> bool:
    """Whether an address is inside one of the addresses/networks listed (or loopback).

    An IPv4-mapped IPv6 address (::ffff:10.0.0.1, as a socket on [::] shows IPv4 peers) is
    also its IPv4 address: a proxy listed as 10.0.0.1 is that proxy however it is seen.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        forms.append(ip.ipv4_mapped)
    if loopback and any(form.is_loopback for form in forms):
        return True
    return any(
        form in ipaddress.ip_network(net, strict=False) for net in networks for form in forms
    )


# While the shared cache is unreachable, each process counts on its own: limits stay in force
# (per process) and requests keep being accepted instead of failing with the cache.
_fallback = LocMemCache("ratelimit-fallback", {"MAX_ENTRIES": 100_000})
_WARN_EVERY_SECONDS = 60
_last_warning = 0.0


def _count_in(backend: BaseCache, counters: list[tuple[str, int]]) -> list[int]:
    counts = []
    # Counting an existing counter comes first: it is the usual case, and one call fewer.
    for cache_key, timeout in counters:
        try:
            counts.append(backend.incr(cache_key))
            continue
        except ValueError:  # no counter for this window yet
            pass
        if backend.add(cache_key, 1, timeout=timeout):
            counts.append(1)
        else:  # another request made it in between
            counts.append(backend.incr(cache_key))
    return counts


def _count(counters: list[tuple[str, int]]) -> list[int]:
    """Add one to each counter (key, seconds it lives after it was made); return them."""
    global _last_warning
    try:
        return _count_in(caches[DEFAULT_CACHE_ALIAS], counters)
    except CACHE_DOWN_ERRORS as exc:
        now = time.monotonic()
        if now - _last_warning >= _WARN_EVERY_SECONDS:
            _last_warning = now
            logger.warning("rate-limit cache unreachable (%s); counting in this process", exc)
        return _count_in(_fallback, counters)


def rate_limit_client_key(key: str) -> str:
    """What a per-client limit counts a client address as: an IPv6 client's network.

    One IPv6 subscriber is given a whole /64 (or more) and may use a new address of it for every
    request, so its addresses count together (IPV6_CLIENT_PREFIX_LENGTH). An IPv4-mapped address
    counts as its IPv4 address; an IPv4 address, or a key that holds no address, as it is. A key
    may name what it counts before the address (`ip:…`, `reset:…`).
    """
    label, address = "", key
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        name, colon, address = key.partition(":")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return key
        label = name + colon
    if isinstance(ip, ipaddress.IPv4Address):
        return key
    if ip.ipv4_mapped is not None:
        return f"{label}{ip.ipv4_mapped}"
    network = ipaddress.IPv6Network((ip, settings.IPV6_CLIENT_PREFIX_LENGTH), strict=False)
    return f"{label}{network}"


def _counter(scope: str, key: str, now: float) -> tuple[str, int, int, float]:
    """(cache key, seconds it lives, limit, end of its window) of (scope, key)'s window at now."""
    limit, window = settings.RATE_LIMITS[scope]
    if scope.endswith(PER_CLIENT):
        key = rate_limit_client_key(key)
    digest = hashlib.sha256(f"{scope}:{key.casefold()}".encode()).hexdigest()[:32]
    bucket = int(now // window)
    return f"rl:{scope}:{digest}:{bucket}", window + 5, limit, (bucket + 1) * window


def rate_limit_hits(*hits: tuple[str, str], message: str = RATE_LIMITED) -> None:
    """Count one request for each (scope, key).

    Raises RateLimited when any count is past its limit in RATE_LIMITS; every counter is
    counted first.
    """
    now = time.time()
    counters, limits = [], []
    for scope, key in hits:
        cache_key, timeout, limit, window_end = _counter(scope, key, now)
        counters.append((cache_key, timeout))
        limits.append((limit, window_end))
    retry_after = 0
    for count, (limit, window_end) in zip(_count(counters), limits, strict=True):
        if count > limit:
            retry_after = max(retry_after, 1, int(window_end - now))
    if retry_after:
        raise RateLimited(message, retry_after=retry_after)


def rate_limit_hit(*, scope: str, key: str) -> None:
    """Count one request for (scope, key); raise RateLimited past the limit in RATE_LIMITS."""
    rate_limit_hits((scope, key))


def _cache_call(call: Callable[[BaseCache], Any]) -> Any:
    try:
        return call(caches[DEFAULT_CACHE_ALIAS])
    except CACHE_DOWN_ERRORS:
        return call(_fallback)


def _cache_uncount(scope: str, key: str, *, clear: bool) -> None:
    """Take one back from (scope, key)'s current window, or forget the window's count."""
    cache_key = _counter(scope, key, time.time())[0]

    def uncount(backend: BaseCache) -> None:
        if clear:
            backend.delete(cache_key)
            return
        with contextlib.suppress(ValueError):  # the window ended meanwhile: nothing to take back
            backend.decr(cache_key)

    _cache_call(uncount)


# --- logins: the portal, the admin and the API token share one limiter ---

LOGIN_THROTTLED = gettext_noop(
    "Too many login attempts. For your security, please wait a few minutes and try again."
)


def _login_client_hits(client: str, username: str) -> list[tuple[str, str]]:
    """The counters of one client: its failures, and its failures for this username."""
    hits = [("login_failures_per_client", f"ip:{client}")]
    if name := username.strip():
        # The client as a per-client limit counts it (an IPv6 client by its network).
        pair = f"user:{name} ip:{rate_limit_client_key(client)}"
        hits.append(("login_failures_per_username", pair))
    return hits


def _device_revoked_key(nonce: str) -> str:
    return f"login_device_revoked:{nonce}"


def _login_device(name: str, device_cookie: str | None) -> str | None:
    """The nonce of the attempt's device cookie for this login, unless it was revoked."""
    nonce = login_device_nonce(device_cookie, username=name)
    if nonce is None or _cache_call(lambda backend: backend.get(_device_revoked_key(nonce))):
        return None
    return nonce


def _login_ceiling_hit(name: str) -> tuple[str, str]:
    return ("login_failures_per_username_all_clients", f"user:{name}")


def _login_username_hit(name: str, device_cookie: str | None) -> tuple[str, str]:
    """The username-wide counter of an attempt: its device's if it carries the login's cookie."""
    nonce = _login_device(name, device_cookie)
    if nonce is not None:
        return ("login_failures_per_device", f"device:{nonce}")
    return _login_ceiling_hit(name)


def login_attempt_count(*, client: str, username: str, device_cookie: str | None = None) -> None:
    """Count a login attempt as a failure before its password is checked (RateLimited past it).

    Counting first (one atomic increment) means parallel guesses cannot all slip in under the
    limit before any of them is counted; `login_succeeded` takes the count back. The refusal
    comes before the password is tried, so it tells nothing about whether the username exists.

    A username is locked per client (`login_failures_per_username`), so whoever guesses it
    locks only their own client out, not its owner at theirs; its ceiling from every client
    together (`login_failures_per_username_all_clients`, far higher) stops guessing spread over
    many addresses. Only an attempt its client's limits let through counts toward the ceiling:
    one client going on past its own refusals never reaches it.

    An attempt carrying the request's device cookie for this username (`device_cookie`, issued
    by `accounts.login_devices` after a correct password) is neither held by the ceiling nor
    counted toward it, so the ceiling filled from many addresses does not lock the owner out of
    a browser they signed in from; such attempts have a small limit per device of their own
    (`login_failures_per_device`), so a copied cookie gives no more guesses than that, and
    none once the login's password or state changed and a failed attempt found it so
    (`login_device_revoke`).
    """
    rate_limit_hits(*_login_client_hits(client, username), message=LOGIN_THROTTLED)
    if name := username.strip():
        rate_limit_hits(_login_username_hit(name, device_cookie), message=LOGIN_THROTTLED)


def login_succeeded(*, client: str, username: str, device_cookie: str | None = None) -> None:
    """A correct password: the attempt is not a failure, the username's count there is cleared.

    Successes never count, so colleagues behind one office address do not lock each other out.
    The username's ceiling (or the device's count) only takes this attempt back: the owner
    logging in does not give guessers spread over many addresses, or holding a copy of the
    device cookie, a new allowance.
    """
    hits = _login_client_hits(client, username)
    _cache_uncount(*hits[0], clear=False)
    if name := username.strip():
        _cache_uncount(*hits[1], clear=True)
        _cache_uncount(*_login_username_hit(name, device_cookie), clear=False)


def login_device_counts(*, username: str, device_cookie: str | None) -> bool:
    """Whether an attempt for `username` with this device cookie is counted as its device's.

    As `login_attempt_count` counts it: a cookie signed for the login, and not revoked.
    """
    name = username.strip()
    return bool(name) and _login_device(name, device_cookie) is not None


def login_device_revoke(*, username: str, device_cookie: str | None) -> None:
    """Revoke the device cookie of a failed attempt that found it outdated (login_devices).

    Only an attempt whose password was checked reads the login, after the refusals, so that
    what a refusal costs tells nothing of which logins exist: the attempt that finds the cookie
    outdated was let in as its device's. It is counted toward the username's ceiling now, and
    every later attempt with the cookie is one without it, for as long as the cookie could
    live. The revocation kept in the cache only spares reading the login again: lost with the
    cache, the next failed attempt finds the cookie outdated and revokes it again.
    """
    name = username.strip()
    nonce = login_device_nonce(device_cookie, username=name)
    if not name or nonce is None:
        return
    key, seconds = _device_revoked_key(nonce), settings.LOGIN_DEVICE_COOKIE_DAYS * 24 * 60 * 60
    _cache_call(lambda backend: backend.set(key, 1, timeout=seconds))
    cache_key, timeout, _limit, _window_end = _counter(*_login_ceiling_hit(name), time.time())
    _count([(cache_key, timeout)])
