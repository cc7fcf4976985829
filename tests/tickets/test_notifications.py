from datetime import timedelta

import pytest
import requests
from anymail.exceptions import AnymailAPIError, AnymailRequestsAPIError
from anymail.message import AnymailRecipientStatus
from anymail.signals import pre_send
from celery.exceptions import Retry
from django.core import mail
from django.db import transaction

from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Notification
from tickets.services import outbox
from tickets.tasks import notification_send as notification_send_task

ANYMAIL_TEST = "anymail.backends.test.EmailBackend"


def esp_error(message: str, status: int | None) -> AnymailRequestsAPIError:
    """An error as the ESP's HTTP API would produce it."""
    response = None
    if status is not None:
        response = requests.Response()
        response.status_code = status
        response.reason = "error"
        response._content = message.encode()
    return AnymailRequestsAPIError(message, status_code=status, response=response)


@pytest.fixture
def anymail_backend(settings):
    settings.EMAIL_BACKEND = ANYMAIL_TEST


@pytest.fixture
def esp_responses():
    """Script the test ESP: each send pops the next response (None = success)."""
    script: list = []

    def receiver(sender, message, esp_name, **kwargs):
        if script:
            response = script.pop(0)
            if response is not None:
                message.anymail_test_response = response

    pre_send.connect(receiver, weak=False)
    yield script
    pre_send.disconnect(receiver)


@pytest.fixture
def notification(alice):
    ticket = TicketFactory(customer=alice, subject="Domain & DNS <help>")
    with transaction.atomic():
        return services.notification_queue(
            ticket=ticket,
            template="ticket_received",
            recipient=alice.email,
            context={"subject": ticket.subject},
        )


def test_queue_enqueues_the_task_only_after_commit(alice, django_capture_on_commit_callbacks):
    ticket = TicketFactory(customer=alice)

    with django_capture_on_commit_callbacks() as callbacks:
        services.notification_queue(
            ticket=ticket, template="ticket_received", recipient=alice.email, context={}
        )

    assert len(callbacks) == 1


def test_send_renders_both_parts_with_headers(notification, anymail_backend):
    status = services.notification_send(notification_id=notification.pk)

    assert status == "sent"
    message = mail.outbox[0]
    reference = notification.ticket.reference
    assert message.to == ["alice@example.test"]
    assert reference in message.subject
    assert "Domain & DNS <help>" in message.subject  # a text part is not HTML-escaped
    assert "Domain & DNS <help>" in message.body
    html = message.alternatives[0][0]
    assert "Domain &amp; DNS &lt;help&gt;" in html
    assert reference in html
    assert message.extra_headers["X-Auto-Response-Suppress"] == "All"
    assert message.extra_headers["References"] == f"<ticket-{reference}@help.exabytes.example>"
    assert message.anymail_test_params["metadata"]["ticket"] == reference
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert notification.esp_message_id == str(message.anymail_status.message_id)
    assert ActionLog.objects.filter(action="notification.sent").count() == 1


def test_the_same_task_delivered_twice_sends_one_email(notification, anymail_backend):
    notification_send_task.apply(kwargs={"notification_id": notification.pk})
    notification_send_task.apply(kwargs={"notification_id": notification.pk})

    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert notification.attempts == 1


def test_esp_error_then_success_sends_once_and_counts_attempts(
    notification, anymail_backend, esp_responses
):
    esp_responses.append(esp_error("ESP down", 503))

    with pytest.raises(services.NotificationRetry):
        services.notification_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == "pending"
    assert "ESP down" in notification.last_error
    assert notification.next_attempt_at > notification.created_at

    assert services.notification_send(notification_id=notification.pk) == "sent"
    notification.refresh_from_db()
    assert notification.attempts == 2
    # The test ESP records the refused attempt too; only one was accepted.
    accepted = [m for m in mail.outbox if getattr(m.anymail_status, "status", None) == {"sent"}]
    assert len(accepted) == 1


def test_task_retries_a_transient_error(notification, anymail_backend, esp_responses):
    esp_responses.append(esp_error("timeout", None))

    with pytest.raises(Retry):
        notification_send_task.apply(kwargs={"notification_id": notification.pk}, throw=True)

    notification.refresh_from_db()
    assert notification.status == "pending" and notification.attempts == 1


def test_a_permanent_error_marks_failed_with_the_reason(
    notification, anymail_backend, esp_responses
):
    esp_responses.append(esp_error("Invalid API token", 401))

    assert services.notification_send(notification_id=notification.pk) == "failed"

    notification.refresh_from_db()
    assert notification.status == "failed"
    assert "Invalid API token" in notification.last_error
    assert ActionLog.objects.filter(action="notification.failed").exists()


def test_retries_stop_after_the_limit(notification, anymail_backend, esp_responses, settings):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    esp_responses.extend([AnymailAPIError("flaky"), AnymailAPIError("flaky")])

    with pytest.raises(services.NotificationRetry):
        services.notification_send(notification_id=notification.pk)
    assert services.notification_send(notification_id=notification.pk) == "failed"
    assert Notification.objects.get(pk=notification.pk).attempts == 2


def test_a_recipient_refused_at_send_time_is_a_bounce(notification, anymail_backend, esp_responses):
    esp_responses.append(
        {"recipient_status": {"alice@example.test": AnymailRecipientStatus(None, "rejected")}}
    )

    assert services.notification_send(notification_id=notification.pk) == "bounced"
    assert Notification.objects.get(pk=notification.pk).status == "bounced"


def test_sweep_requeues_rows_left_pending(notification, settings, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(outbox, "notifications_enqueue", lambda pks, **_: queued.extend(pks))
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)

    assert services.notifications_requeue_due() == 1
    assert queued == [notification.pk]


def test_a_live_link_is_dropped_from_the_outbox_once_sent(alice, anymail_backend):
    ticket = TicketFactory(customer=alice)
    with transaction.atomic():
        row = services.notification_queue(
            ticket=ticket,
            template="verify_request",
            recipient=alice.email,
            context={"link": "https://help.exabytes.example/verify/secret-token/", "hours": 24},
        )

    services.notification_send(notification_id=row.pk)

    assert "secret-token" in mail.outbox[0].body
    row.refresh_from_db()
    assert "link" not in row.context
    assert row.context["hours"] == 24


def test_the_handover_is_recorded_with_its_audit_row_at_once(notification, anymail_backend):
    # A worker killed between the ESP's acceptance and this write makes the sweep send the
    # email again, so the write after the hand-over is as short as the database allows.
    from anymail.signals import post_send
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets.audit import audit_record, audit_verify

    audit_record(actor="system", action="test.chain_started")  # a database in use has a head
    handed_over_at = []

    def mark(**kwargs):
        handed_over_at.append(len(queries.captured_queries))

    post_send.connect(mark, weak=False)
    try:
        with CaptureQueriesContext(connection) as queries:
            assert services.notification_send(notification_id=notification.pk) == "sent"
    finally:
        post_send.disconnect(mark)

    after = [q["sql"] for q in queries.captured_queries[handed_over_at[0] :]]
    # The mark, then the audit append: lock the head, insert the row, move the head (plus the
    # transaction's own statements where the database shows them).
    writes = [sql for sql in after if not sql.startswith(("SAVEPOINT", "RELEASE", "BEGIN"))]
    assert writes[0].startswith("UPDATE") and "tickets_notification" in writes[0]
    assert writes[1].startswith("SELECT") and "tickets_auditchainhead" in writes[1]
    assert "FOR UPDATE" in writes[1] or connection.vendor == "sqlite"  # SQLite locks the file
    assert writes[2].startswith("INSERT INTO") and "tickets_actionlog" in writes[2]
    assert writes[3].startswith("UPDATE") and "tickets_auditchainhead" in writes[3]
    row = Notification.objects.get(pk=notification.pk)
    assert row.status == "sent" and row.sent_at is not None
    event = ActionLog.objects.get(ticket=notification.ticket, action="notification.sent")
    assert event.details["notification"] == str(row.uuid)
    assert audit_verify().ok


def test_a_send_can_be_the_first_audit_row_of_a_new_database(notification, anymail_backend):
    # A new database has no chain head yet: the head is made and the row appended once,
    # without a second send.
    from tickets.audit import audit_verify
    from tickets.models import AuditChainHead

    AuditChainHead.objects.all().delete()

    assert services.notification_send(notification_id=notification.pk) == "sent"

    assert Notification.objects.get(pk=notification.pk).status == "sent"
    (sent,) = ActionLog.objects.filter(action="notification.sent")
    assert sent.sequence == 1
    assert len(mail.outbox) == 1
    assert audit_verify().ok


def test_a_worker_finding_its_send_already_recorded_adds_no_audit_row(
    notification, anymail_backend
):
    # An ESP event recorded the send first (the worker's own write comes second).
    assert outbox.notification_mark_sent(notification, "esp-1", evidence="Postmark sent")
    rows = ActionLog.objects.count()

    assert not outbox.notification_mark_sent(notification, "esp-1")

    assert ActionLog.objects.count() == rows
    assert Notification.objects.get(pk=notification.pk).esp_message_id == "esp-1"


def test_an_email_that_failed_or_bounced_keeps_no_live_link_in_its_row(
    alice, anymail_backend, esp_responses
):
    # given two verification emails, each carrying a live single-use link
    tickets = [TicketFactory(customer=alice, status="awaiting_verification") for _ in range(2)]
    for ticket in tickets:
        services.verification_start(ticket=ticket, send_to=alice.email)
    rows = [Notification.objects.get(ticket=t, template="verify_request") for t in tickets]
    assert all("link" in row.context for row in rows)

    # when the ESP refuses one for good and refuses the address of the other at send time
    esp_responses.append(esp_error("Invalid API token", 401))
    esp_responses.append(
        {"recipient_status": {alice.email: AnymailRecipientStatus(None, "rejected")}}
    )
    outcomes = [services.notification_send(notification_id=row.pk) for row in rows]

    # then neither row keeps the link: it is needed only to send the email
    assert outcomes == ["failed", "bounced"]
    for row in rows:
        row.refresh_from_db()
        assert not set(row.context) & outbox.SECRET_CONTEXT_KEYS, row.context
