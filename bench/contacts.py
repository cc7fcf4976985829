"""Registration contacts refresh: 10,000 domains through the fake OpenSRS within the call rate.

Run: .venv/bin/python bench/contacts.py [--domains 10000] [--rate 60]

Seeds the domains in PostgreSQL (database hd_bench_contacts) and in an in-process fake OpenSRS
on loopback, then runs the refresh service as the worker task does (batches of 100, the shared
cache throttle at --rate calls a minute, Redis db 8). Reports the duration, the calls made and
the most calls seen in any 60 s window (from the fake's own log), which must not exceed --rate.
"""
# ruff: noqa: E402

from __future__ import annotations

import os.path
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import time
from datetime import datetime

from bench.common import DATABASE_URL, migrate, record, redis_flush, row, verdict

CONTACTS_DATABASE_URL = DATABASE_URL.rsplit("/", 1)[0] + "/hd_bench_contacts"


def max_in_window(stamps: list[float], window: float = 60.0) -> int:
    """The most stamps that fall in any half-open window of `window` seconds."""
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=60, help="OPENSRS_MAX_CALLS_PER_MINUTE")
    args = parser.parse_args()

    migrate(CONTACTS_DATABASE_URL)
    os.environ["OPENSRS_MAX_CALLS_PER_MINUTE"] = str(args.rate)
    from bench.common import REDIS_URL, django_setup

    django_setup(DATABASE_URL=CONTACTS_DATABASE_URL)
    redis_flush(REDIS_URL)
    from django.conf import settings
    from django.core.cache import cache

    from accounts.services import customer_ensure
    from domains.fake_opensrs import FakeOpenSRS
    from domains.models import Domain
    from domains.services import domain_contacts_refresh

    customer = customer_ensure(email="bench-contacts@example.test", full_name="Bench Contacts")
    Domain.objects.filter(customer=customer).delete()
    names = [f"bench-{i:05}.test" for i in range(args.domains)]
    Domain.objects.bulk_create(
        [Domain(name=n, customer=customer, registrant_email="old@example.test") for n in names],
        batch_size=2000,
    )
    cache.clear()
    with FakeOpenSRS(username="bench", key="bench-key") as fake:
        for i, name in enumerate(names):
            fake.add_domain(name, f"owner{i}@example.test", admin_email=f"admin{i}@example.test")
        settings.OPENSRS_URL = fake.url
        settings.OPENSRS_USERNAME = "bench"
        settings.OPENSRS_KEY = "bench-key"
        settings.OPENSRS_MAX_CALLS_PER_MINUTE = args.rate
        started = time.monotonic()
        cursor, read, calls = 0, 0, 0
        while True:
            result = domain_contacts_refresh(after_pk=cursor, max_batches=10)
            read += result.read
            calls += result.calls
            if result.next_after_pk is None:
                break
            cursor = result.next_after_pk
        duration = time.monotonic() - started
        stamps = [datetime.fromisoformat(c["time"]).timestamp() for c in fake.calls]
    busiest = max_in_window(stamps)
    stored = Domain.objects.filter(customer=customer, admin_email__startswith="admin").count()
    ok = busiest <= args.rate and read == stored == args.domains
    print(
        f"{args.domains} domains: {calls} calls in {duration:.1f} s "
        f"({read / duration:.0f} domains/s); busiest 60 s window {busiest} calls "
        f"(limit {args.rate}/min); {stored} stored"
    )
    record(
        "contacts",
        [
            row(
                f"contacts refresh, {args.domains} domains",
                f"{duration:.1f} s, {calls} calls, busiest minute {busiest} calls, {stored} stored",
                f"<= {args.rate} calls/min",
                verdict(ok),
            )
        ],
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
