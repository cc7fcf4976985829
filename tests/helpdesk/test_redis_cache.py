"""The Redis cache backend: Django's, with one redis-py client per connection pool."""

import threading

from django.conf import settings as django_settings

from helpdesk.redis_cache import RedisCache


def test_the_settings_use_it_whenever_the_cache_is_redis():
    backend = django_settings.CACHES["default"]["BACKEND"]
    if django_settings.CACHE_URL:
        assert backend == "helpdesk.redis_cache.RedisCache"
    else:
        assert backend == "django.core.cache.backends.locmem.LocMemCache"


def test_every_command_of_every_thread_uses_one_client_and_reads_what_was_written(redis_urls):
    # given the cache on a real Redis
    cache = RedisCache(redis_urls.cache, {"KEY_PREFIX": "hd-test-client-reuse"})
    clients = set()
    failures = []

    def work(n: int) -> None:
        try:
            for round_ in range(20):
                cache.set(f"k{n}", (n, round_), timeout=30)
                seen = cache.get_many([f"k{n}", "absent"])
                if seen != {f"k{n}": (n, round_)}:
                    failures.append(seen)
                clients.add(id(cache._cache.get_client(f"k{n}", write=True)))
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)

    # when eight threads write and read at once
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        # then each read what it wrote, through the one client (one pool: one server)
        assert failures == []
        assert len(clients) == 1
        assert cache._cache.get_client() is cache._cache.get_client(write=True)
    finally:
        cache.delete_many([f"k{n}" for n in range(8)])
