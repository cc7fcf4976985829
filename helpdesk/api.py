"""The API's one exception handler and its pagination."""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from helpdesk.exceptions import ApplicationError, RateLimited


def exception_handler(exc, context):
    """Turn every error into `{"detail": ...}` or DRF's field errors; never HTML, never a trace."""
    if isinstance(exc, RateLimited):
        response = Response({"detail": exc.message}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message}
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
    return drf_exception_handler(exc, context)


class TicketCursorPagination(CursorPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = ("-created_at", "-id")
