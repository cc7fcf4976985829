"""Bulk actions on the queue: the same service as on one ticket, once per ticket.

Each service call is its own transaction, so one refused ticket leaves the others done; every
refusal is reported with its ticket's reference. The service locks each ticket and applies the
rules of its status then, and the version the queue showed (`version-<reference>`) is checked
there: a ticket someone changed since the queue was loaded is refused, not overwritten, and so
is one posted without its version, as on the ticket page.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from helpdesk.exceptions import ApplicationError
from helpdesk.refusals import refusal_message
from helpdesk.types import AuthenticatedHttpRequest
from tickets.models import Ticket
from tickets.selectors.queue import staff_member_get
from tickets.selectors.tickets import staff_tickets_by_reference
from tickets.services import ticket_assign, ticket_close, ticket_priority_set, ticket_resolve
from tickets.staff.common import posted_version, staff_required

BULK_MAX_TICKETS = 100


def _bulk_action(request: AuthenticatedHttpRequest, action: str) -> Callable[[Ticket, int], Any]:
    """The service call an action name stands for; ValueError for a name not on the list.

    It is called with a ticket and the version of it the queue showed.
    """
    user = request.user
    name, _sep, value = action.partition(":")
    if name == "assign_me":
        return lambda t, v: ticket_assign(ticket=t, assignee=user, actor=user, expected_version=v)
    if name == "unassign":
        return lambda t, v: ticket_assign(ticket=t, assignee=None, actor=user, expected_version=v)
    if name == "assign":
        member = staff_member_get(username=value)
        if member is None:
            raise ValueError(_("There is no staff member called %(name)s.") % {"name": value})
        return lambda t, v: ticket_assign(ticket=t, assignee=member, actor=user, expected_version=v)
    if name == "priority" and value in Ticket.Priority.values:
        return lambda t, v: ticket_priority_set(
            ticket=t, priority=value, actor=user, expected_version=v
        )
    if name == "resolve":
        return lambda t, v: ticket_resolve(ticket=t, actor=user, expected_version=v)
    if name == "close":
        return lambda t, v: ticket_close(ticket=t, actor=user, expected_version=v)
    raise ValueError(_("Choose an action for the selected tickets."))


def _back_to_queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    # Only the query string is kept, so the redirect never leaves the queue.
    query = request.POST.get("back", "").lstrip("?")
    url = reverse("staff:queue")
    return redirect(f"{url}?{query}" if query and "\n" not in query else url)


@require_POST
@staff_required
def queue_bulk(request: AuthenticatedHttpRequest) -> HttpResponse:
    references = list(dict.fromkeys(r.strip()[:20] for r in request.POST.getlist("ticket")))
    if not references:
        messages.error(request, _("Select at least one ticket."))
        return _back_to_queue(request)
    if len(references) > BULK_MAX_TICKETS:
        messages.error(
            request,
            _("Select at most %(n)s tickets at a time.") % {"n": BULK_MAX_TICKETS},
        )
        return _back_to_queue(request)
    try:
        act = _bulk_action(request, request.POST.get("action", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
        return _back_to_queue(request)
    tickets = staff_tickets_by_reference(user=request.user, references=references)
    done = 0
    for reference in references:
        ticket = tickets.get(reference)
        if ticket is None:
            messages.error(request, _("%(ref)s: no such ticket.") % {"ref": reference})
            continue
        try:
            act(ticket, posted_version(request, f"version-{reference}"))
        except (ApplicationError, ValidationError) as exc:
            messages.error(request, f"{reference}: {refusal_message(exc)}")
            continue
        done += 1
    if done:
        messages.success(
            request,
            ngettext("%(n)s ticket updated.", "%(n)s tickets updated.", done) % {"n": done},
        )
    return _back_to_queue(request)
