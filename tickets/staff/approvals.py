"""The supervisors' approvals list: change requests only they may approve."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from helpdesk.types import AuthenticatedHttpRequest
from tickets.selectors.field_changes import field_change_rows
from tickets.services import modify_awaiting_supervisor
from tickets.staff.common import require_perm, staff_required

APPROVALS_PAGE_SIZE = 100


@require_GET
@staff_required
def approvals(request: AuthenticatedHttpRequest) -> HttpResponse:
    require_perm(request, "tickets.approve_sensitive_change")
    waiting = modify_awaiting_supervisor()
    tickets = list(waiting[:APPROVALS_PAGE_SIZE])
    rows = [
        {
            "ticket": ticket,
            "changes": field_change_rows(ticket.changes.all()),
        }
        for ticket in tickets
    ]
    total = len(tickets) if len(tickets) < APPROVALS_PAGE_SIZE else waiting.count()
    return render(request, "staff/approvals.html", {"rows": rows, "total": total})
