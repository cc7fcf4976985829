"""The cache backend: Django's Redis cache, with one redis-py client per connection pool.

Django's `RedisCacheClient.get_client()` builds a new `redis.Redis` for every command (its
response callbacks, a case-insensitive dict of a few hundred entries, each time): about 540
Python calls and 0.16 to 0.21 ms of CPU a command, two a staff ticket page (its presence), of
its 41,500 calls (bench/README.md, 2026-12-07). A client holds no connection of its own
(each command takes one from the pool, which is thread-safe and starts again after a fork), so
one client per pool serves every thread, as django-redis keeps one.

Django offers no option for this: it needs its internal `RedisCacheClient`, its
`_get_connection_pool()`, and the backend's `_class`.
"""

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    """Django's client, its `redis.Redis` kept per connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's internal attributes, as its own get_client() uses them (not in its stubs).
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            # Two threads may both build one: either serves, the pool is the same.
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    """`django.core.cache.backends.redis.RedisCache` with the client above."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
