"""The portal's home page, and what its views share."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Customer
from accounts.selectors import customer_for_user
from tickets.models import Ticket


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


def customer_or_404(request: HttpRequest) -> Customer:
    # Staff work tickets in the staff queue; /my/ is only for customers.
    customer = customer_for_user(request.user)
    if customer is None:
        raise Http404
    return customer


# --- POST-redirect-GET: a form's result page is a GET, so a reload never sends it again ---

DONE_TEMPLATES = {
    "request-general": "portal/request_general_done.html",
    "request-password": "portal/request_password_done.html",
    "request-modify": "portal/modify_done.html",
    "request-opt-out": "portal/opt_out_done.html",
    "verify": "portal/verify_done.html",
    "not-me": "portal/not_me_done.html",
    "unsubscribe": "portal/unsubscribe_done.html",
    "registration-fix": "portal/registration_fix_done.html",
    "track": "portal/track_sent.html",
}


def ticket_done_summary(ticket: Ticket | None) -> dict[str, Any] | None:
    """What a result page shows of a ticket, kept in the session between the POST and the GET."""
    if ticket is None:
        return None
    return {
        "reference": ticket.reference,
        "status": ticket.status,
        "get_status_display": str(ticket.get_status_display()),
        "contact_email": bool(ticket.contact_email),
    }


def done_redirect(request: HttpRequest, page: str, context: dict[str, Any]) -> HttpResponse:
    """Keep the result page's context in the session and answer 303 See Other to that page."""
    request.session[f"portal_done:{page}"] = context
    response = HttpResponseRedirect(reverse(f"portal:{page}-done"))
    response.status_code = 303
    return response


@never_cache
@require_GET
def done(request: HttpRequest, page: str) -> HttpResponse:
    """A form's result page; without a result in this session, the help desk's home."""
    context = request.session.get(f"portal_done:{page}")
    if page not in DONE_TEMPLATES or context is None:
        return HttpResponseRedirect(reverse("portal:home"))
    return render(request, DONE_TEMPLATES[page], context)
