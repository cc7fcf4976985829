"""A customer's own tickets: list, read, reply, close."""

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import customer_for_user
from helpdesk.exceptions import ApplicationError, RateLimited, TransitionNotAllowed
from helpdesk.refusals import refusal_message, refused
from helpdesk.shortcuts import found_or_404
from helpdesk.types import AuthenticatedHttpRequest
from tickets.attachments import attachment_download
from tickets.models import Message, Ticket
from tickets.redaction import CARD_NOTICE, contains_card_number
from tickets.selectors.field_changes import field_change_rows
from tickets.selectors.messages import ticket_held_words
from tickets.selectors.tickets import attachment_get, ticket_get, ticket_list
from tickets.services import (
    OPENER_CONFIRMED,
    ticket_actions,
    ticket_close,
    ticket_opener_confirm,
    ticket_opener_confirmable,
    ticket_reply_add,
)
from tickets.services.attachments import AttachmentUpload
from tickets.views.common import AttachmentsField, attachment_errors_add, customer_or_404

REPLY_ADDED = _("Your reply was added. We will answer by email and on this page.")
TICKET_CLOSED = _("The ticket is closed. Thank you for letting us know.")
TICKET_CHANGED = _(
    "This ticket changed since you opened it. Look at the latest state and try again."
)


class TicketReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Your reply"),
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Never include a password or a card number."),
    )
    attachments = AttachmentsField()


class TicketCloseForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


def reply_submit(
    request: HttpRequest,
    form: TicketReplyForm,
    *,
    add: Callable[[str, list[AttachmentUpload]], object],
    page: Callable[[TicketReplyForm, int], HttpResponse],
) -> HttpResponse | None:
    """Add a requester's reply with `add(body, attachments)`, from their ticket or status page.

    Returns None when the caller should redirect back to the page, whose message says whether
    the reply was added or why it was refused; otherwise `page(form, status)` with the errors.
    """
    if not form.is_valid():
        return page(form, 400)
    body = form.cleaned_data["body"]
    try:
        add(body, form.cleaned_data["attachments"])
    except ValidationError as exc:
        attachment_errors_add(form, exc)
        return page(form, 400)
    except RateLimited as exc:
        form.add_error(None, exc.message)
        return refused(page(form, 200), exc)
    except TransitionNotAllowed as exc:
        # The service's own reason: the ticket is closed, or the account frozen or closed.
        messages.error(request, refusal_message(exc))
        return None
    except ApplicationError as exc:
        form.add_error("body", refusal_message(exc))
        return page(form, 400)
    messages.success(request, REPLY_ADDED)
    if contains_card_number(body):
        messages.warning(request, gettext(CARD_NOTICE))
    return None


def _my_ticket_or_404(request: HttpRequest, reference: str) -> Ticket:
    return found_or_404(ticket_get(user=request.user, reference=reference))


@login_required
@require_http_methods(["GET"])
def my_tickets(request: AuthenticatedHttpRequest) -> HttpResponse:
    customer_or_404(request)
    page = Paginator(ticket_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "portal/my_tickets.html", {"page": page, "tickets": page.object_list})


def _my_ticket_render(
    request: HttpRequest, ticket: Ticket, *, reply_form: TicketReplyForm, status: int = 200
) -> HttpResponse:
    held = ticket_held_words(ticket)
    customer = customer_for_user(request.user)
    context = {
        "ticket": ticket,
        "changes": field_change_rows(ticket.changes.all()),
        "conversation": list(ticket.messages.all()),
        "reply_form": reply_form,
        "actions": ticket_actions(ticket),
        "words_unproven": held.words,
        "can_confirm": ticket_opener_confirmable(ticket=ticket, customer=customer, held=held),
    }
    return render(request, "portal/my_ticket.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def my_ticket(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    customer_or_404(request)
    ticket = _my_ticket_or_404(request, reference)
    return _my_ticket_render(request, ticket, reply_form=TicketReplyForm())


@login_required
@require_POST
def my_ticket_reply(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    customer = customer_or_404(request)
    ticket = _my_ticket_or_404(request, reference)

    def add(body: str, attachments: list[AttachmentUpload]) -> None:
        ticket_reply_add(
            ticket=ticket,
            body=body,
            actor=customer,
            author=Message.Author.CUSTOMER,
            channel=Ticket.Channel.PORTAL,
            author_user=request.user,
            attachments=attachments,
        )

    def page(form: TicketReplyForm, status: int) -> HttpResponse:
        return _my_ticket_render(request, ticket, reply_form=form, status=status)

    form = TicketReplyForm(request.POST, request.FILES)
    refused_page = reply_submit(request, form, add=add, page=page)
    return refused_page or redirect("portal:my-ticket", reference=ticket.reference)


@login_required
@require_POST
def my_ticket_close(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    customer = customer_or_404(request)
    ticket = _my_ticket_or_404(request, reference)
    form = TicketCloseForm(request.POST)
    if not form.is_valid():
        # Without the version the page showed, the service would close it unchecked: over a
        # reply the customer has not read yet.
        messages.error(request, TICKET_CHANGED)
        return redirect("portal:my-ticket", reference=ticket.reference)
    try:
        ticket_close(ticket=ticket, actor=customer, expected_version=form.cleaned_data["version"])
    except TransitionNotAllowed as exc:
        messages.error(request, refusal_message(exc))
    except ApplicationError:
        messages.error(request, TICKET_CHANGED)
    else:
        messages.success(request, TICKET_CLOSED)
    return redirect("portal:my-ticket", reference=ticket.reference)


@login_required
@require_POST
def my_ticket_confirm(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    """Mark a ticket sent from the customer's address without a login as theirs (they say so)."""
    customer = customer_or_404(request)
    ticket = _my_ticket_or_404(request, reference)
    try:
        ticket_opener_confirm(ticket=ticket, customer=customer)
    except TransitionNotAllowed as exc:
        messages.error(request, refusal_message(exc))
    else:
        messages.success(request, gettext(OPENER_CONFIRMED))
    return redirect("portal:my-ticket", reference=ticket.reference)


@login_required
@require_http_methods(["GET"])
def my_ticket_attachment(
    request: AuthenticatedHttpRequest, reference: str, attachment_id: int
) -> HttpResponse:
    """Download an attachment of the customer's own ticket; anyone else's is a 404."""
    customer_or_404(request)
    attachment = attachment_get(user=request.user, reference=reference, attachment_id=attachment_id)
    return attachment_download(found_or_404(attachment))
