"""Notification pipeline: one Celery worker, anymail's test backend, Redis broker.

Run: .venv/bin/python bench/notifications.py [--count 5000] [--latency-count 1000] [--rate 100]
"""
# ruff: noqa: E402

from __future__ import annotations

import os.path
import sys

# This folder must not shadow the standard library (bench/queue.py vs `queue`).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import time

from bench.common import (
    DATABASE_URL,
    REDIS_URL,
    MemorySampler,
    bench_env,
    django_setup,
    median,
    migrate,
    percentile,
    record,
    redis_flush,
    row,
    start_worker,
    verdict,
    wait_until,
    wait_worker,
)

TEST_BACKEND = "anymail.backends.test.EmailBackend"
# Its own database: the tickets and outbox rows it writes would otherwise join the staff
# cases' seeded mix in the bench database (the newest open tickets, and all due now).
NOTIFICATIONS_DATABASE_URL = DATABASE_URL + "_notifications"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000, help="notifications for throughput")
    parser.add_argument("--latency-count", type=int, default=1000, help="tickets for latency")
    parser.add_argument("--rate", type=float, default=100.0, help="tickets/s for latency")
    parser.add_argument("--concurrency", type=int, default=4, help="worker pool processes")
    parser.add_argument("--timeout", type=float, default=180.0, help="per phase, seconds")
    args = parser.parse_args()

    migrate(NOTIFICATIONS_DATABASE_URL)
    redis_flush(REDIS_URL)
    django_setup(DATABASE_URL=NOTIFICATIONS_DATABASE_URL, EMAIL_BACKEND=TEST_BACKEND)
    from bench.workload import enqueue, pending_rows, ticket_with_notification
    from tickets.models import Notification

    # Phase 1, throughput: the queue is full before the worker starts.
    ids = pending_rows(args.count, "throughput")
    enqueue(ids)
    worker = start_worker(
        "notif",
        bench_env(DATABASE_URL=NOTIFICATIONS_DATABASE_URL, EMAIL_BACKEND=TEST_BACKEND),
        concurrency=args.concurrency,
    )
    latency_ids: list[int] = []
    try:
        with MemorySampler(worker.pid) as memory:
            if not wait_worker(worker, 60):
                print("not measured: the Celery worker did not start (var/bench/notif.log)")
                return 1
            rows = Notification.objects.filter(pk__in=ids)
            done = wait_until(
                lambda: (
                    rows.exclude(status="pending").exclude(status="sending").count() == len(ids)
                ),
                args.timeout,
                0.5,
            )
            sent = list(rows.filter(status="sent").values_list("sent_at", flat=True))
            # Phase 2, latency: tickets created at a steady rate while the worker runs.
            interval = 1.0 / args.rate
            started = time.monotonic()
            for i in range(args.latency_count):
                delay = started + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                latency_ids.append(ticket_with_notification(i, "latency").pk)
            created_for = time.monotonic() - started
            lat_rows = Notification.objects.filter(pk__in=latency_ids)
            wait_until(
                lambda: lat_rows.filter(status="sent").count() == len(latency_ids),
                args.timeout,
                0.5,
            )
            latencies = [
                (sent_at - created).total_seconds()
                for created, sent_at in lat_rows.filter(status="sent").values_list(
                    "created_at", "sent_at"
                )
            ]
        pool_mb = memory.peaks_mb()
        tree_mb = memory.peak_tree_kb / 1024
        pss_mb = memory.peak_tree_pss_kb / 1024
    finally:
        worker.stop()
        redis_flush(REDIS_URL)

    if len(sent) >= 2:
        span = (max(sent) - min(sent)).total_seconds()
        rate = (len(sent) - 1) / span if span > 0 else float("inf")
    else:
        span, rate = 0.0, 0.0
    p50, p95 = median(latencies), percentile(latencies, 95)
    peak = max(pool_mb.values()) if pool_mb else 0.0
    print(f"worker: 1 process tree, prefork pool of {args.concurrency}, backend {TEST_BACKEND}")
    print(
        f"  throughput: {len(sent)}/{len(ids)} sent{'' if done else ' (timed out)'} in "
        f"{span:.1f} s = {rate:.0f} emails/s (budget >= 200): {verdict(rate >= 200)}"
    )
    print(
        f"  latency: {len(latencies)}/{len(latency_ids)} tickets created at {args.rate:.0f}/s "
        f"(took {created_for:.1f} s); created -> handed to ESP p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms (budget p95 <= 1000 ms): {verdict(p95 <= 1.0)}"
    )
    print(
        "  worker peak RSS: "
        + ", ".join(f"pid {pid} {mb:.1f} MB" for pid, mb in sorted(pool_mb.items()))
        + f"; whole tree RSS {tree_mb:.1f} MB, PSS {pss_mb:.1f} MB "
        f"(budget <= 150 MB per process): {verdict(peak <= 150)}"
    )
    record(
        "notifications",
        [
            row(
                "notification throughput", f"{rate:.0f} emails/s", ">= 200/s", verdict(rate >= 200)
            ),
            row(
                "created -> handed to ESP",
                f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms at {args.rate:.0f} tickets/s",
                "p95 <= 1 s",
                verdict(p95 <= 1.0),
            ),
            row(
                "Celery worker peak RSS",
                f"{peak:.1f} MB largest process; tree RSS {tree_mb:.0f} MB, PSS {pss_mb:.0f} MB",
                "<= 150 MB",
                verdict(peak <= 150),
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
