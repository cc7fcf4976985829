"""The API's one exception handler and its pagination."""

import logging
import re
from collections.abc import Callable
from datetime import UTC
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_serializer
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from helpdesk.exceptions import (
    BODY_TOO_LARGE,
    LOCK_RACE_LOST,
    ApplicationError,
    RateLimited,
    lost_a_lock_race,
)
from helpdesk.ratelimit import client_ip, client_ip_known, ip_in, rate_limit_hit

logger = logging.getLogger(__name__)
API_PREFIX = "/api/"
SERVER_ERROR = "Something went wrong on our side. Please try again later."
PAGE_SIZE_INVALID = "Give a whole number from 1 to {limit}."
UNKNOWN_PARAMETER = "Unknown parameter; this list takes: {names}."
REPEATED_PARAMETER = "Given more than once; give each parameter of this list once."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Turn every error into `{"detail": ...}` or DRF's field errors; never HTML, never a trace."""
    response: Response | None
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": gettext(BODY_TOO_LARGE)}, status=413)
    if isinstance(exc, RateLimited):
        response = Response({"detail": exc.message}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    if lost_a_lock_race(exc):
        logger.warning("a lock race was lost in %s: %s", context.get("view"), exc)
        return Response({"detail": gettext(LOCK_RACE_LOST)}, status=409)
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message}
        if exc.extra and exc.status_code != 404:
            body["extra"] = exc.extra
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            exc = drf_exceptions.ValidationError(detail=exc.message_dict)
        else:
            exc = drf_exceptions.ValidationError(detail={"detail": exc.messages})
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug, not the client's fault: still JSON, and the trace goes to the log only.
        logger.error("Unhandled error in %s", context.get("view"), exc_info=exc)
        response = Response({"detail": SERVER_ERROR}, status=500)
    return response


def same_for_everyone(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Mark an API view whose answer does not depend on who asks: a shared cache may keep it.

    Every other API answer is the caller's alone (CallerOnlyMiddleware).
    """
    view.same_for_everyone = True  # type: ignore[attr-defined]
    return view


class CallerOnlyMiddleware:
    """Every answer under /api/ is the caller's alone, unless its view is `same_for_everyone`.

    `Vary` and `private` keep a cache from handing one reader's body to another: staff are
    shown every ticket and internal notes, a customer their own, and even a 404 differs (another
    customer's ticket). Here rather than in each view, so an endpoint added later cannot forget.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX):
            return response
        match = request.resolver_match
        if match is None or not getattr(match.func, "same_for_everyone", False):
            patch_vary_headers(response, ("Authorization", "Cookie"))
            # no-store too: what a customer or agent read stays out of the browser's disk
            # cache (a shared computer). Clients keep their own copy and revalidate with ETags.
            patch_cache_control(response, private=True, no_store=True)
        return response


class TicketCursorPagination(CursorPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = ("-created_at", "-id")

    def get_page_size(self, request) -> int:
        """The page size asked for; anything but a whole number from 1 to the maximum is a 400."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= self.max_page_size:
            raise drf_exceptions.ValidationError(
                {self.page_size_query_param: [PAGE_SIZE_INVALID.format(limit=self.max_page_size)]}
            )
        return int(raw)

    def decode_cursor(self, request) -> Cursor | None:
        """DRF's reading of the cursor; one whose position is no time in UTC's range is invalid.

        The position goes into the query as it is: one that is not a time was a 400 from the
        query, and one that is but lies outside the years UTC can hold
        (`0001-01-01T00:00+14:00`) a 500 where the database converts it (SQLite).
        """
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                moment = parse_datetime(str(cursor.position))
                if moment is None or moment.tzinfo is None:
                    raise ValueError(cursor.position)
                moment.astimezone(UTC)
            except (ValueError, OverflowError):
                raise drf_exceptions.NotFound(self.invalid_cursor_message) from None
        return cursor

    def page_rows(self, request) -> tuple[tuple[str, ...], dict[str, Any], int]:
        """Which rows a page reads, as paginate_queryset will: (order, past the cursor, how many).

        So that a query made of parts (a search) can read only that many rows of each part.
        """
        cursor = self.decode_cursor(request)
        offset, reverse, position = cursor if cursor is not None else (0, False, None)
        ordering = tuple(self.ordering)
        after: dict[str, Any] = {}
        if position is not None:
            first = ordering[0]
            before = reverse != first.startswith("-")  # as paginate_queryset filters
            after = {f"{first.lstrip('-')}__{'lt' if before else 'gt'}": position}
        if reverse:
            ordering = tuple(o[1:] if o.startswith("-") else f"-{o}" for o in ordering)
        return ordering, after, offset + self.get_page_size(request) + 1

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


def query_params_check(request: Any, *, allowed: set[str]) -> None:
    """A list refuses (400) a query parameter it does not know, instead of ignoring a typo.

    And one given twice (`?status=open&status=closed`): each parameter takes one value, and
    reading only the last of them would answer a question the client did not ask.
    """
    params = request.query_params
    unknown = sorted(set(params) - allowed)
    if unknown:
        message = UNKNOWN_PARAMETER.format(names=", ".join(sorted(allowed)))
        raise drf_exceptions.ValidationError({name[:50]: [message] for name in unknown[:10]})
    repeated = sorted(name for name in params if len(params.getlist(name)) > 1)
    if repeated:
        raise drf_exceptions.ValidationError({name: [REPEATED_PARAMETER] for name in repeated})


def validated_input(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """`data` checked by `serializer_class`: what it validated, or a 400 with the field errors."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- throttles and schema helpers for the API views ---


class ApiRateThrottle(BaseThrottle):
    """Per-user (or per-address when anonymous) request budget, counted in the shared cache.

    Past the budget it raises RateLimited, which the handler turns into 429 with Retry-After.
    """

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            rate_limit_hit(scope="api_per_user", key=f"user:{user.pk}")
        else:
            rate_limit_hit(scope="api_per_client", key=f"ip:{client_ip(request)}")
        return True


class MonitoringExemptThrottle(ApiRateThrottle):
    """ApiRateThrottle, except for loopback and HEALTH_UNTHROTTLED_IPS (readiness probes).

    Only for a client whose address is known: behind a proxy the app does not believe, every
    client shows the proxy's address, loopback for one on this host.
    """

    def allow_request(self, request, view) -> bool:
        address = client_ip_known(request)
        if address is not None and ip_in(address, settings.HEALTH_UNTHROTTLED_IPS):
            return True
        return super().allow_request(request, view)


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    """The error body of every 4xx answer except field errors."""

    detail = serializers.CharField()
    extra = serializers.DictField(required=False)


_ERROR_DESCRIPTIONS = {
    400: 'Invalid input: field errors (`{"field": ["message"]}`) or `{"detail": ...}`',
    401: "Not logged in (no session and no valid `Authorization: Token ...`)",
    403: "Logged in, but not allowed to do this (or the CSRF check failed)",
    404: "No such object, or not visible to you",
    409: "The object's state does not allow this action",
    429: "Too many requests; wait the number of seconds in `Retry-After`",
    503: "A service this depends on is down",
}


def api_errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation can give, for `extend_schema(responses=...)`."""
    responses = {}
    for code in codes:
        # A 400 may be DRF's field-error object, whose keys are the input's field names.
        body = OpenApiTypes.OBJECT if code == 400 else ErrorSerializer
        responses[code] = OpenApiResponse(response=body, description=_ERROR_DESCRIPTIONS[code])
    return responses


RETRY_AFTER_HEADER = OpenApiParameter(
    name="Retry-After",
    type=int,
    location=OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before trying again",
)


class SizedCharField(serializers.CharField):
    """A CharField whose `max_length` holds for the text as sent, as the schema states it.

    DRF trims surrounding whitespace before it checks the length, so a value padded past
    `max_length` with spaces would be accepted though the published schema says it is too long.
    """

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)
