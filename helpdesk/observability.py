"""Request ids on every log line, optional JSON logs, and Sentry without personal data.

Imported by the settings module (logging config, Sentry), so nothing here needs Django set up
at import time.
"""

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.core import RESERVED_ATTRS

if TYPE_CHECKING:
    from sentry_sdk._types import DataCollectionUserOptions

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(header: str | None) -> str:
    """A proxy's X-Request-ID when it is a plain token, else a new one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


# --- the tokens of mailed links: [token] in the logs and in Sentry ---

# The pages whose address carries a link's token (tickets/urls.py, accounts/urls.py). The token
# is a live link until it is used or expires: whoever reads it could confirm a request as its
# owner, freeze an account, read a request's page or reset a password with it. Such an address
# is found alone, after a space or a quote (`"GET /verify/… HTTP/1.1"`, `<WSGIRequest: GET
# '/verify/…'>`), after `=` or `(`, and with its origin (`https://host/verify/…`).
_LINK_TOKEN = re.compile(
    r"(?<![^\s\"'(<=])"  # at the start or after one of these: not inside another path
    r"((?:https?://[^/\s\"']+)?/(?:verify|not-me|track|unsubscribe|satisfaction"
    r"|requests/registration|accounts/password-reset/[^/\s\"']+)/)"
    r"(?!done/|set-password/|\{)[^/?#\s\"']+"  # a route's {token} is left as it is
)


def token_redacted(text: str) -> str:
    """`text` with `[token]` in place of the token of every mailed link's address in it."""
    return _LINK_TOKEN.sub(r"\1[token]", text)


def _redacted(value: Any) -> Any:
    from tickets.redaction import redact_card_numbers

    # An exception's text may quote what was typed (a refused email's body or header).
    if isinstance(value, BaseException):
        value = str(value)
    if not isinstance(value, str):
        return value
    return redact_card_numbers(token_redacted(value))[0]


class LinkTokenFilter(logging.Filter):
    """`[token]` for a mailed link's token in a record's message and arguments.

    And no card number in them: nothing stores one, the log included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(arg) for key, arg in record.args.items()}
        return True


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the HTTP request's, or the Celery task's id) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """LOGGING: plain text, or one JSON object a line (LOG_FORMAT=json); request id on each."""
    if log_format not in {"text", "json"}:
        raise ValueError(f"LOG_FORMAT must be text or json, not {log_format!r}")
    formatters = {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            # Django's loggers pass the HttpRequest along; written out, it is its path again.
            "reserved_attrs": [*RESERVED_ATTRS, "request"],
        },
    }
    # The loggers that write a request's path: django.request (4xx/5xx answers),
    # django.security.csrf (refused forms), django.server (runserver) and ours. Filtered at the
    # logger, every handler (Sentry's breadcrumbs too) gets the record with [token]; the
    # console handler filters whatever else it is given.
    link_tokens = {"filters": ["link_tokens"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "helpdesk.observability.RequestIdFilter"},
            "link_tokens": {"()": "helpdesk.observability.LinkTokenFilter"},
        },
        "formatters": {
            log_format: formatters[log_format],
            # runserver's request lines, as Django writes them.
            "django.server": {
                "()": "django.utils.log.ServerFormatter",
                "format": "[{server_time}] {message}",
                "style": "{",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id", "link_tokens"],
            },
            "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR", **link_tokens},
            "django.security.csrf": link_tokens,
            "helpdesk.errors": link_tokens,
            "django.server": {
                "handlers": ["django.server"],
                "level": "INFO",
                "propagate": False,
                **link_tokens,
            },
        },
    }


# --- Sentry: nothing that identifies a person leaves the process ---

FILTERED = "[Filtered]"
_SENSITIVE_KEY = re.compile(
    r"pass|secret|token|key|auth|cookie|session|csrf|signature|card|dsn|email|phone|address",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Links' and API tokens: long runs of letters and digits, with at least one of each.
_TOKEN = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{20,}(?![\w-])")
_AUTH_VALUE = re.compile(r"\b(Token|Bearer|Basic)\s+\S+", re.IGNORECASE)
# Where code, not data, is named: left as is so the stack trace stays readable.
_CODE_KEYS = {"filename", "abs_path", "module", "function", "package", "platform", "lineno"}


def scrub_text(text: str) -> str:
    from tickets.redaction import redact_card_numbers

    text, _found = redact_card_numbers(text)
    text = token_redacted(text)
    text = _AUTH_VALUE.sub(r"\1 " + FILTERED, text)
    text = _EMAIL.sub("[email]", text)
    return _TOKEN.sub("[token]", text)


def _scrub(value: Any, key: str = "") -> Any:
    if key in _CODE_KEYS:
        return value
    if isinstance(value, dict):
        return {
            k: FILTERED
            if isinstance(k, str) and _SENSITIVE_KEY.search(k) and not isinstance(v, dict | list)
            else _scrub(v, k if isinstance(k, str) else "")
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send: emails, tokens, card numbers and secrets out of every field."""
    scrubbed: dict[str, Any] = _scrub(event)
    scrubbed.pop("user", None)
    return scrubbed


# Every category spelled out: one named turns all the others to the SDK's defaults, which send
# SQL parameters on spans, Celery tasks' arguments and the client's address (X-Forwarded-For).
# Without personal data, as send_default_pii=False collects, and no request bodies either (a
# change request's body holds names and addresses no pattern tells from other text); what is
# sent goes through scrub_event. The terms are the SDK's own for send_default_pii=False.
_CLIENT_HEADERS: Any = {
    "mode": "denylist",
    "terms": ["forwarded", "-ip", "remote-", "via", "-user"],
}
SENTRY_DATA_COLLECTION: "DataCollectionUserOptions" = {
    "user_info": False,
    "cookies": _CLIENT_HEADERS,
    "http_headers": {"request": _CLIENT_HEADERS},
    "http_bodies": [],
    "url_query_params": _CLIENT_HEADERS,
    "graphql": {"document": False, "variables": False},
    "gen_ai": {"inputs": False, "outputs": False},
    "database_query_data": False,
    "queues": False,
}


def sentry_init(*, dsn: str, environment: str, traces_sample_rate: float, **options: Any) -> None:
    import sentry_sdk

    before: Callable[..., Any] = scrub_event
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        data_collection=SENTRY_DATA_COLLECTION,
        traces_sample_rate=traces_sample_rate,
        before_send=before,
        before_send_transaction=before,
        before_breadcrumb=lambda crumb, hint: _scrub(crumb),
        **options,
    )
