"""Cache-backed rate limits per client and per target (Redis in production)."""

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from django.utils.translation import gettext_noop

from helpdesk.exceptions import CACHE_DOWN_ERRORS, RateLimited

logger = logging.getLogger(__name__)

RATE_LIMITED = gettext_noop("Too many requests. Please wait a little and try again.")


def client_ip(request: HttpRequest) -> str:
    """The client's address: X-Forwarded-For is believed only from configured trusted proxies."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p]
    # The right-most `hops` entries were added by our proxies; the one before them is the client.
    if len(forwarded) >= hops:
        return forwarded[-hops]
    return remote


# While the shared cache is unreachable, each process counts on its own: limits stay in force
# (per process) and requests keep being accepted instead of failing with the cache.
_fallback = LocMemCache("ratelimit-fallback", {"MAX_ENTRIES": 100_000})
_WARN_EVERY_SECONDS = 60
_last_warning = 0.0


def _count_in(backend: BaseCache, counters: list[tuple[str, int]]) -> list[int]:
    if isinstance(backend, RedisCache):
        # One round trip for them all (the generic add-then-incr below takes three each).
        client = backend._cache.get_client(write=True)  # type: ignore[attr-defined]  # django-stubs omits RedisCache._cache
        pipe = client.pipeline(transaction=False)
        for cache_key, timeout in counters:
            key = backend.make_and_validate_key(cache_key)
            pipe.set(key, 0, ex=timeout, nx=True)
            pipe.incr(key)
        return [int(n) for n in pipe.execute()[1::2]]
    counts = []
    for cache_key, timeout in counters:
        if backend.add(cache_key, 1, timeout=timeout):
            counts.append(1)
            continue
        try:
            counts.append(backend.incr(cache_key))
        except ValueError:  # expired between add and incr
            backend.add(cache_key, 1, timeout=timeout)
            counts.append(1)
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


def rate_limit_hits(*hits: tuple[str, str]) -> None:
    """Count one request for each (scope, key), in one round trip.

    Raises RateLimited when any count is past its limit in RATE_LIMITS; every counter is
    counted first.
    """
    now = time.time()
    counters, limits = [], []
    for scope, key in hits:
        limit, window = settings.RATE_LIMITS[scope]
        digest = hashlib.sha256(f"{scope}:{key.casefold()}".encode()).hexdigest()[:32]
        bucket = int(now // window)
        counters.append((f"rl:{scope}:{digest}:{bucket}", window + 5))
        limits.append((limit, (bucket + 1) * window))
    retry_after = 0
    for count, (limit, window_end) in zip(_count(counters), limits, strict=True):
        if count > limit:
            retry_after = max(retry_after, 1, int(window_end - now))
    if retry_after:
        raise RateLimited(RATE_LIMITED, retry_after=retry_after)


def rate_limit_hit(*, scope: str, key: str) -> None:
    """Count one request for (scope, key); raise RateLimited past the limit in RATE_LIMITS."""
    rate_limit_hits((scope, key))
