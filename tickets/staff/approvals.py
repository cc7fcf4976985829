"""The supervisors' approvals list: change requests only they may approve."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from helpdesk.types import AuthenticatedHttpRequest
from tickets.selectors.field_changes import field_change_rows
from tickets.services import modify_approvals_waiting
from tickets.staff.common import staff_required

APPROVALS_PAGE_SIZE = 100


@require_GET
@staff_required
def approvals(request: AuthenticatedHttpRequest) -> HttpResponse:
    tickets, total = modify_approvals_waiting(user=request.user, limit=APPROVALS_PAGE_SIZE)
    rows = [
        {
            "ticket": ticket,
            "changes": field_change_rows(ticket.changes.all()),
        }
        for ticket in tickets
    ]
    return render(request, "staff/approvals.html", {"rows": rows, "total": total})
