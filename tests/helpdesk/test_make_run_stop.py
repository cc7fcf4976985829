"""`make run`'s processes (Procfile.dev under honcho) stop on Ctrl-C within 5 s, without errors.

The processes run with the embedded defaults (filesystem broker, no Redis), as after `make run`
on a fresh machine, against the test database. Only the two ports of Procfile.dev are changed,
to free ones, so that a `make run` on the same machine does not get in the way.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from kombu import Connection, Exchange, Queue

from helpdesk import embedded_broker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BIN = Path(sys.executable).parent
STOP_BUDGET_SECONDS = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _descendants(pid: int) -> list[int]:
    """The processes started by `pid`, by their children, and so on."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    found, wanted = [], {pid}
    while wanted:
        wanted = {child for child, parent in parents.items() if parent in wanted}
        found += sorted(wanted)
    return found


def _run_then_ctrl_c(tmp_path: Path, *processes: str) -> tuple[float, str]:
    """Start Procfile.dev's `processes` (all when none) under honcho; Ctrl-C once all are up."""
    web_port, opensrs_port = _free_port(), _free_port()
    procfile = (Path(settings.BASE_DIR) / "Procfile.dev").read_text()
    assert "127.0.0.1:8000" in procfile and "--port 8001" in procfile
    procfile = procfile.replace("127.0.0.1:8000", f"127.0.0.1:{web_port}")
    procfile = procfile.replace("--port 8001", f"--port {opensrs_port}")
    (tmp_path / "Procfile").write_text(procfile)
    (tmp_path / "empty.env").write_text("")
    names = processes or ("web", "worker", "resend", "beat", "opensrs")

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "CACHE_URL", "HELPDESK_TESTING", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env['PATH']}",
        DEBUG="1",
        ENV_FILE="",  # a developer's .env must not decide what the test runs
        VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=_database_url(),
        SITE_URL=f"http://127.0.0.1:{web_port}",
        OPENSRS_URL=f"http://127.0.0.1:{opensrs_port}/",
        PYTHONUNBUFFERED="1",
    )
    honcho = subprocess.Popen(  # noqa: S603 - our own argument list
        [
            str(BIN / "honcho"),
            "--procfile",
            str(tmp_path / "Procfile"),
            "--app-root",
            str(settings.BASE_DIR),
            "--env",
            str(tmp_path / "empty.env"),
            "start",
            *processes,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(honcho.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _all_up(names, "".join(lines), web_port):
                break
            assert honcho.poll() is None, "".join(lines)
            time.sleep(0.2)
        else:
            pytest.fail("make run's processes did not start:\n" + "".join(lines))

        started = time.monotonic()
        os.killpg(honcho.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        while (honcho.poll() is None or _process_group_alive(honcho.pid)) and (
            time.monotonic() - started < 20
        ):
            time.sleep(0.05)
        stopped_after = time.monotonic() - started
    finally:
        # Honcho starts each process in a session of its own: killed alone (a failed start),
        # it would leave them running, holding their ports, for the rest of the suite.
        started_by_honcho = _descendants(honcho.pid)
        if _process_group_alive(honcho.pid):
            os.killpg(honcho.pid, signal.SIGKILL)
        for pid in started_by_honcho:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        honcho.wait(timeout=10)
        reader.join(timeout=5)
    return stopped_after, "".join(lines)


def _all_up(names: tuple[str, ...], output: str, web_port: int) -> bool:
    for name in {"worker", "resend"} & set(names):
        if not re.search(rf"{name}@\S* ready", output):
            return False
    if "beat" in names and "beat: Starting" not in output:
        return False
    if "web" in names:
        try:
            return requests.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).ok
        except requests.RequestException:  # not listening yet, or too busy to answer in 2 s
            return False
    return True


def test_ctrl_c_stops_every_process_within_budget_and_without_errors(tmp_path):
    stopped_after, output = _run_then_ctrl_c(tmp_path)

    assert stopped_after < STOP_BUDGET_SECONDS, f"{stopped_after:.1f} s\n{output}"
    assert "SIGKILL" not in output, output  # honcho did not have to force anything
    errors = [line for line in output.splitlines() if re.search(r"\bERROR\b|Traceback", line)]
    assert errors == [], output
    for name in ("web", "worker", "resend", "beat"):
        assert re.search(rf"{name}\.1 stopped \(rc=0\)", output), output


def test_the_embedded_broker_waits_for_messages_a_quarter_second_at_a_time(tmp_path):
    # Celery's loop for this broker asks for messages with a 2 s wait, and once more after a
    # warm shutdown is asked for: each wait is what Ctrl-C waits for, per worker.
    folder = tmp_path / "broker"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder),
    }
    with Connection(
        "filesystem://", transport=embedded_broker.Transport, transport_options=options
    ) as broker:
        queue = Queue("nothing-here", Exchange("nothing-here"), "nothing-here")
        with broker.Consumer(queue, callbacks=[lambda body, message: None]):
            started = time.monotonic()
            with pytest.raises(socket.timeout):
                broker.drain_events(timeout=2.0)
            waited = time.monotonic() - started

    assert waited < embedded_broker.LONGEST_WAIT_SECONDS + 1.0 < 2.0


def test_the_embedded_broker_shows_a_message_to_workers_only_once_it_is_whole(
    tmp_path, monkeypatch
):
    # given the broker's folder, and what a worker would list there just before the message
    # file takes its name
    folder = tmp_path / "broker"
    folder.mkdir()
    options = {
        name: str(folder) for name in ("data_folder_in", "data_folder_out", "control_folder")
    }
    listed: list[list[str]] = []
    rename = os.replace

    def rename_seen(source, target):
        listed.append(sorted(os.listdir(folder)))
        rename(source, target)

    monkeypatch.setattr(os, "replace", rename_seen)
    received: list[object] = []
    with Connection(
        "filesystem://", transport=embedded_broker.Transport, transport_options=options
    ) as broker:
        queue = Queue("work", Exchange("work"), "work")
        with broker.Consumer(queue, callbacks=[lambda body, message: received.append(body)]):
            # when a task is published
            broker.Producer().publish(
                {"task": "x" * 100_000}, exchange=queue.exchange, routing_key="work"
            )
            broker.drain_events(timeout=2.0)

    # then no message file a worker takes existed before it was complete, and it arrives whole
    assert listed and all(not name.endswith(".msg") for names in listed for name in names)
    assert received == [{"task": "x" * 100_000}]


def _names(*names: str) -> list[str]:
    """Names no other test used: kombu remembers each process's bindings, not each folder's."""
    run = uuid.uuid4().hex[:8]
    return [f"{name}-{run}" for name in names]


def _broker(folder: Path) -> Connection:
    options = {
        name: str(folder) for name in ("data_folder_in", "data_folder_out", "control_folder")
    }
    return Connection(
        "filesystem://", transport=embedded_broker.Transport, transport_options=options
    )


def test_a_worker_starting_while_another_creates_the_exchange_table_binds_its_queue(tmp_path):
    # given the exchange's table just created by a worker starting beside this one, not yet
    # written (make run starts two workers at once; kombu's own bind read it as bad JSON and the
    # worker stopped)
    folder = tmp_path / "broker"
    folder.mkdir()
    exchange, work, other = _names("table", "work", "other")
    (folder / f"{exchange}.exchange").write_bytes(b"")

    # when this worker binds its queue, and another queue is bound from a second connection
    with _broker(folder) as first, _broker(folder) as second:
        Queue(work, Exchange(exchange), work)(first.default_channel).declare()
        Queue(other, Exchange(exchange), other)(second.default_channel).declare()

        # then both queues are in the table, and a message reaches the worker's
        table = json.loads((folder / f"{exchange}.exchange").read_text())
        assert sorted(row[2] for row in table) == sorted([other, work])
        first.Producer().publish({"n": 1}, exchange=Exchange(exchange), routing_key=work)
        received: list[dict] = []
        with first.Consumer(
            Queue(work, Exchange(exchange), work),
            callbacks=[lambda body, message: received.append(body) or message.ack()],
        ):
            first.drain_events(timeout=2.0)
        assert received == [{"n": 1}]


def test_workers_binding_at_once_lose_no_binding(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    errors: list[BaseException] = []
    start = threading.Barrier(8)
    exchange, *queues = _names("table", *(f"q{n}" for n in range(8)))

    def bind(number: int) -> None:
        try:
            with _broker(folder) as broker:
                start.wait()
                queue = queues[number]
                Queue(queue, Exchange(exchange), queue)(broker.default_channel).declare()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bind, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    table = json.loads((folder / f"{exchange}.exchange").read_text())
    assert sorted(row[2] for row in table) == sorted(queues)
