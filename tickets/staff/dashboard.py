"""The staff dashboard."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.selectors import is_supervisor
from helpdesk.types import AuthenticatedHttpRequest
from tickets.selectors.dashboard import dashboard_figures
from tickets.selectors.registration import registration_problems
from tickets.services import modify_awaiting_supervisor
from tickets.staff.common import staff_required


@require_GET
@staff_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = {
        "figures": dashboard_figures(),
        "registration_problems": registration_problems(),
        "approvals_waiting": modify_awaiting_supervisor().count(),
        "is_supervisor": is_supervisor(request.user),
    }
    return render(request, "staff/dashboard.html", context)
