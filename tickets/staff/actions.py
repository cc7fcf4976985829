"""Staff actions on a ticket: call one service; a refusal re-renders the ticket page."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from helpdesk.exceptions import ApplicationError
from helpdesk.refusals import refusal_message, refused
from helpdesk.types import AuthenticatedHttpRequest
from tickets.models import Message, Ticket
from tickets.selectors.queue import staff_member_get
from tickets.selectors.tickets import staff_ticket_get
from tickets.services import (
    ticket_approve,
    ticket_assign,
    ticket_close,
    ticket_merge,
    ticket_priority_set,
    ticket_reject,
    ticket_reopen,
    ticket_reply_add,
    ticket_resolve,
)
from tickets.services.registration_put_back import registration_put_back
from tickets.staff.common import posted_version, staff_required
from tickets.staff.ticket import (
    CANNED_RESPONSES,
    AssignForm,
    NoteForm,
    PriorityForm,
    RejectForm,
    ReplyForm,
    ResolveForm,
    ticket_or_404,
    ticket_page,
)

MERGE_TARGET_UNKNOWN = _("There is no ticket %(reference)s.")
UNKNOWN_STAFF = _("There is no staff member called %(name)s.")
REPLY_EMPTY = _("Write a reply or choose a canned response.")


def _act(
    request: HttpRequest,
    reference: str,
    act: Callable[[Ticket, int], Any],
    *,
    form_name: str = "",
    form: forms.Form | None = None,
    done: Any = "",
) -> HttpResponse:
    """Run one action on a ticket; a refusal re-renders the page with the reason and the input."""
    ticket = ticket_or_404(request, reference)
    forms_in = {form_name: form} if form is not None else {}
    if form is not None and not form.is_valid():
        return ticket_page(request, ticket, status=400, forms_in=forms_in)
    try:
        act(ticket, posted_version(request))
    except (ApplicationError, ValidationError) as exc:
        fresh = ticket_or_404(request, reference)
        page = ticket_page(request, fresh, error=refusal_message(exc), forms_in=forms_in)
        return refused(page, exc)
    if done:
        messages.success(request, done)
    return redirect("staff:ticket", reference=reference)


def _service_action(
    service: Callable[..., Any],
    *,
    done: Any,
    form_class: type[forms.Form] | None = None,
    form_name: str = "",
) -> Callable[[AuthenticatedHttpRequest, str], HttpResponse]:
    """The view of an action that is one service call.

    It calls `service(ticket=, actor=, expected_version=)` with the cleaned fields of
    `form_class`, if any, as further arguments: the form's fields bear the service's names.
    """

    @require_POST
    @staff_required
    def view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
        form = form_class(request.POST) if form_class is not None else None

        def act(ticket: Ticket, version: int) -> Any:
            fields = form.cleaned_data if form is not None else {}
            return service(ticket=ticket, actor=request.user, expected_version=version, **fields)

        return _act(request, reference, act, form_name=form_name, form=form, done=done)

    return view


@require_POST
@staff_required
def ticket_claim(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_assign(
            ticket=t, assignee=request.user, actor=request.user, expected_version=v
        ),
        done=_("The ticket is yours."),
    )


@require_POST
@staff_required
def ticket_assign_to(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = AssignForm(request.POST)

    def act(ticket: Ticket, version: int) -> Ticket:
        name = form.cleaned_data["assignee"].strip()
        member = staff_member_get(username=name) if name else None
        if name and member is None:
            raise ApplicationError(str(UNKNOWN_STAFF) % {"name": name})
        return ticket_assign(
            ticket=ticket, assignee=member, actor=request.user, expected_version=version
        )

    return _act(request, reference, act, form_name="assign", form=form, done=_("Assignee saved."))


@require_POST
@staff_required
def ticket_reply(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = ReplyForm(request.POST, request.FILES)

    def act(ticket: Ticket, version: int) -> Message:
        body = form.cleaned_data["body"].strip()
        canned = form.cleaned_data["canned"]
        if canned:
            body = "\n\n".join(part for part in (body, str(CANNED_RESPONSES[canned][1])) if part)
        if not body:
            raise ApplicationError(str(REPLY_EMPTY))
        return ticket_reply_add(
            ticket=ticket,
            body=body,
            actor=request.user,
            author=Message.Author.STAFF,
            channel=Ticket.Channel.STAFF,
            author_user=request.user,
            expected_version=version,
            attachments=form.cleaned_data["attachments"],
        )

    return _act(request, reference, act, form_name="reply", form=form, done=_("Reply sent."))


@require_POST
@staff_required
def ticket_note(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = NoteForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_reply_add(
            ticket=t,
            body=form.cleaned_data["body"],
            actor=request.user,
            author=Message.Author.STAFF,
            channel=Ticket.Channel.STAFF,
            author_user=request.user,
            internal=True,
            expected_version=v,
        ),
        form_name="note",
        form=form,
        done=_("Note added."),
    )


ticket_approve_view = _service_action(ticket_approve, done=_("Approved: the changes are applied."))
ticket_reject_view = _service_action(
    ticket_reject,
    form_class=RejectForm,
    form_name="reject",
    done=_("Rejected; the requester is told why."),
)
ticket_resolve_view = _service_action(
    ticket_resolve, form_class=ResolveForm, form_name="resolve", done=_("Resolved.")
)
ticket_close_view = _service_action(ticket_close, done=_("Closed."))
ticket_reopen_view = _service_action(ticket_reopen, done=_("Reopened."))
ticket_put_back_view = _service_action(
    registration_put_back,
    done=_("Asked: the worker puts the registration records back at OpenSRS."),
)
ticket_priority = _service_action(
    ticket_priority_set,
    form_class=PriorityForm,
    form_name="priority",
    done=_("Priority changed."),
)


@require_POST
@staff_required
def ticket_merge_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    into_reference = request.POST.get("into", "").strip().upper()[:20]

    def act(ticket: Ticket, version: int) -> Ticket:
        into = staff_ticket_get(user=request.user, reference=into_reference)
        if into is None:
            raise ApplicationError(str(MERGE_TARGET_UNKNOWN) % {"reference": into_reference})
        return ticket_merge(ticket=ticket, into=into, actor=request.user, expected_version=version)

    response = _act(request, reference, act, done=_("Merged."))
    if response.status_code == 302:
        return redirect("staff:ticket", reference=into_reference)
    return response
