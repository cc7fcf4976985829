"""Intake throughput: POST a password-resend request vs the durable floor, same gunicorn.

Run: .venv/bin/python bench/intake.py [--seconds 10] [--concurrency 8]
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
import http.client
import json
import multiprocessing
import subprocess
import threading
import time

from bench.common import (
    BIN,
    DATABASE_URL,
    LOOPBACK,
    PYTHON,
    REDIS_URL,
    ROOT,
    MemorySampler,
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

INTAKE_PATH = "/api/v1/requests/password-resend/"
# Its own database: every intake leaves a `new` resend ticket whose task is never run, which
# the other scripts' sweeps would otherwise find first.
INTAKE_DATABASE_URL = DATABASE_URL + "_intake"
BARE_PATH = "/bench/bare/"
# What the cheapest durable intake costs here: one ORM row in a transaction, then also one
# Celery publish after the commit (bench/urls.py).
FLOORS = (
    ("floor: 1 ORM insert", "/bench/insert/"),
    ("floor: insert + 1 publish", "/bench/insert-publish/"),
)
DURABLE_FLOOR = FLOORS[1][0]
CLIENT_PROCESSES = 2


def _client_thread(port: int, path: str, deadline: float, tag: str, out: list) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    latencies, statuses, n = [], {}, 0
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        while time.monotonic() < deadline and n < 1_000_000:
            n += 1
            body = json.dumps(
                {"domain": f"bench-{tag}-{n}.test", "contact_email": "bench@example.test"}
            )
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        conn.close()
    out.append((latencies, statuses))


def _client_process(args: tuple[int, str, float, int, str]) -> tuple[list[float], dict[int, int]]:
    port, path, seconds, threads, tag = args
    deadline = time.monotonic() + seconds
    out: list = []
    workers = [
        threading.Thread(target=_client_thread, args=(port, path, deadline, f"{tag}-{i}", out))
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 60)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for lat, st in out:
        latencies += lat
        for code, count in st.items():
            statuses[code] = statuses.get(code, 0) + count
    return latencies, statuses


def load(port: int, path: str, seconds: float, concurrency: int, tag: str) -> dict:
    """Drive `path` for `seconds` with `concurrency` connections from client processes."""
    per_process = max(1, concurrency // CLIENT_PROCESSES)
    ctx = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with ctx.Pool(CLIENT_PROCESSES) as pool:
        parts = pool.map(
            _client_process,
            [(port, path, seconds, per_process, f"{tag}{i}") for i in range(CLIENT_PROCESSES)],
        )
    elapsed = time.perf_counter() - started
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for lat, st in parts:
        latencies += lat
        for code, count in st.items():
            statuses[code] = statuses.get(code, 0) + count
    return {"latencies": latencies, "statuses": statuses, "elapsed": elapsed}


def summarise(runs: list[dict], ok_status: int) -> dict:
    latencies = [x for run in runs for x in run["latencies"]]
    statuses: dict[int, int] = {}
    for run in runs:
        for code, count in run["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    ok = statuses.get(ok_status, 0)
    seconds = sum(run["elapsed"] for run in runs)
    return {
        "rps": ok / seconds if seconds else 0.0,
        "p50_ms": median(latencies) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "requests": len(latencies),
        "statuses": statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per target, over all rounds")
    parser.add_argument("--rounds", type=int, default=2, help="alternating bare/intake rounds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    args = parser.parse_args()

    migrate(INTAKE_DATABASE_URL)
    redis_flush(REDIS_URL)
    port = free_port()
    gunicorn = Proc(
        "gunicorn-intake",
        [
            str(BIN / "gunicorn"),
            "helpdesk.wsgi",
            "--bind",
            f"{LOOPBACK}:{port}",
            "--workers",
            "2",
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--timeout",
            "60",
        ],
        env=bench_env(DATABASE_URL=INTAKE_DATABASE_URL),
    )
    try:
        if not wait_port(port, 30):
            print("gunicorn did not start; see var/bench/gunicorn-intake.log")
            return 1
        time.sleep(1.0)
        # Warm up both paths (imports, connections, templates) before measuring.
        load(port, BARE_PATH, 1.0, args.concurrency, "warm")
        load(port, INTAKE_PATH, 1.0, args.concurrency, "warm")
        per_round = args.seconds / max(1, args.rounds)
        targets = [("bare", BARE_PATH), *FLOORS, ("intake", INTAKE_PATH)]
        runs: dict[str, list[dict]] = {name: [] for name, _ in targets}
        with MemorySampler(gunicorn.pid) as memory:
            for i in range(args.rounds):
                for n, (name, path) in enumerate(targets):
                    runs[name].append(load(port, path, per_round, args.concurrency, f"{n}r{i}"))
        workers_mb = memory.peaks_mb(exclude={gunicorn.pid})
    finally:
        gunicorn.stop()
        # The celery worker was not running: drop the queued tasks, and the floors' rows.
        redis_flush(REDIS_URL)
        subprocess.run(
            [PYTHON, "manage.py", "clearsessions"],
            cwd=ROOT,
            env=bench_env(DATABASE_URL=INTAKE_DATABASE_URL),
            check=False,
        )

    bare_runs, intake_runs = runs["bare"], runs["intake"]
    bare = summarise(bare_runs, 202)
    intake = summarise(intake_runs, 202)
    if not intake["statuses"].get(202):
        print(f"not measured: {INTAKE_PATH} never answered 202 (statuses {intake['statuses']})")
        record("intake", [row("intake/floor throughput", "not measured", ">= 0.50", "n/a")])
        return 0
    web_peak = max(workers_mb.values()) if workers_mb else 0.0
    threads = f", {args.threads} threads" if args.worker_class == "gthread" else ""
    print(
        f"gunicorn: 2 workers ({args.worker_class}{threads}), "
        f"client: {args.concurrency} connections, {args.seconds:.0f} s per target"
    )
    floors = {name: summarise(runs[name], 202) for name, _ in FLOORS}
    # DESIGN.md's budget: the intake against the durable floor (insert + publish) of this run.
    floor = floors[DURABLE_FLOOR]
    ratio = intake["rps"] / floor["rps"] if floor["rps"] else 0.0
    for name, figures in (
        ("bare JSON view", bare),
        *floors.items(),
        ("password-resend intake", intake),
    ):
        share = figures["rps"] / bare["rps"] if bare["rps"] else 0.0
        print(
            f"  {name:26s} {figures['rps']:8.1f} req/s ({share:4.2f} of bare)  "
            f"p50 {figures['p50_ms']:6.1f} ms  p95 {figures['p95_ms']:6.1f} ms  "
            f"({figures['requests']} requests, statuses {figures['statuses']})"
        )
    print(f"  intake/floor ratio: {ratio:.2f} (budget >= 0.50): {verdict(ratio >= 0.5)}")
    print(
        "  web worker peak RSS: "
        + ", ".join(f"pid {pid} {mb:.1f} MB" for pid, mb in sorted(workers_mb.items()))
        + f" (budget <= 120 MB): {verdict(web_peak <= 120)}"
    )
    errors = sum(n for code, n in intake["statuses"].items() if code != 202)
    record(
        "intake",
        [
            row(
                "bare JSON view",
                f"{bare['rps']:.0f} req/s, p50 {bare['p50_ms']:.1f} ms, "
                f"p95 {bare['p95_ms']:.1f} ms",
            ),
            row(
                "password-resend intake",
                f"{intake['rps']:.0f} req/s, p50 {intake['p50_ms']:.1f} ms, "
                f"p95 {intake['p95_ms']:.1f} ms, {errors} non-202",
            ),
            *(
                row(
                    name,
                    f"{f['rps']:.0f} req/s ({f['rps'] / bare['rps']:.2f} of bare), "
                    f"p50 {f['p50_ms']:.1f} ms",
                )
                for name, f in floors.items()
                if bare["rps"]
            ),
            row("intake/floor throughput", f"{ratio:.2f}", ">= 0.50", verdict(ratio >= 0.5)),
            row("web worker peak RSS", f"{web_peak:.1f} MB", "<= 120 MB", verdict(web_peak <= 120)),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
