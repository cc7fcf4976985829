"""The staff dashboard."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from helpdesk.types import AuthenticatedHttpRequest
from tickets.selectors.dashboard import dashboard_figures
from tickets.staff.common import staff_required


@require_GET
@staff_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "staff/dashboard.html", {"figures": dashboard_figures()})
