"""Anymail's webhook URLs, made strict: no secret configured refuses all, bad payloads are 400."""

from typing import Any, cast

from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.signals import inbound
from anymail.urls import urlpatterns as anymail_urlpatterns
from django.conf import settings
from django.urls import URLPattern
from django.views import View

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


def _strict(view_class: type) -> type[View]:
    class StrictWebhookView(view_class):
        def validate_request(self, request: Any) -> None:
            # Anymail accepts anyone (with a warning) when no secret is set; CONTRACT.md refuses.
            if not getattr(self, "basic_auth", None):
                raise AnymailWebhookValidationFailure(NOT_CONFIGURED)

        def parse_events(self, request: Any) -> list:
            if self.signal is inbound:
                _inbound_body_read(request)
            try:
                return super().parse_events(request)
            except (
                ValueError,
                KeyError,
                TypeError,
                AttributeError,
                IndexError,
                RecursionError,  # JSON nested deeper than Python decodes
                AnymailConfigurationError,  # e.g. a tracking payload posted to the inbound URL
            ) as exc:
                # An ESP never retries a 400; a 500 here would only make it resend the same junk.
                raise AnymailWebhookValidationFailure(UNPARSABLE) from exc

    StrictWebhookView.__name__ = f"Strict{view_class.__name__}"
    StrictWebhookView.__qualname__ = StrictWebhookView.__name__
    return StrictWebhookView


def _wrap(pattern: URLPattern) -> URLPattern:
    # as_view() sets view_class on the function it returns; the stubs type it as a plain callable.
    view_class = cast(Any, pattern.callback).view_class
    initkwargs = getattr(pattern.callback, "view_initkwargs", {})
    return URLPattern(
        pattern.pattern,
        _strict(view_class).as_view(**initkwargs),
        pattern.default_args,
        pattern.name,
    )


urlpatterns = [_wrap(pattern) for pattern in anymail_urlpatterns]
