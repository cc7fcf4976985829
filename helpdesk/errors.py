"""Error pages (400, 403, 404, 409, 429, 500): the site's layout for people, JSON for the API.

Django calls these handlers (helpdesk.urls) when DEBUG=0; the pages need no database or
session, so they still render while those are what failed.
"""

import logging
import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext, gettext_noop

from helpdesk.exceptions import LOCK_RACE_LOST, ApplicationError, RateLimited, lost_a_lock_race
from helpdesk.middleware import wants_json
from helpdesk.ratelimit import RATE_LIMITED

logger = logging.getLogger(__name__)

# (heading, message) per status.
PAGES = {
    400: (
        gettext_noop("Bad request"),
        gettext_noop("The help desk could not understand this request. Go back and try again."),
    ),
    403: (
        gettext_noop("Not allowed"),
        gettext_noop(
            "You are not allowed to see this page. If you think you should be, log in with "
            "the right account."
        ),
    ),
    404: (
        gettext_noop("Page not found"),
        gettext_noop(
            "There is no page at this address. The link may be mistyped, or the page may have "
            "moved."
        ),
    ),
    409: (gettext_noop("Changed at the same moment"), LOCK_RACE_LOST),
    429: (gettext_noop("Too many requests"), RATE_LIMITED),
    500: (
        gettext_noop("Something went wrong"),
        gettext_noop(
            "An error on our side stopped this request. It has been recorded; please try again "
            "in a few minutes."
        ),
    ),
}
CSRF_FAILED = gettext_noop(
    "This form has expired or was sent from another page. Go back, reload the page and send "
    "it again."
)


def error_response(
    request: HttpRequest, status: int, message: str | None = None, **context: Any
) -> HttpResponse:
    heading, default = PAGES[status]
    text = gettext(message or default)
    if wants_json(request):
        return JsonResponse({"detail": text}, status=status)
    context = {
        "heading": gettext(heading),
        "message": text,
        "COMPANY_NAME": settings.COMPANY_NAME,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        **context,
    }
    try:
        body = loader.render_to_string(f"{status}.html", context, request=request)
    except Exception:  # the page must come out even if what broke is used by templates
        logger.exception("error page %s could not use the request", status)
        body = loader.render_to_string(f"{status}.html", context)
    return HttpResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a 403 that says what to do."""
    return error_response(request, 403, CSRF_FAILED)


def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    """429 with Retry-After, for a limit no view turned into a page of its own."""
    response = error_response(
        request,
        429,
        retry_after=exc.retry_after,
        retry_minutes=max(1, math.ceil(exc.retry_after / 60)),
    )
    response["Retry-After"] = str(exc.retry_after)
    return response


class NulPathMiddleware:
    """A page whose path holds a NUL character is a 404, before any view reads the path.

    No page's address has one, and PostgreSQL's text columns hold no NUL: a reference or a
    customer number with one failed its lookup with a 500. The API answers a malformed
    reference itself; JSON bodies are read by helpdesk.parsers, forms by their fields, which
    refuse NUL, and the few values a staff view reads as they are by selectors that look
    nothing up for them.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path and not wants_json(request):
            return error_response(request, 404)
        return self.get_response(request)


class RefusalMiddleware:
    """A refusal that escapes a view is its 4xx page, and a lost lock race a 409, not a 500.

    Views show the refusals they expect on their own pages (helpdesk.refusals); this catches
    the rest, such as one a request meets only when it crosses another's commit.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RateLimited):
            return rate_limited(request, exception)
        if isinstance(exception, ApplicationError):
            status = exception.status_code
            response = error_response(
                request, status if status in PAGES else 400, exception.message
            )
            response.status_code = status
            return response
        if lost_a_lock_race(exception):
            logger.warning("a lock race was lost on %s: %s", request.path, exception)
            return error_response(request, 409)
        return None
