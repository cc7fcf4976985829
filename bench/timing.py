"""Anonymous requests take the same time whoever they name: known vs unknown, interleaved.

For each anonymous API request (modify, opt-out, password resend), 200 requests naming a
target on record (Alice's address, her domain) and 200 naming one that is not, alternating on
one connection to gunicorn (1 sync worker), after a warm-up. The worker is not running: the
lookups wait in Redis, which is flushed afterwards.

Run: .venv/bin/python bench/timing.py [--requests 200]
"""
# ruff: noqa: E402

from __future__ import annotations

import os.path
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import http.client
import json
import subprocess
import time

from bench.common import (
    BIN,
    DATABASE_URL,
    LOOPBACK,
    PYTHON,
    REDIS_URL,
    ROOT,
    Proc,
    bench_env,
    free_port,
    median,
    migrate,
    percentile,
    record,
    redis_flush,
    row,
    verdict,
    wait_port,
)

TIMING_DATABASE_URL = DATABASE_URL + "_timing"
# (name, path, body naming a target on record, body naming one that is not)
CASES = (
    (
        "modify",
        "/api/v1/requests/modify/",
        {"email": "alice@example.test", "changes": {"city": "Ipoh"}},
        {"email": "nobody@example.test", "changes": {"city": "Ipoh"}},
    ),
    (
        "opt-out",
        "/api/v1/requests/opt-out/",
        {"email": "alice@example.test", "lists": ["product_mailings"]},
        {"email": "nobody@example.test", "lists": ["product_mailings"]},
    ),
    (
        "password resend",
        "/api/v1/requests/password-resend/",
        {"domain": "alice-shop.test", "contact_email": "me@typed.test"},
        {"domain": "nobody-owns-this.test", "contact_email": "me@typed.test"},
    ),
)


def _post(conn: http.client.HTTPConnection, path: str, body: dict) -> tuple[float, int]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    start = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    response.read()
    return time.perf_counter() - start, response.status


def measure(port: int, requests: int) -> list[dict]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    results = []
    try:
        for name, path, known, unknown in CASES:
            for _ in range(20):  # warm-up
                _post(conn, path, known)
                _post(conn, path, unknown)
            times: dict[str, list[float]] = {"known": [], "unknown": []}
            statuses: set[int] = set()
            for i in range(requests * 2):
                # Interleaved, and which goes first alternates too.
                which = "known" if (i % 2 == 0) == (i // 2 % 2 == 0) else "unknown"
                took, status = _post(conn, path, known if which == "known" else unknown)
                times[which].append(took)
                statuses.add(status)
            k50, u50 = median(times["known"]), median(times["unknown"])
            results.append(
                {
                    "name": name,
                    "statuses": sorted(statuses),
                    "known_p50": k50 * 1000,
                    "known_p95": percentile(times["known"], 95) * 1000,
                    "unknown_p50": u50 * 1000,
                    "unknown_p95": percentile(times["unknown"], 95) * 1000,
                    "gap": abs(k50 - u50) / min(k50, u50),
                }
            )
    finally:
        conn.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="per target and endpoint")
    args = parser.parse_args()

    migrate(TIMING_DATABASE_URL)
    env = bench_env(DATABASE_URL=TIMING_DATABASE_URL, DEBUG="1")
    subprocess.run([PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
    redis_flush(REDIS_URL)
    port = free_port()
    gunicorn = Proc(
        "gunicorn-timing",
        [str(BIN / "gunicorn"), "helpdesk.wsgi", "--bind", f"{LOOPBACK}:{port}", "--workers", "1"],
        env=bench_env(DATABASE_URL=TIMING_DATABASE_URL),
    )
    try:
        if not wait_port(port, 30):
            print("gunicorn did not start; see var/bench/gunicorn-timing.log")
            return 1
        time.sleep(1.0)
        results = measure(port, args.requests)
    finally:
        gunicorn.stop()
        redis_flush(REDIS_URL)
    rows = []
    for r in results:
        ok = r["gap"] <= 0.10 and r["statuses"] == [202]
        line = (
            f"known p50 {r['known_p50']:.1f} ms p95 {r['known_p95']:.1f} ms; unknown p50 "
            f"{r['unknown_p50']:.1f} ms p95 {r['unknown_p95']:.1f} ms; medians "
            f"{r['gap'] * 100:.1f} % apart"
        )
        print(f"  {r['name']:16s} {line} (statuses {r['statuses']}): {verdict(ok)}")
        rows.append(row(f"timing: {r['name']}", line, "medians within 10 %", verdict(ok)))
    record("timing", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
