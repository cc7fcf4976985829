"""Sentry without personal data, JSON logs with the request id, /metrics behind a token."""

import io
import json
import logging
import logging.config
import types
from collections.abc import Callable

import pytest
import sentry_sdk
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import include, path
from django.utils import timezone
from sentry_sdk.transport import Transport

from domains.opensrs import DomainNotInAccount
from helpdesk.models import PeriodicRun
from helpdesk.observability import logging_config, scrub_event, sentry_init
from tests.domains import test_opensrs as opensrs_tests
from tickets.models import Notification

# The fake OpenSRS server on loopback and a client for it.
fake_opensrs = opensrs_tests.fake_opensrs
sleeps = opensrs_tests.sleeps
opensrs = opensrs_tests.opensrs

CARD = "4111 1111 1111 1111"
TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0aa11bb22"


# --- Sentry ---


def test_scrub_removes_emails_tokens_card_numbers_and_secrets_from_every_field():
    event = {
        "message": f"reset for alice@example.test with card {CARD}",
        "exception": {
            "values": [
                {
                    "value": f"no verification for /verify/{TOKEN}/",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "verification_confirm",
                                "filename": "tickets/services/verification.py",
                                "vars": {"token": TOKEN, "recipient": "bob@example.test"},
                            }
                        ]
                    },
                }
            ]
        },
        "request": {
            "url": f"https://help.exabytes.example/unsubscribe/{TOKEN}/",
            "headers": {"Authorization": f"Token {TOKEN}", "User-Agent": "curl"},
            "data": {"contact_email": "carol@defunct.test", "note": f"my card {CARD}"},
        },
        "breadcrumbs": {"values": [{"message": f"Authorization: Bearer {TOKEN}"}]},
        "user": {"email": "alice@example.test", "ip_address": "203.0.113.9"},
    }

    scrubbed = json.dumps(scrub_event(event, {}))

    for secret in ("alice@example.test", "bob@example.test", "carol@defunct.test", TOKEN, CARD):
        assert secret not in scrubbed
    assert "4111" not in scrubbed
    assert "203.0.113.9" not in scrubbed
    # Code stays readable.
    assert "verification_confirm" in scrubbed
    assert "tickets/services/verification.py" in scrubbed
    assert "curl" in scrubbed


class _Captured(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)


def _sent_to_sentry(capture: Callable[[], None]) -> bytes:
    """What Sentry sends of the events `capture` makes."""
    transport = _Captured()
    sentry_init(
        dsn="https://public@sentry.example/1",
        environment="test",
        traces_sample_rate=0.0,
        transport=transport,
        default_integrations=False,
    )
    try:
        capture()
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None, default_integrations=False)
    return b"".join(item.get_bytes() for env in transport.envelopes for item in env.items)


def test_an_error_sent_to_sentry_carries_no_personal_data():
    def capture() -> None:
        recipient = "alice@example.test"
        try:
            raise DomainNotInAccount(415, f"{recipient} paid with {CARD}, token {TOKEN}")
        except DomainNotInAccount:
            sentry_sdk.capture_exception()

    sent = _sent_to_sentry(capture)

    assert b"DomainNotInAccount" in sent
    for secret in (b"alice@example.test", CARD.encode(), TOKEN.encode()):
        assert secret not in sent


def test_a_request_error_sent_to_sentry_carries_no_client_address():
    from sentry_sdk.integrations.wsgi import _make_wsgi_event_processor

    # given a request through the proxy, the client's address in the forwarding headers
    request = RequestFactory().get(
        "/my/tickets/",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1",
        HTTP_X_REAL_IP="203.0.113.9",
        HTTP_USER_AGENT="curl",
    )

    def capture() -> None:
        # as the WSGI integration (under the Django one) reads the request into an error's event
        processor = _make_wsgi_event_processor(request.META, use_x_forwarded_for=False)
        event = processor({"message": "boom", "level": "error"}, {})
        assert event is not None
        sentry_sdk.capture_event(event)

    sent = _sent_to_sentry(capture)

    # then the event has the request, but not the client's address
    assert b"curl" in sent
    assert b"203.0.113.9" not in sent


def test_sentry_collects_nothing_more_than_without_personal_data_but_no_bodies():
    # Naming one category of data_collection turns every other one to the SDK's defaults, which
    # collect: SQL parameters on spans, Celery task arguments, forwarding headers.
    from sentry_sdk.data_collection import _resolve_data_collection

    sentry_init(
        dsn="https://public@sentry.example/1",
        environment="test",
        traces_sample_rate=0.0,
        transport=_Captured(),
        default_integrations=False,
    )
    try:
        collected = dict(sentry_sdk.get_client().options["data_collection"])
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None, default_integrations=False)

    # then no request body (a change request's holds names and addresses no pattern tells from
    # other text), and otherwise what was collected without personal data
    assert collected["http_bodies"] == []
    without_pii = dict(_resolve_data_collection({"send_default_pii": False}))
    for name in ("provided_by_user", "http_bodies"):
        collected.pop(name), without_pii.pop(name)
    assert collected == without_pii


# A mailed link's token with no digit (one in ~1,500 is so), which the pattern above misses.
LINK_TOKEN = "SECRET" + "x" * 37
LIVE_LINK = f"/not-me/{LINK_TOKEN}/"


def test_sentrys_before_send_takes_a_links_token_out_of_the_request_and_the_frames():
    # What the Django and logging integrations attach to an error on a live link.
    request_repr = f"<WSGIRequest: POST '{LIVE_LINK}'>"
    event = {
        "logentry": {"message": "Internal Server Error: %s", "params": [LIVE_LINK]},
        "transaction": "/not-me/{token}/",
        "request": {
            "url": f"https://help.exabytes.example{LIVE_LINK}",
            "method": "POST",
            "headers": {"Referer": f"https://help.exabytes.example/track/{LINK_TOKEN}/reply/"},
        },
        "exception": {
            "values": [
                {
                    "stacktrace": {
                        "frames": [{"function": "not_me", "vars": {"request": request_repr}}]
                    }
                }
            ]
        },
        "extra": {"request": request_repr},
    }

    scrubbed = scrub_event(event, {})

    assert "SECRET" not in json.dumps(scrubbed)
    assert scrubbed["request"]["url"] == "https://help.exabytes.example/not-me/[token]/"
    assert scrubbed["request"]["headers"]["Referer"].endswith("/track/[token]/reply/")
    assert scrubbed["extra"]["request"] == "<WSGIRequest: POST '/not-me/[token]/'>"
    assert scrubbed["transaction"] == "/not-me/{token}/"


def test_an_error_sent_to_sentry_on_a_live_link_carries_no_token():
    def capture() -> None:
        request = RequestFactory().post(LIVE_LINK)  # a local of the frame: sent with it
        try:
            raise RuntimeError(f"could not answer {request.method}")
        except RuntimeError:
            sentry_sdk.capture_exception()

    sent = _sent_to_sentry(capture)

    assert b"could not answer POST" in sent
    assert b"/not-me/[token]/" in sent
    assert b"SECRET" not in sent


# --- logs ---


def _logging_view(request):
    logging.getLogger("tickets.views").warning("looked at ticket %s", "HD-TEST0001")
    return HttpResponse("ok")


def test_json_logs_carry_the_request_id_on_every_line(db, settings):
    urlconf = types.ModuleType("logging_urls")
    urlconf.urlpatterns = [path("logged/", _logging_view), path("", include("helpdesk.urls"))]
    settings.ROOT_URLCONF = urlconf
    stream = io.StringIO()
    config = logging_config(log_format="json", level="INFO")
    config["handlers"]["console"]["stream"] = "ext://sys.stdout"
    logging.config.dictConfig(config)
    logging.getLogger().handlers[0].setStream(stream)
    try:
        given = Client().get("/logged/", HTTP_X_REQUEST_ID="lb-7f3a-1")
        made = Client().get("/logged/")
    finally:
        logging.config.dictConfig(django_settings.LOGGING)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert given["X-Request-ID"] == "lb-7f3a-1"
    assert len(made["X-Request-ID"]) == 32
    assert [(line["request_id"], line["message"]) for line in lines] == [
        ("lb-7f3a-1", "looked at ticket HD-TEST0001"),
        (made["X-Request-ID"], "looked at ticket HD-TEST0001"),
    ]
    assert {"time", "level", "logger"} <= set(lines[0])


def test_a_request_id_that_is_not_a_plain_token_is_replaced(db):
    response = Client().get("/healthz/../", HTTP_X_REQUEST_ID="x\r\nSet-Cookie: a=b")

    assert "\n" not in response["X-Request-ID"]
    assert len(response["X-Request-ID"]) == 32


def test_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT must be text or json"):
        logging_config(log_format="xml", level="INFO")


# --- metrics ---


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = "scrape-me"
    return {"HTTP_AUTHORIZATION": "Bearer scrape-me"}


def test_metrics_are_refused_without_the_token_or_an_allowed_address(db, metrics_token):
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert Client(REMOTE_ADDR="10.0.0.9").get("/metrics").status_code == 403
    assert Client().get("/metrics", **metrics_token).status_code == 200


def test_metrics_for_an_allowed_address_and_never_for_loopback_by_default(db, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/28"]

    assert Client(REMOTE_ADDR="10.0.0.9").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    raise AssertionError(f"{prefix!r} not in metrics")


def _count(text: str, name: str, **labels: str) -> float:
    """A counter's sample; one not yet counted in this process is not listed at all: 0."""
    try:
        return _sample(text, name, **labels)
    except AssertionError:
        return 0


def test_metrics_count_requests_tickets_outbox_and_sweeps(db, metrics_token):
    client = Client()
    before = client.get("/metrics", **metrics_token).content.decode()
    client.post(
        "/requests/new/",
        {"subject": "Invoice", "message": "Where is my invoice?", "email": "x@y.test"},
    )
    old = Notification.objects.create(
        template="ticket_received", recipient="x@example.test", idempotency_key="metrics-1"
    )
    Notification.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timezone.timedelta(seconds=300)
    )
    Notification.objects.create(
        template="ticket_received",
        recipient="y@example.test",
        idempotency_key="metrics-2",
        status=Notification.Status.FAILED,
    )
    PeriodicRun.objects.create(task="tickets.notifications_sweep", ran_at=timezone.now())

    text = client.get("/metrics", **metrics_token).content.decode()

    assert _sample(text, "helpdesk_tickets_created_total", kind="general") == 1
    assert _sample(text, "helpdesk_outbox_notifications", status="failed") == 1
    assert _sample(text, "helpdesk_outbox_notifications", status="pending") >= 1
    assert _sample(text, "helpdesk_outbox_oldest_pending_age_seconds") >= 300
    last = _sample(
        text,
        "helpdesk_periodic_task_last_run_timestamp_seconds",
        task="tickets.notifications_sweep",
    )
    assert abs(last - timezone.now().timestamp()) < 60
    labels = {"method": "GET", "area": "other", "status": "200"}
    seen = _sample(text, "helpdesk_http_requests_total", **labels)
    assert seen >= _count(before, "helpdesk_http_requests_total", **labels) + 1


def test_opensrs_calls_are_counted_by_outcome_with_their_latency(
    db, metrics_token, fake_opensrs, opensrs
):
    def calls(text: str, outcome: str) -> float:
        return _count(text, "helpdesk_opensrs_calls_total", action="GET", outcome=outcome)

    client = Client()
    before = client.get("/metrics", **metrics_token).content.decode()

    opensrs.get_owner_contact("bob-reseller.test")
    with pytest.raises(DomainNotInAccount):
        opensrs.get_owner_contact("not-ours.test")

    text = client.get("/metrics", **metrics_token).content.decode()
    assert calls(text, "success") == calls(before, "success") + 1
    assert calls(text, "error") == calls(before, "error") + 1
    count = _sample(text, "helpdesk_opensrs_call_duration_seconds_count", action="GET")
    assert count >= 2
