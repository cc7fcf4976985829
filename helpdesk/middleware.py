from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext

from helpdesk.api import API_PREFIX
from helpdesk.exceptions import BODY_TOO_LARGE
from helpdesk.ratelimit import from_trusted_proxy

HEALTHZ_PATH = "/healthz"

# Scripts and styles come only from our own origin; inline script is never allowed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=()"


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response.

    And a page for a signed-in login is never stored (`Cache-Control: private, no-store`)
    unless its view said how it is cached: signed out on a shared computer, the Back button
    would otherwise bring back the customer's tickets, their details in the change form, or
    the staff queue. The API's answers are `private, no-store` too, with ETags to revalidate
    (helpdesk.api.CallerOnlyMiddleware).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if (
            "Cache-Control" not in response
            and not request.path.startswith(API_PREFIX)  # CallerOnlyMiddleware says it there
            and user is not None
            and user.is_authenticated
        ):
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        return response


def wants_json(request: HttpRequest) -> bool:
    """The API and the ESP webhooks answer errors in JSON; everything else is a page."""
    return request.path.startswith(("/api/", "/anymail/"))


def body_too_large_response(request: HttpRequest) -> HttpResponse:
    """413: JSON for the API and the webhooks, an HTML page for everything else."""
    if wants_json(request):
        return JsonResponse({"detail": gettext(BODY_TOO_LARGE)}, status=413)
    context = {
        "message": gettext(BODY_TOO_LARGE),
        "files": settings.ATTACHMENTS_PER_MESSAGE,
        "megabytes": settings.ATTACHMENT_MAX_BYTES // (1024 * 1024),
    }
    return render(request, "413.html", context, status=413)


# The forms that take attachments (tickets.views.common.AttachmentsField): a multipart body
# of up to ATTACHMENT_UPLOAD_MAX_BODY_BYTES, its files spooled to disk past 2.5 MB each.
ATTACHMENT_UPLOAD_VIEWS = frozenset(
    {
        "portal:request-general",
        "portal:request-modify",
        "portal:my-ticket-reply",
        "portal:track-reply",
        "staff:ticket-reply",
    }
)


def _takes_attachments(request: HttpRequest) -> bool:
    if request.method != "POST" or request.content_type != "multipart/form-data":
        return False
    try:
        return resolve(request.path_info).view_name in ATTACHMENT_UPLOAD_VIEWS
    except Resolver404:
        return False


def _body_limit(request: HttpRequest) -> int:
    if request.path.startswith("/anymail/") and request.path.endswith("/inbound/"):
        # Inbound mail carries its attachments base64 inside the JSON.
        return int(settings.INBOUND_MAX_BODY_BYTES)
    if _takes_attachments(request):
        return int(settings.ATTACHMENT_UPLOAD_MAX_BODY_BYTES)
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


class RequestBodyLimitMiddleware:
    """An oversized body is a 413 before anything reads it, on every URL.

    Django would raise RequestDataTooBig where the body is first read (the CSRF check, a form,
    a parser), which ends as a 400 or, inside DRF, a 500; the declared length is checked here
    instead, and a body without one is never read past it (WSGI reads no more than it says).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = _body_limit(request)
        if limit and length > limit:
            return body_too_large_response(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return body_too_large_response(request)
        return None


class ForwardedProtoMiddleware:
    """X-Forwarded-Proto is believed only from a trusted proxy, as X-Forwarded-For is.

    Django's SECURE_PROXY_SSL_HEADER reads the header from whoever sent the request: a client
    reaching the app's port directly over plain http could say it came by https, and be spared
    the redirect, given secure-only cookies and taken for https by the CSRF checks. The header
    is dropped here, before SecurityMiddleware reads it, unless the request came through the
    whole chain of trusted proxies (`from_trusted_proxy`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = settings.SECURE_PROXY_SSL_HEADER
        if header and header[0] in request.META and not from_trusted_proxy(request):
            del request.META[header[0]]
        return self.get_response(request)


class HealthzMiddleware:
    """Liveness: `/healthz` is 200 while this process serves requests, and nothing else.

    No database, cache or broker, no host check (a load balancer probes by address), no
    throttle; gunicorn's access log leaves it out (helpdesk.gunicorn_logging).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTHZ_PATH and request.method in {"GET", "HEAD"}:
            response = HttpResponse("ok\n", content_type="text/plain")
            response["Cache-Control"] = "no-store"
            # Answered before the middleware that adds them to every other response.
            response["X-Content-Type-Options"] = "nosniff"
            response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
            response["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
            response["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response["Permissions-Policy"] = PERMISSIONS_POLICY
            return response
        return self.get_response(request)
