"""The one-click link of a registration warning: asking us to bring the record in step."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from helpdesk.exceptions import ApplicationError
from helpdesk.ratelimit import client_ip
from helpdesk.refusals import refusal_render
from tickets.services.registration_warnings import registration_fix_read, registration_fix_request
from tickets.views.common import done_redirect, ticket_done_summary


@never_cache
@require_http_methods(["GET", "POST"])
def registration_fix(request: HttpRequest, token: str) -> HttpResponse:
    # GET only shows a button: mail scanners fetch links, and a fetch must change nothing.
    try:
        if request.method == "GET":
            domain = registration_fix_read(token=token)
            context = {"token": token, "domain": domain.unicode_name}
            return render(request, "portal/registration_fix.html", context)
        ticket = registration_fix_request(token=token, client_key=client_ip(request))
    except ApplicationError as exc:
        return refusal_render(request, "portal/registration_fix.html", {"error": exc.message}, exc)
    return done_redirect(request, "registration-fix", {"ticket": ticket_done_summary(ticket)})
