"""Request ids on every log line, optional JSON logs, and Sentry without personal data.

Imported by the settings module (logging config, Sentry), so nothing here needs Django set up
at import time.
"""

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(header: str | None) -> str:
    """A proxy's X-Request-ID when it is a plain token, else a new one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


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
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "helpdesk.observability.RequestIdFilter"}},
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.request": {"level": "ERROR"}},
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


def sentry_init(*, dsn: str, environment: str, traces_sample_rate: float, **options: Any) -> None:
    import sentry_sdk

    before: Callable[..., Any] = scrub_event
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        traces_sample_rate=traces_sample_rate,
        before_send=before,
        before_send_transaction=before,
        before_breadcrumb=lambda crumb, hint: _scrub(crumb),
        **options,
    )
