"""Fault injection: Redis outage, killed worker, flaky ESP, stalled OpenSRS.

Each test prints `passed` or `failed` with its counts; the exit status is 1 if any failed.
Run: .venv/bin/python bench/faults.py [--only redis,kill,flaky,opensrs]
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
import json
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from bench.common import (
    BIN,
    DATABASE_URL,
    OUT,
    PYTHON,
    PrivateRedis,
    Proc,
    bench_env,
    django_setup,
    free_port,
    migrate,
    record,
    row,
    start_worker,
    wait_port,
    wait_until,
    wait_worker,
)

REDIS_PORT = int(os.environ.get("BENCH_FAULT_REDIS_PORT", "6391"))
OPENSRS_PORT = free_port()
SWEEP_AFTER_SECONDS = 1
STALE_AFTER_SECONDS = 5
OPENSRS_READ_TIMEOUT = 2
WEBHOOK_SECRET = "bench:bench-webhook-secret"  # noqa: S105
HANDED_OVER = ("sent", "delivered")


# Its own database, as notifications.py has: what the faults write must not join the staff
# cases' seeded tickets.
FAULTS_DATABASE_URL = DATABASE_URL + "_faults"


def fault_env(**extra: str) -> dict[str, str]:
    """Settings shared by this driver and the workers it starts."""
    return bench_env(
        DATABASE_URL=FAULTS_DATABASE_URL,
        REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
        EMAIL_BACKEND="bench.esp.EmailBackend",
        NOTIFICATION_SWEEP_AFTER_SECONDS=str(SWEEP_AFTER_SECONDS),
        BENCH_SENDING_STALE_AFTER_SECONDS=str(STALE_AFTER_SECONDS),
        NOTIFICATION_MAX_ATTEMPTS="50",
        BENCH_NOTIFICATION_BACKOFF_SECONDS="0.2",
        OPENSRS_URL=f"http://127.0.0.1:{OPENSRS_PORT}/",
        OPENSRS_READ_TIMEOUT=str(OPENSRS_READ_TIMEOUT),
        OPENSRS_CONNECT_TIMEOUT="2",
        OPENSRS_RETRY_BACKOFF="0.2",
        ANYMAIL_WEBHOOK_SECRET=WEBHOOK_SECRET,
        **extra,
    )


class EspLog:
    """The bench ESP's per-test log files."""

    def __init__(self, name: str) -> None:
        self.base = OUT / f"esp-{name}"
        for suffix in (".sent", ".failed"):
            Path(str(self.base) + suffix).unlink(missing_ok=True)

    def lines(self, suffix: str) -> list[str]:
        path = Path(str(self.base) + suffix)
        return path.read_text().split() if path.exists() else []

    def accepted(self) -> list[dict]:
        """Every email the ESP accepted, in order (one JSON object per line)."""
        path = Path(str(self.base) + ".sent")
        text = path.read_text() if path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line]

    def sent(self) -> Counter:
        return Counter(entry["message_id"] for entry in self.accepted())

    def failed(self) -> int:
        return len(self.lines(".failed"))


def delivery(ids: list[int], esp: EspLog) -> dict[str, int]:
    """How the rows `ids` went out: sent once, twice or more, never; and DB status."""
    from tickets.emails import notification_message_id
    from tickets.models import Notification

    rows = list(Notification.objects.filter(pk__in=ids))
    sends = esp.sent()
    counts = [sends.get(notification_message_id(row), 0) for row in rows]
    return {
        "rows": len(rows),
        "sent_once": sum(1 for c in counts if c == 1),
        "duplicates": sum(1 for c in counts if c > 1),
        "never": sum(1 for c in counts if c == 0),
        "db_sent": sum(1 for row in rows if row.status in HANDED_OVER),
        "attempts": sum(row.attempts for row in rows),
    }


def sweep_until_sent(ids: list[int], timeout: float, every: float = 2.0) -> float:
    """Run the outbox sweep until every row is sent; return the seconds it took."""
    from tickets.models import Notification
    from tickets.services import notifications_requeue_due

    started = time.monotonic()
    rows = Notification.objects.filter(pk__in=ids)
    shown = started
    while time.monotonic() - started < timeout:
        if rows.exclude(status__in=HANDED_OVER).count() == 0:
            break
        requeued = notifications_requeue_due()
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            states = dict(Counter(rows.values_list("status", flat=True)))
            print(f"  {shown - started:.0f} s: {states}, sweep re-queued {requeued}")
        time.sleep(every)
    return time.monotonic() - started


class EspEventFeed:
    """The ESP's delivery webhooks: each accepted email is reported to our tracking URL.

    A real ESP posts these within seconds; they are how a send whose worker died before
    recording it is recognised, instead of being sent again once its claim goes stale.
    Postmark's payload, through the real webhook view (anymail's parsing, our receiver).
    """

    def __init__(self, esp: EspLog, every: float = 0.2) -> None:
        self.esp, self.every, self.posted, self.errors = esp, every, 0, 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EspEventFeed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(30)

    def _run(self) -> None:
        import base64

        from django.db import connection
        from django.test import Client

        client = Client()
        auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
        try:
            while True:
                stopping = self._stopping.wait(self.every)
                for entry in self.esp.accepted()[self.posted :]:
                    payload = {
                        "RecordType": "Delivery",
                        "MessageStream": "outbound",
                        "MessageID": entry["message_id"],
                        "Recipient": entry["to"],
                        "DeliveredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "Details": "bench ESP",
                        "Tag": "",
                        "Metadata": entry["metadata"],
                    }
                    response = client.post(
                        "/anymail/postmark/tracking/",
                        json.dumps(payload),
                        content_type="application/json",
                        HTTP_AUTHORIZATION=auth,
                    )
                    self.posted += 1
                    self.errors += response.status_code != 200
                if stopping:
                    return
        finally:
            connection.close()


def report(name: str, ok: bool, detail: str, results: list) -> bool:
    print(f"{name}: {'passed' if ok else 'failed'} ({detail})")
    results.append(row(f"fault: {name}", detail, "", "passed" if ok else "FAILED"))
    return ok


# --- 1. Redis outage ------------------------------------------------------------------------


class SupervisedWorker:
    """A worker started again whenever it exits, as a process manager (Restart=always) would.

    Celery's worker can exit on a broker outage ("Unrecoverable error" from kombu's Redis
    transport when an ack meets the lost connection); production runs it supervised too.
    """

    def __init__(self, name: str, env: dict[str, str], queues: str) -> None:
        self.name, self.env, self.queues, self.restarts = name, env, queues, 0
        self.proc = self._start()
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._supervise, daemon=True)
        self._watch.start()

    def _start(self) -> Proc:
        return start_worker(self.name, self.env, queues=self.queues)

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            if not self.proc.alive():
                self.restarts += 1
                self.proc = self._start()

    def stop(self) -> None:
        self._stopping.set()
        self._watch.join(5)
        self.proc.stop()


def procfile_workers(name: str, env: dict[str, str]) -> list[SupervisedWorker]:
    """The two workers of the Procfile: notifications on `celery`, OpenSRS calls on `opensrs`.

    One worker serving both queues would let OpenSRS tasks waiting for their call slot hold
    every pool process while the notifications queue behind them.
    """
    return [
        SupervisedWorker(name, env, queues="celery"),
        SupervisedWorker(f"{name}-resend", env, queues="opensrs"),
    ]


def fault_redis_outage(redis: PrivateRedis, results: list, requests: int = 500) -> bool:
    """Stop Redis for 10 s while `requests` password-resend requests arrive through the service."""
    from domains.fake_opensrs import FakeOpenSRS
    from tickets.models import Notification, Ticket
    from tickets.services import password_resend_requeue_due, request_password_resend

    esp = EspLog("redis")
    # The fake OpenSRS takes any rate: the limit is raised so the 1,000 calls of 500 resends
    # are not spread over 17 minutes (60 a minute), and the fault measures the recovery.
    env = fault_env(BENCH_ESP_LOG=str(esp.base), OPENSRS_MAX_CALLS_PER_MINUTE="5000")
    supervised = procfile_workers("fault-redis", env)
    opensrs = FakeOpenSRS("127.0.0.1", OPENSRS_PORT).start()
    accepted: list[str] = []
    refused: list[str] = []
    slowest: list[float] = []
    lock = threading.Lock()
    try:
        if not all(wait_worker(worker.proc, 60) for worker in supervised):
            return report("redis outage", False, "a worker did not start", results)
        duration, threads = 20.0, 4
        per_thread = requests // threads
        started = time.monotonic()

        def submit(t: int) -> None:
            try:
                _submit(t)
            finally:
                from django.db import connection

                connection.close()

        def _submit(t: int) -> None:
            for i in range(per_thread):
                delay = started + i * duration / per_thread - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                began = time.monotonic()
                try:
                    ticket = request_password_resend(
                        domain=f"outage-{t}-{i}.test",
                        contact_email=f"outage-{t}-{i}@example.test",
                        client_key="127.0.0.1",
                        actor="anonymous",
                        channel=Ticket.Channel.API,
                    )
                    with lock:
                        accepted.append(ticket.reference)
                        slowest.append(time.monotonic() - began)
                except Exception as exc:
                    with lock:
                        refused.append(type(exc).__name__)

        workers = [threading.Thread(target=submit, args=(t,)) for t in range(threads)]
        for thread in workers:
            thread.start()
        time.sleep(5)
        redis.stop()
        down_at = time.monotonic()
        time.sleep(10)
        redis.start()
        print(f"  redis was down {time.monotonic() - down_at:.1f} s")
        for thread in workers:
            thread.join(120)
        found = Ticket.objects.filter(reference__in=accepted).count()
        ids = list(
            Notification.objects.filter(ticket__reference__in=accepted).values_list("pk", flat=True)
        )
        took = sweep_until_sent(ids, 120)
        outcome = delivery(ids, esp)
        # The resends whose OpenSRS task was not queued during the outage wait as `new`, until
        # the resend sweep (run by beat every minute) queues them.
        waiting = Ticket.objects.filter(reference__in=accepted, status="new")
        stuck = waiting.count()
        swept_at = last_sweep = time.monotonic()
        password_resend_requeue_due(batch_size=1000)  # all of them at once (beat: 200 a minute)
        while waiting.exists() and time.monotonic() - swept_at < 120:
            # Again only after a while, as beat does: a queued ticket is still `new` until its
            # task runs, and would be queued twice.
            if time.monotonic() - last_sweep >= 30:
                last_sweep = time.monotonic()
                password_resend_requeue_due(batch_size=1000)
            time.sleep(0.5)
        worked = len(accepted) - waiting.count()
        resend_took = time.monotonic() - swept_at
    finally:
        for worker in supervised:
            worker.stop()
        opensrs.stop()
    restarts = sum(worker.restarts for worker in supervised)
    ok = (
        found == len(accepted)
        and outcome["sent_once"] == outcome["rows"] == outcome["db_sent"] == len(accepted)
        and outcome["duplicates"] == 0
        and worked == len(accepted)
    )
    detail = (
        f"{len(accepted)} accepted, {len(refused)} refused, {found} tickets found; "
        f"{outcome['rows']} notifications: {outcome['sent_once']} sent once, "
        f"{outcome['duplicates']} twice or more, {outcome['never']} never, "
        f"{outcome['rows'] - outcome['db_sent']} not marked sent in the database; "
        f"slowest request {max(slowest or [0]):.1f} s; swept out {took:.0f} s after the last; "
        f"{stuck} resend tickets still `new` then (their OpenSRS task was not queued), and "
        f"{worked}/{len(accepted)} worked {resend_took:.0f} s after the resend sweep started; "
        f"workers restarted {restarts} times by their supervisor"
    )
    return report("redis outage", ok, detail, results)


# --- 2. worker killed -----------------------------------------------------------------------


def fault_worker_killed(results: list, count: int = 1000) -> bool:
    from bench.workload import enqueue, pending_rows
    from tickets.models import ActionLog, Notification

    esp = EspLog("kill")
    # The ESP answers 50 ms after it has the email, so most sends in flight at the kill are
    # in the ESP's hands but not yet recorded: the case that would otherwise be sent twice.
    env = fault_env(BENCH_ESP_LOG=str(esp.base), BENCH_ESP_ANSWER_DELAY_MS="50")
    ids = pending_rows(count, "kill")
    worker = start_worker("fault-kill", env, concurrency=4)
    second = None
    try:
        with EspEventFeed(esp) as feed:
            if not wait_worker(worker, 60):
                return report("worker SIGKILL", False, "worker did not start", results)
            enqueue(ids)
            rows = Notification.objects.filter(pk__in=ids)
            wait_until(
                lambda: rows.filter(status__in=HANDED_OVER).count() >= count * 0.4, 120, 0.05
            )
            worker.kill()
            at_kill = dict(Counter(rows.values_list("status", flat=True)))
            in_flight = list(rows.filter(status="sending").values_list("pk", flat=True))
            second = start_worker("fault-kill-2", env, concurrency=4)
            if not wait_worker(second, 60):
                return report("worker SIGKILL", False, "restarted worker did not start", results)
            time.sleep(STALE_AFTER_SECONDS + 1)
            took = sweep_until_sent(ids, 120)
        outcome = delivery(ids, esp)
        in_flight_twice = delivery(in_flight, esp)["duplicates"] if in_flight else 0
        uuids = [
            str(u)
            for u in Notification.objects.filter(pk__in=in_flight).values_list("uuid", flat=True)
        ]
        from_events = ActionLog.objects.filter(
            action="notification.sent",
            details__notification__in=uuids,
            details__has_key="recorded_from",
        ).count()
    finally:
        worker.stop()
        if second is not None:
            second.stop()
    ok = outcome["sent_once"] == count and outcome["duplicates"] == 0 and feed.errors == 0
    detail = (
        f"killed with rows {at_kill}; after restart + sweep: {outcome['sent_once']}/{count} "
        f"sent once, {outcome['duplicates']} twice or more ({in_flight_twice} of them in flight "
        f"at the kill), {outcome['never']} never ({took:.0f} s after restart); of the "
        f"{len(in_flight)} in flight at the kill, {from_events} were handed over but not yet "
        f"recorded, and were recorded from the ESP's delivery events ({feed.posted} events, "
        f"{feed.errors} refused)"
    )
    return report("worker SIGKILL", ok, detail, results)


# --- 3. flaky ESP ---------------------------------------------------------------------------


def fault_flaky_esp(results: list, count: int = 1000) -> bool:
    from bench.workload import enqueue, pending_rows
    from tickets.models import Notification

    esp = EspLog("flaky")
    ids = pending_rows(count, "flaky")
    worker = start_worker(
        "fault-flaky", fault_env(BENCH_ESP_LOG=str(esp.base), BENCH_ESP_FAIL_RATE="0.3")
    )
    try:
        if not wait_worker(worker, 60):
            return report("flaky ESP", False, "worker did not start", results)
        started = time.monotonic()
        enqueue(ids)
        rows = Notification.objects.filter(pk__in=ids)
        wait_until(lambda: rows.exclude(status="sent").count() == 0, 240, 0.5)
        took = time.monotonic() - started
        outcome = delivery(ids, esp)
        failed_rows = rows.filter(status="failed").count()
    finally:
        worker.stop()
    failures = esp.failed()
    ok = (
        outcome["sent_once"] == count
        and outcome["duplicates"] == 0
        and failures == outcome["attempts"] - count
    )
    detail = (
        f"{outcome['sent_once']}/{count} sent once, {outcome['duplicates']} twice or more, "
        f"{failed_rows} given up; {failures} injected failures "
        f"({failures / max(1, failures + count):.0%} of sends), "
        f"{outcome['attempts']} attempts recorded; all out in {took:.0f} s"
    )
    return report("flaky ESP", ok, detail, results)


# --- 4. OpenSRS stalls ----------------------------------------------------------------------


def _control(url: str, payload: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        url + "_control",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def fault_opensrs_stall(results: list, resends: int = 4, others: int = 50) -> bool:
    from bench.workload import ticket_with_notification
    from tickets.models import ActionLog, Notification, Ticket
    from tickets.services import request_password_resend

    esp = EspLog("opensrs")
    calls_log = OUT / "opensrs-calls.jsonl"
    calls_log.unlink(missing_ok=True)
    url = f"http://127.0.0.1:{OPENSRS_PORT}/"
    fake = Proc(
        "fake-opensrs",
        [
            PYTHON,
            "manage.py",
            "fake_opensrs",
            "--port",
            str(OPENSRS_PORT),
            "--calls-log",
            str(calls_log),
        ],
        env=fault_env(BENCH_ESP_LOG=str(OUT / "esp-opensrs-own-mail")),
    )
    # As in the Procfile: emails on one worker, OpenSRS calls on another.
    worker = start_worker("fault-opensrs", fault_env(BENCH_ESP_LOG=str(esp.base)), queues="celery")
    # One resend process per ticket, so each shows its error within the stall.
    resend_worker = start_worker(
        "fault-opensrs-resend",
        fault_env(BENCH_ESP_LOG=str(esp.base)),
        concurrency=resends,
        queues="opensrs",
    )
    stall_seconds = 20.0
    try:
        if (
            not wait_port(OPENSRS_PORT, 30)
            or not wait_worker(worker, 60)
            or not wait_worker(resend_worker, 60)
        ):
            return report("OpenSRS stall", False, "fake OpenSRS or worker did not start", results)
        _control(url, {"fault": "stall", "delay": stall_seconds + 10})
        stall_started = time.monotonic()
        domains = ["alice-shop.test", "bob-reseller.test"]
        tickets = [
            request_password_resend(
                domain=domains[i % 2],
                contact_email=f"stall-{i}@example.test",
                client_key="127.0.0.1",
                actor="anonymous",
                channel=Ticket.Channel.API,
            )
            for i in range(resends)
        ]
        time.sleep(1.0)
        ids = [ticket_with_notification(i, "stall").pk for i in range(others)]
        rows = Notification.objects.filter(pk__in=ids)
        remaining = stall_seconds - (time.monotonic() - stall_started)
        wait_until(lambda: rows.filter(status="sent").count() == others, max(1.0, remaining))
        sent_during_stall = rows.filter(status="sent").count()
        sent_after = time.monotonic() - stall_started
        ticket_ids = [t.pk for t in tickets]
        errors = (
            ActionLog.objects.filter(ticket_id__in=ticket_ids, action="resend.opensrs_error")
            .values("ticket_id")
            .distinct()
        )
        # Each resend gives up on the stalled server after its read timeouts and says so.
        remaining = stall_seconds - (time.monotonic() - stall_started)
        wait_until(lambda: errors.count() == resends, max(1.0, remaining), 0.5)
        errors_seen = errors.count()
        wait_until(lambda: time.monotonic() - stall_started >= stall_seconds, stall_seconds)
        _control(url, {"fault": None})
        cleared = time.monotonic()
        resolved = Ticket.objects.filter(pk__in=ticket_ids, status="resolved")
        wait_until(lambda: resolved.count() == resends, 180, 1.0)
        done = resolved.count()
        took = time.monotonic() - cleared
        statuses = dict(
            Counter(Ticket.objects.filter(pk__in=ticket_ids).values_list("status", flat=True))
        )
    finally:
        worker.stop()
        resend_worker.stop()
        fake.stop()
    calls = (
        [json.loads(line) for line in calls_log.read_text().splitlines()]
        if calls_log.exists()
        else []
    )
    send_password_ok = sum(
        1 for c in calls if c.get("action") == "SEND_PASSWORD" and c.get("response_code") == 200
    )
    ok = (
        sent_during_stall == others
        and errors_seen == resends
        and done == resends
        and send_password_ok == resends
    )
    detail = (
        f"during a {stall_seconds:.0f} s stall: {sent_during_stall}/{others} other notifications "
        f"sent (last at {sent_after:.1f} s), {errors_seen}/{resends} resend tickets show "
        f"resend.opensrs_error; after it cleared: {done}/{resends} resolved in {took:.0f} s "
        f"({statuses}), SEND_PASSWORD answered 200 {send_password_ok}x for {resends} tickets"
    )
    return report("OpenSRS stall", ok, detail, results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="redis,kill,flaky,opensrs")
    args = parser.parse_args()
    chosen = set(args.only.split(","))

    migrate(FAULTS_DATABASE_URL)
    redis = PrivateRedis(REDIS_PORT).start()
    results: list = []
    outcomes: list[bool] = []
    try:
        os.environ.update(fault_env())
        django_setup(**fault_env())
        print(f"private redis-server on 127.0.0.1:{REDIS_PORT}; celery from {BIN}")
        if "redis" in chosen:
            outcomes.append(fault_redis_outage(redis, results))
        for name, test in (
            ("kill", fault_worker_killed),
            ("flaky", fault_flaky_esp),
            ("opensrs", fault_opensrs_stall),
        ):
            if name in chosen:
                redis.stop()
                redis.start()
                outcomes.append(test(results))
    finally:
        redis.stop()
    record("faults", results)
    failed = outcomes.count(False)
    print(f"faults: {len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
