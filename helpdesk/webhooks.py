"""Anymail's webhook URLs for the one ESP in use (ANYMAIL_ESP), made strict.

Only that ESP's tracking and inbound URLs are mounted (every other /anymail/ path is a 404); no
secret configured refuses all, a missing or wrong secret and a bad payload are a 400.
"""

import json
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any, cast

from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailInsecureWebhookWarning,
    AnymailWebhookValidationFailure,
)
from anymail.signals import inbound
from anymail.urls import urlpatterns as anymail_urlpatterns
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern
from django.views import View

from helpdesk.exceptions import lost_a_lock_race

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "ANYMAIL WEBHOOK_SECRET is not configured: webhook requests are refused"
UNPARSABLE = "the webhook payload could not be parsed"
TOO_LARGE = "the inbound email is larger than the help desk accepts"


def _inbound_body_read(request: Any) -> None:
    """Read an authenticated inbound webhook's body under its own, larger size limit."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise AnymailWebhookValidationFailure(UNPARSABLE) from None
    if length > settings.INBOUND_MAX_BODY_BYTES:
        raise AnymailWebhookValidationFailure(TOO_LARGE)
    if not hasattr(request, "_body"):
        # What HttpRequest.body does, without its DATA_UPLOAD_MAX_MEMORY_SIZE check.
        request._body = request.read()


# A UTF-16 surrogate on its own: JSON may escape one (\udc80), no UTF-8 text can hold it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogates_replaced(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_surrogates_replaced(item) for item in value]
    if isinstance(value, dict):
        return {_surrogates_replaced(k): _surrogates_replaced(v) for k, v in value.items()}
    return value


def _json_surrogates_replaced(request: Any) -> None:
    """Read a JSON body's lone UTF-16 surrogates as U+FFFD, as a mail client shows them.

    A sender's software (or a remote mail server's, in a bounce) can write one, and the ESP's
    JSON escapes it; but a MIME part or a database column cannot hold it: anymail would refuse
    the event (a 400, and the ESP drops the email) or the database fail it (a 500, retried for
    hours). Read rather than refused, as NUL characters are. Only a body holding one changes.
    """
    if request.content_type != "application/json":
        return  # a form or raw MIME post: anymail reads it
    body = request.body
    if b"\\ud" not in body.lower():
        return
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return  # anymail answers junk with a 400
    cleaned = _surrogates_replaced(data)
    if cleaned != data:
        request._body = json.dumps(cleaned).encode()


# What parsing a junk body raises (JSON and Unicode decode errors are ValueErrors).
_PARSE_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    RecursionError,  # JSON nested deeper than Python decodes
)


def _strict(view_class: type) -> type[View]:
    class StrictWebhookView(view_class):
        def validate_request(self, request: Any) -> None:
            # Anymail accepts anyone (with a warning) when no secret is set; CONTRACT.md refuses.
            if not getattr(self, "basic_auth", None):
                raise AnymailWebhookValidationFailure(NOT_CONFIGURED)

        def run_validators(self, request: Any) -> None:
            # Some ESPs' signature checks parse the body first (Unisender Go): junk is a 400.
            try:
                super().run_validators(request)
            except _PARSE_ERRORS as exc:
                raise AnymailWebhookValidationFailure(UNPARSABLE) from exc

        def parse_events(self, request: Any) -> list:
            if self.signal is inbound:
                _inbound_body_read(request)
            try:
                _json_surrogates_replaced(request)
                return super().parse_events(request)
            except (
                *_PARSE_ERRORS,
                AnymailConfigurationError,  # e.g. a tracking payload posted to the inbound URL
            ) as exc:
                # An ESP never retries a 400; a 500 here would only make it resend the same junk.
                raise AnymailWebhookValidationFailure(UNPARSABLE) from exc

    StrictWebhookView.__name__ = f"Strict{view_class.__name__}"
    StrictWebhookView.__qualname__ = StrictWebhookView.__name__
    return StrictWebhookView


ESP_NOT_CONFIGURED = "this ESP's webhook settings are incomplete"
LOCK_RACE_RETRY = "the help desk was busy with the same rows: nothing was stored, send it again"


def _configuration_guarded(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """A view whose ESP settings are missing answers 503 (the ESP retries later), not 500.

    Anymail's views read their ESP's settings (signing keys, API keys) when built for each
    request; `check` and a DEBUG=0 start report what is missing (webhook_problems). An event
    whose transaction lost a lock race is also a 503, not the 409 people and API clients get:
    an ESP may drop a message it was answered a 4xx for, and sending it again works.
    """

    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except AnymailConfigurationError as exc:
            logger.error("webhook %s refused: %s", request.path, exc)
            return HttpResponse(ESP_NOT_CONFIGURED, status=503, content_type="text/plain")
        except OperationalError as exc:
            if not lost_a_lock_race(exc):
                raise
            logger.warning("webhook %s lost a lock race: %s", request.path, exc)
            response = HttpResponse(LOCK_RACE_RETRY, status=503, content_type="text/plain")
            response["Retry-After"] = "1"
            return response

    return guarded


def _wrap(pattern: URLPattern) -> URLPattern:
    # as_view() sets view_class on the function it returns; the stubs type it as a plain callable.
    view_class = cast(Any, pattern.callback).view_class
    initkwargs = getattr(pattern.callback, "view_initkwargs", {})
    view = _strict(view_class).as_view(**initkwargs)
    guarded = _configuration_guarded(view)
    cast(Any, guarded).view_class = view_class
    cast(Any, guarded).view_initkwargs = initkwargs
    return URLPattern(pattern.pattern, guarded, pattern.default_args, pattern.name)


def webhook_urlpatterns(esp: str) -> list[URLPattern]:
    """Anymail's URLs for one ESP (`postmark` -> postmark/tracking/ and postmark/inbound/)."""
    patterns = [
        _wrap(pattern)
        for pattern in anymail_urlpatterns
        if isinstance(pattern, URLPattern) and (pattern.name or "").startswith(f"{esp}_")
    ]
    if not patterns:
        known = sorted(
            {(p.name or "").split("_webhook")[0].rsplit("_", 1)[0] for p in anymail_urlpatterns}
        )
        raise ImproperlyConfigured(
            f"ANYMAIL_ESP={esp!r} has no webhooks; one of {', '.join(known)}"
        )
    return patterns


def webhook_problems(esp: str) -> list[str]:
    """What the ESP's webhook views cannot be built without (anymail's own messages)."""
    try:
        patterns = webhook_urlpatterns(esp)
    except ImproperlyConfigured as exc:
        return [str(exc)]
    problems = []
    for pattern in patterns:
        view = cast(Any, pattern.callback)
        try:
            with warnings.catch_warnings():
                # Without a secret anymail warns; the strict views refuse every request then.
                warnings.simplefilter("ignore", AnymailInsecureWebhookWarning)
                view.view_class(**view.view_initkwargs)
        except AnymailConfigurationError as exc:
            message = f"ANYMAIL_ESP={esp}: {exc}".split("\n")[0]
            if message not in problems:
                problems.append(message)
    return problems


urlpatterns = webhook_urlpatterns(settings.ANYMAIL_ESP)
