"""Integration: a real Celery worker consumes the real broker (Redis in CI)."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from rest_framework.test import APIClient

from helpdesk.celery import app as celery_app
from tests.broker import broker_unreachable
from tests.factories import TicketFactory
from tests.markers import postgresql_only
from tickets import services, tasks
from tickets.models import Notification, Ticket

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def worker(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as w:
        yield w


def test_broker_down_at_commit_loses_nothing(alice, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)
    with broker_unreachable():
        ticket = services.request_general(
            subject="Broker outage", body="hello", contact_email=alice.email, actor=alice
        )
    notification = Notification.objects.get(ticket=ticket)
    assert notification.status == "pending"  # the ticket and its email are saved

    # The broker is back: the periodic sweep re-queues the row and the worker sends it.
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert services.notifications_requeue_due() == 1
        assert _wait_for(lambda: Notification.objects.get(pk=notification.pk).status == "sent")
    assert [m.to for m in mail.outbox] == [[alice.email]]


def test_the_sweep_sends_what_the_broker_missed(alice, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)
    ticket = TicketFactory(customer=alice)
    # Written without a task: as if the publish at commit had failed.
    Notification.objects.create(
        ticket=ticket,
        template="ticket_received",
        recipient=alice.email,
        context={"reference": ticket.reference, "subject": "x"},
        idempotency_key="missed-1",
        next_attempt_at=ticket.created_at,
    )
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert services.notifications_requeue_due() == 1
        assert _wait_for(
            lambda: Notification.objects.get(idempotency_key="missed-1").status == "sent"
        )
    assert len(mail.outbox) == 1


def test_opensrs_calls_have_their_own_queue_and_outlast_their_timeouts(settings):
    # A stalled OpenSRS must not take the slots that send emails (Procfile: worker / resend).
    router = celery_app.amqp.router
    assert router.route({}, "tickets.password_resend_process")["queue"].name == "opensrs"
    assert router.route({}, "tickets.notification_send")["queue"].name == "celery"
    consumed = {queue.name for queue in celery_app.amqp.queues.values()}
    assert consumed == {"celery", "opensrs"}  # a worker without --queues serves both

    # The soft limit must not cut SEND_PASSWORD off after a slow but legal GET DOMAIN.
    task = tasks.password_resend_process
    one_call = settings.OPENSRS_CONNECT_TIMEOUT + settings.OPENSRS_READ_TIMEOUT
    slowest_run = (1 + settings.OPENSRS_READ_RETRIES) * one_call + one_call
    assert task.soft_time_limit > slowest_run
    assert task.time_limit > task.soft_time_limit
    assert tasks.notification_send.soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT


# SQLite's connections are not kept between tasks (no CONN_MAX_AGE): reopening a file costs
# nothing, so what passed there before was a new connection object at the old one's address.
@postgresql_only("connections kept by CONN_MAX_AGE, told apart by the server's session id")
def test_the_worker_keeps_its_database_connection_between_tasks(worker, alice):
    # Celery's Django fixup would open a new PostgreSQL connection for every email.
    from celery.signals import task_postrun
    from django.db import connection

    connections_used = []

    def record(**kwargs) -> None:
        session = None
        if connection.vendor == "postgresql":  # the server's id of this session
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                session = cursor.fetchone()[0]
        connections_used.append((id(connection.connection), session))

    task_postrun.connect(record, weak=False)
    try:
        tickets = [
            services.request_general(
                subject=f"Question {i}", body="hello", contact_email=alice.email, actor=alice
            )
            for i in range(3)
        ]
        sent = Notification.objects.filter(ticket__in=tickets, status="sent")
        assert _wait_for(lambda: sent.count() == 3)
        # A task's row is committed before its postrun signal runs: wait for the last signal.
        assert _wait_for(lambda: len(connections_used) >= 3)
    finally:
        task_postrun.disconnect(record)

    assert len(set(connections_used)) == 1


def test_requests_do_not_wait_on_a_broker_that_just_failed(alice, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)
    with broker_unreachable():
        started = time.monotonic()
        first = services.request_general(
            subject="One", body="hello", contact_email=alice.email, actor=alice
        )
        after_first = time.monotonic()
        second = services.request_general(
            subject="Two", body="hello", contact_email=alice.email, actor=alice
        )
        after_second = time.monotonic()

    # The second request did not try the broker the first found down...
    assert after_second - after_first < (after_first - started) / 2
    rows = Notification.objects.filter(ticket__in=[first, second])
    assert sorted(rows.values_list("status", flat=True)) == ["pending", "pending"]

    # ...and the sweep, which always tries, sends both once the broker is back.
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert services.notifications_requeue_due() == 2
        assert _wait_for(lambda: rows.filter(status="sent").count() == 2)


def _queued(queue: str) -> list[dict]:
    """The tasks waiting in a broker queue (read off and acknowledged: the queue is emptied)."""
    found = []
    with celery_app.connection_for_write() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(block=False)
                except simple.Empty:
                    break
                message.ack()
                found.append({"task": message.headers["task"], "kwargs": message.payload[1]})
        finally:
            simple.close()
    return found


def resend_requested() -> tuple[Ticket, Notification]:
    """A password-resend request through the API: its ticket and its acknowledgement row."""
    response = APIClient().post(
        "/api/v1/requests/password-resend/",
        {"domain": "alice-shop.test", "contact_email": "me@typed.test"},
        format="json",
    )
    assert response.status_code == 202
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    return ticket, Notification.objects.get(ticket=ticket)


def assert_resend_tasks_queued(ticket: Ticket, received: Notification) -> None:
    """The OpenSRS work of `ticket` and its acknowledgement wait, each in its queue, once."""
    assert _queued("opensrs") == [
        {"task": "tickets.password_resend_process", "kwargs": {"ticket_id": ticket.pk}}
    ]
    assert _queued("celery") == [
        {"task": "tickets.notification_send", "kwargs": {"notification_id": received.pk}}
    ]


def test_a_resend_request_queues_its_two_tasks_together():
    # The OpenSRS work and the acknowledgement go to the broker in one batch after the commit.
    celery_app.control.purge()

    ticket, received = resend_requested()

    assert_resend_tasks_queued(ticket, received)


def test_a_resend_request_made_while_the_broker_is_down_is_queued_by_the_sweeps(settings):
    # The request is answered and kept; its two tasks, lost at the commit, come from the sweeps.
    celery_app.control.purge()
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)
    with broker_unreachable():
        ticket, received = resend_requested()
    assert _queued("opensrs") == [] and _queued("celery") == []

    assert services.password_resend_requeue_due() == 1
    assert services.notifications_requeue_due() == 1

    assert_resend_tasks_queued(ticket, received)


def test_an_anonymous_request_made_while_the_broker_is_down_is_queued_by_its_sweep(settings):
    # The request is answered and kept; its lookup, lost at the commit, comes from the sweep.
    celery_app.control.purge()
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)
    with broker_unreachable():
        response = APIClient().post(
            "/api/v1/requests/opt-out/",
            {"email": "someone@example.test", "lists": ["product_mailings"]},
            format="json",
        )
    assert response.status_code == 202
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    assert _queued("celery") == []

    assert services.anonymous_requests_requeue_due() == 1

    assert _queued("celery") == [
        {"task": "tickets.anonymous_request_process", "kwargs": {"ticket_id": ticket.pk}}
    ]


def test_a_sweep_larger_than_one_round_trip_queues_every_task(alice, monkeypatch, settings):
    # Five rows, two to a round trip: three batches, and no row left behind or sent twice.
    monkeypatch.setattr("tickets.services.publishing.PUBLISH_BATCH", 2)
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)
    ticket = TicketFactory(customer=alice)
    rows = [
        Notification.objects.create(
            ticket=ticket,
            template="ticket_received",
            recipient=alice.email,
            context={"reference": ticket.reference, "subject": "x"},
            idempotency_key=f"missed-{n}",
            next_attempt_at=ticket.created_at,
        )
        for n in range(5)
    ]
    celery_app.control.purge()

    assert services.notifications_requeue_due() == 5

    queued = sorted(task["kwargs"]["notification_id"] for task in _queued("celery"))
    assert queued == sorted(row.pk for row in rows)
