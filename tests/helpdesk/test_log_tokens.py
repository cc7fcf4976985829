"""No mailed link's token reaches the application log: `[token]` takes its place (Sentry:
test_observability).

A token in an address is a live link until it is used or expires: whoever reads it could
confirm a request as its owner, freeze an account, read a request's page or reset a password.
"""

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings as django_settings
from django.core.servers.basehttp import WSGIRequestHandler
from django.db import OperationalError
from django.test import Client

from helpdesk.observability import LinkTokenFilter, logging_config, token_redacted

# As tokens come: letters, digits, "-" and "_"; this one has no digit, like one in ~1,500.
TOKEN = "SECRET" + "x" * 37
LIVE_LINK = f"/not-me/{TOKEN}/"
LOGGED_AS = "/not-me/[token]/"


def records_of(caplog, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


def assert_no_token(record: logging.LogRecord) -> None:
    assert "SECRET" not in record.getMessage()
    assert "SECRET" not in str(record.msg)
    assert "SECRET" not in repr(record.args)


@pytest.mark.parametrize(
    ("text", "logged_as"),
    [
        ('"GET /verify/SECRET1/ HTTP/1.1" 200', '"GET /verify/[token]/ HTTP/1.1" 200'),
        (
            "<WSGIRequest: GET '/track/SECRET1/reply/'>",
            "<WSGIRequest: GET '/track/[token]/reply/'>",
        ),
        (
            "https://help.example:8443/unsubscribe/SECRET:1v:s/?x=1",
            "https://help.example:8443/unsubscribe/[token]/?x=1",
        ),
        ("login?next=/track/SECRET1/", "login?next=/track/[token]/"),
        ("/verify/SECRET1/ then /not-me/SECRET2/", "/verify/[token]/ then /not-me/[token]/"),
        # not a link's token: as it is
        ("/static/verify/app.js", "/static/verify/app.js"),
        ("/api/v1/verify/", "/api/v1/verify/"),
        ("/track/done/", "/track/done/"),
        ("route /not-me/{token}/", "route /not-me/{token}/"),
    ],
)
def test_a_links_token_is_found_wherever_a_line_holds_its_address(text, logged_as):
    assert token_redacted(text) == logged_as


def test_a_records_arguments_by_name_are_redacted_too():
    record = logging.LogRecord("x", logging.INFO, "", 0, "%(path)s %(n)d", (), None)
    record.args = {"path": LIVE_LINK, "n": 7}

    LinkTokenFilter().filter(record)

    assert record.getMessage() == f"{LOGGED_AS} 7"


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_a_429_on_a_live_link_leaves_no_token_in_the_application_log(client, settings, caplog):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "verify_per_client": (0, 600)}

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post(LIVE_LINK)

    assert response.status_code == 429
    (record,) = records_of(caplog, "django.request")
    assert record.status_code == 429  # type: ignore[attr-defined]
    assert_no_token(record)
    assert record.getMessage() == f"Too Many Requests: {LOGGED_AS}"


@pytest.mark.django_db
def test_an_ordinary_path_is_logged_as_it_is(client, settings, caplog):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (0, 600)}
    data = {"subject": "Hi", "message": "hello", "email": "a@b.test"}

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post("/requests/new/", data)

    assert response.status_code == 429
    (record,) = records_of(caplog, "django.request")
    assert (record.msg, record.args) == ("%s: %s", ("Too Many Requests", "/requests/new/"))


@pytest.mark.django_db
def test_a_500_on_a_live_link_leaves_no_token_in_the_application_log(monkeypatch, caplog):
    # django.request logs errors at the level LOGGING keeps (ERROR).
    def broken(**kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr("tickets.views.modify.freeze_link_get_live", broken)

    with caplog.at_level(logging.ERROR):
        response = Client(raise_request_exception=False).get(LIVE_LINK)

    assert response.status_code == 500
    (record,) = records_of(caplog, "django.request")
    assert_no_token(record)
    assert record.getMessage() == f"Internal Server Error: {LOGGED_AS}"


@pytest.mark.django_db
def test_a_refused_csrf_check_on_a_live_link_leaves_no_token_in_the_log(caplog):
    with caplog.at_level(logging.WARNING):
        response = Client(enforce_csrf_checks=True).post(LIVE_LINK)

    assert response.status_code == 403
    (record,) = records_of(caplog, "django.security.csrf")
    assert_no_token(record)
    assert record.getMessage().endswith(f": {LOGGED_AS}")


class _LockRaceCause(Exception):
    sqlstate = "40P01"


@pytest.mark.django_db
def test_a_lost_lock_race_on_a_live_link_leaves_no_token_in_the_log(client, monkeypatch, caplog):
    def raced(**kwargs):
        raise OperationalError("deadlock detected") from _LockRaceCause()

    monkeypatch.setattr("tickets.views.modify.account_freeze", raced)

    with caplog.at_level(logging.WARNING):
        response = client.post(LIVE_LINK)

    assert response.status_code == 409
    (record,) = records_of(caplog, "helpdesk.errors")
    assert_no_token(record)
    assert record.getMessage() == f"a lock race was lost on {LOGGED_AS}: deadlock detected"


def test_runservers_request_lines_leave_no_token_in_the_log(caplog):
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = None

    with caplog.at_level(logging.INFO, logger="django.server"):
        handler.log_message('"%s" %s %s', f"POST {LIVE_LINK} HTTP/1.1", "429", "1234")
        handler.log_message('"%s" %s %s', "GET /track/ HTTP/1.1", "200", "99")

    leaked, ordinary = records_of(caplog, "django.server")
    assert_no_token(leaked)
    assert leaked.getMessage() == f'"POST {LOGGED_AS} HTTP/1.1" 429 1234'
    assert ordinary.getMessage() == '"GET /track/ HTTP/1.1" 200 99'


@pytest.mark.django_db
def test_a_json_log_line_of_a_live_link_holds_no_token(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "verify_per_client": (0, 600)}
    stream = io.StringIO()
    config = logging_config(log_format="json", level="INFO")
    config["loggers"]["django.request"]["level"] = "WARNING"
    logging.config.dictConfig(config)
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        response = client.post(LIVE_LINK)
    finally:
        logging.config.dictConfig(django_settings.LOGGING)

    assert response.status_code == 429
    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "SECRET" not in json.dumps(line)
    assert line["message"] == f"Too Many Requests: {LOGGED_AS}"
    assert line["status_code"] == 429


def test_a_card_number_in_a_records_arguments_is_removed_exceptions_included():
    card = "4111 1111 1111 1111"
    refused = ValueError(f"the message quotes {card} in its subject")
    record = logging.LogRecord(
        "tickets.inbound", logging.WARNING, "", 0, "from %s not stored: %s", (card, refused), None
    )

    LinkTokenFilter().filter(record)

    message = record.getMessage()
    assert "4111" not in message
    assert message == (
        "from [card number removed] not stored: the message quotes [card number removed] in its "
        "subject"
    )
