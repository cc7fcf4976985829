"""The HTML views' one translation of a service's refusal into a response.

A service refuses with `ApplicationError` (its status: 400, 404, 409, 429 ...) or Django's
`ValidationError` (400). The API turns them into JSON in `helpdesk/api.py`; every HTML view
turns them into a page here, with the same status, and `Retry-After` on every 429.
"""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from helpdesk.exceptions import ApplicationError, RateLimited

Refusal = ApplicationError | ValidationError


def refusal_status(exc: Refusal) -> int:
    """The HTTP status of a refusal."""
    return exc.status_code if isinstance(exc, ApplicationError) else 400


def refusal_message(exc: Refusal) -> str:
    """What the user reads: the refusal's message in the active language."""
    if isinstance(exc, ApplicationError):
        return exc.message
    return " ".join(str(message) for message in exc.messages)


def refusal_form_errors(form: forms.Form, exc: Refusal) -> None:
    """Show a refusal on a form: field errors next to their fields, the rest above the form."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, refusal_message(exc))


def refused(response: HttpResponse, exc: Refusal) -> HttpResponse:
    """The page showing a refusal, with the refusal's status (and Retry-After on a 429)."""
    response.status_code = refusal_status(exc)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


def refusal_render(
    request: HttpRequest, template: str, context: dict[str, Any], exc: Refusal
) -> HttpResponse:
    """Render `template` for a refused action, with the refusal's status and headers."""
    return refused(render(request, template, context), exc)
