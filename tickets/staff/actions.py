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
from tickets.staff.common import staff_required
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

VERSION_MISSING = _("This form is out of date. Reload the page and try again.")
MERGE_TARGET_UNKNOWN = _("There is no ticket %(reference)s.")
UNKNOWN_STAFF = _("There is no staff member called %(name)s.")
REPLY_EMPTY = _("Write a reply or choose a canned response.")


def _posted_version(request: HttpRequest) -> int:
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        raise ApplicationError(str(VERSION_MISSING)) from None


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
        act(ticket, _posted_version(request))
    except (ApplicationError, ValidationError) as exc:
        fresh = ticket_or_404(request, reference)
        page = ticket_page(request, fresh, error=refusal_message(exc), forms_in=forms_in)
        return refused(page, exc)
    if done:
        messages.success(request, done)
    return redirect("staff:ticket", reference=reference)


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


@require_POST
@staff_required
def ticket_approve_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_approve(ticket=t, actor=request.user, expected_version=v),
        done=_("Approved: the changes are applied."),
    )


@require_POST
@staff_required
def ticket_reject_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = RejectForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_reject(
            ticket=t, actor=request.user, reason=form.cleaned_data["reason"], expected_version=v
        ),
        form_name="reject",
        form=form,
        done=_("Rejected; the requester is told why."),
    )


@require_POST
@staff_required
def ticket_resolve_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = ResolveForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_resolve(
            ticket=t, actor=request.user, note=form.cleaned_data["note"], expected_version=v
        ),
        form_name="resolve",
        form=form,
        done=_("Resolved."),
    )


@require_POST
@staff_required
def ticket_close_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_close(ticket=t, actor=request.user, expected_version=v),
        done=_("Closed."),
    )


@require_POST
@staff_required
def ticket_reopen_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_reopen(ticket=t, actor=request.user, expected_version=v),
        done=_("Reopened."),
    )


@require_POST
@staff_required
def ticket_priority(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = PriorityForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_priority_set(
            ticket=t, priority=form.cleaned_data["priority"], actor=request.user, expected_version=v
        ),
        form_name="priority",
        form=form,
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
