"""Cache-backed rate limits per client and per target (Redis in production)."""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from helpdesk.exceptions import RateLimited

RATE_LIMITED = "Too many requests. Please wait a little and try again."


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


def rate_limit_hit(*, scope: str, key: str) -> None:
    """Count one request for (scope, key); raise RateLimited past the limit in RATE_LIMITS."""
    limit, window = settings.RATE_LIMITS[scope]
    digest = hashlib.sha256(f"{scope}:{key.casefold()}".encode()).hexdigest()[:32]
    bucket = int(time.time() // window)
    cache_key = f"rl:{scope}:{digest}:{bucket}"
    if cache.add(cache_key, 1, timeout=window + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=window + 5)
            count = 1
    if count > limit:
        retry_after = max(1, int((bucket + 1) * window - time.time()))
        raise RateLimited(RATE_LIMITED, retry_after=retry_after)
