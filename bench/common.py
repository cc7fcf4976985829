"""Shared plumbing for the benchmarks: processes, ports, Redis, memory sampling, results."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
OUT = ROOT / "var" / "bench"
RESULTS = OUT / "results.json"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hd_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789"  # noqa: S105
LOOPBACK = "127.0.0.1"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bench_env(**overrides: str) -> dict[str, str]:
    """The environment of every bench process: DEBUG=0, PostgreSQL, Redis, bench settings."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        LOG_LEVEL="WARNING",
        # DEBUG=0 against the fakes (OpenSRS on http, the test ESP), which a production start
        # refuses; the test flag lets them through and keeps the checkout's .env out.
        HELPDESK_TESTING="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(overrides)
    return env


def django_setup(**overrides: str) -> None:
    """Configure this process like the bench servers and set Django up."""
    os.environ.update(bench_env(**overrides))
    import django

    django.setup()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.5):
            return True
        time.sleep(0.1)
    return False


class Proc:
    """A child process in its own process group, stopped (group-wide) by stop()."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = OUT / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env or bench_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(5)
        # Children left in the group (e.g. a pool process) go too.
        self.signal_group(signal.SIGKILL)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash or an OOM kill would."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in reversed(procs):
            proc.stop()


# --- Redis ----------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own on a loopback port, without persistence."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> PrivateRedis:
        OUT.mkdir(parents=True, exist_ok=True)
        self.proc = Proc(
            f"redis-{self.port}",
            [
                "redis-server",
                "--bind",
                LOOPBACK,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(OUT),
            ],
            env=dict(os.environ),
        )
        if not wait_port(self.port, 10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


def redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- memory ---------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/<pid>/task/*/children, else a /proc scan)."""
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        children: list[int] = []
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children += [int(c) for c in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
        todo += children
    return result


class MemorySampler:
    """Sample VmRSS and VmHWM of a process tree every `interval` s; keep each pid's peak."""

    def __init__(self, root_pid: int, interval: float = 0.2) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.peak_kb: dict[int, int] = {}
        self.peak_tree_kb = 0
        # Proportional set size: shared (fork copy-on-write) pages counted once across the tree.
        self.peak_tree_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = pss = 0
        for pid in process_tree(self.root_pid):
            rss = _status_kb(pid, "VmRSS")
            hwm = _status_kb(pid, "VmHWM")
            total += rss
            pss += _pss_kb(pid)
            self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), rss, hwm)
        self.peak_tree_kb = max(self.peak_tree_kb, total)
        self.peak_tree_pss_kb = max(self.peak_tree_pss_kb, pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def peaks_mb(self, exclude: set[int] | None = None) -> dict[int, float]:
        return {pid: kb / 1024 for pid, kb in self.peak_kb.items() if pid not in (exclude or set())}


# --- figures and results --------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def record(section: str, rows: list[dict[str, Any]]) -> None:
    """Store a section's summary rows for run_all's table (latest run wins)."""
    OUT.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = {"at": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    RESULTS.write_text(json.dumps(data, indent=2))


def row(what: str, figure: str, budget: str = "", verdict: str = "") -> dict[str, Any]:
    return {"what": what, "figure": figure, "budget": budget, "verdict": verdict}


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "not measured"
    return "pass" if ok else "MISS"


def migrate(url: str = DATABASE_URL) -> None:
    """Create the bench database (or the one at `url`) when missing and migrate it."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=bench_env(DATABASE_URL=url),
        check=True,
    )


def drop_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def loop_seconds() -> float:
    """How long this machine takes for a 10-million-step Python loop (best of three).

    Staff-page budgets are in milliseconds, and these machines differ by two times or more from
    one day to the next: this figure says which kind of day a run had.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for step in range(10_000_000):
            total += step
        best = min(best, time.perf_counter() - started)
    return best


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = _status_kb_meminfo()
    return f"{os.cpu_count()} CPUs ({model}), {mem_kb / 1024 / 1024:.1f} GiB RAM"


def _status_kb_meminfo() -> int:
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


# --- Celery worker --------------------------------------------------------------------------


def start_worker(
    name: str, env: dict[str, str], concurrency: int = 2, queues: str = "celery,opensrs"
) -> Proc:
    """One Celery worker process tree (prefork pool) with the given environment and queues."""
    return Proc(
        name,
        [
            str(BIN / "celery"),
            "-A",
            "helpdesk",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}@bench",
        ],
        env=env,
    )


def wait_worker(proc: Proc, timeout: float = 60.0) -> bool:
    """Wait until the worker answers a ping over the broker (needs Django set up here)."""
    from helpdesk.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.alive():
        with contextlib.suppress(Exception):
            replies = app.control.ping(timeout=1.0, destination=[f"{proc.name}@bench"])
            if replies:
                return True
        time.sleep(0.3)
    return False


def wait_until(check, timeout: float, interval: float = 0.25) -> bool:
    """Poll `check()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())
