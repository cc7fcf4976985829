"""Following a request without an account: ask for a status link, read the status page, reply."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from helpdesk.exceptions import RateLimited, TransitionNotAllowed
from helpdesk.fields import AddressFormField
from helpdesk.ratelimit import client_ip
from helpdesk.refusals import refusal_form_errors, refusal_message, refusal_render
from helpdesk.shortcuts import found_or_404
from tickets.attachments import attachment_download
from tickets.models import Verification
from tickets.selectors.messages import ticket_held_words
from tickets.selectors.status_page import (
    status_link_find,
    status_page_attachment_get,
    status_page_ticket,
    ticket_expected_reply,
    ticket_timeline,
)
from tickets.services import (
    OPENER_CONFIRMED,
    TRACK_SENT,
    status_reply_add,
    ticket_actions,
    ticket_opener_confirm_by_link,
    ticket_opener_confirmable,
    track_request,
)
from tickets.services.attachments import AttachmentUpload
from tickets.services.status_link import StatusLinkInvalid
from tickets.views.common import done_redirect
from tickets.views.my_tickets import TicketReplyForm, reply_submit


class TrackForm(forms.Form):
    reference = forms.CharField(
        label=_("Request reference"),
        max_length=20,
        help_text=_("For example: HD-7K3M9Q2X. It is in the subject of our emails."),
    )
    email = AddressFormField(
        label=_("Your email address"),
        help_text=_("The address you gave with the request, or the one on your account."),
    )


@require_http_methods(["GET", "POST"])
def track(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        form = TrackForm(initial={"reference": request.GET.get("reference", "")[:20]})
        return render(request, "portal/track.html", {"form": form})
    form = TrackForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/track.html", {"form": form}, status=400)
    try:
        track_request(
            reference=form.cleaned_data["reference"],
            email=form.cleaned_data["email"],
            client_key=client_ip(request),
        )
    except (ValidationError, RateLimited) as exc:
        refusal_form_errors(form, exc)
        return refusal_render(request, "portal/track.html", {"form": form}, exc)
    return done_redirect(request, "track", {"detail": gettext(TRACK_SENT)})


def _status_page(
    request: HttpRequest,
    token: str,
    *,
    reply_form: TicketReplyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    state, verification = status_link_find(token=token)
    if state != "live" or verification is None:
        return _status_link_refused(request, state, verification)
    ticket = status_page_ticket(verification=verification)
    held = ticket_held_words(ticket)
    confirmable = ticket_opener_confirmable(
        ticket=ticket, customer=ticket.customer, held=held, link=verification
    )
    context = {
        "token": token,
        "ticket": ticket,
        "timeline": ticket_timeline(ticket=ticket),
        "expected": ticket_expected_reply(ticket=ticket),
        "conversation": list(ticket.messages.all()),
        "reply_form": reply_form or TicketReplyForm(),
        "actions": ticket_actions(ticket),
        "words_unproven": held.words,
        "can_confirm": confirmable,
        "expires_at": verification.expires_at,
    }
    return render(request, "portal/status.html", context, status=status)


def _status_link_refused(
    request: HttpRequest, state: str, verification: Verification | None
) -> HttpResponse:
    # An expired link may offer a new one for its reference: its holder had the page already.
    reference = verification.ticket.reference if verification and state == "expired" else ""
    return render(
        request,
        "portal/status_link_refused.html",
        {"state": state, "reference": reference},
        status=410 if state == "expired" else 404,
    )


@never_cache
@require_http_methods(["GET"])
def track_status(request: HttpRequest, token: str) -> HttpResponse:
    return _status_page(request, token)


@never_cache
@require_POST
def track_reply(request: HttpRequest, token: str) -> HttpResponse:
    def add(body: str, attachments: list[AttachmentUpload]) -> None:
        status_reply_add(
            token=token, body=body, client_key=client_ip(request), attachments=attachments
        )

    def page(form: TicketReplyForm, status: int) -> HttpResponse:
        # A link that is no longer live (StatusLinkInvalid) gets the page saying whether it is
        # unknown or expired, whatever the form: _status_page looks at the link first.
        return _status_page(request, token, reply_form=form, status=status)

    form = TicketReplyForm(request.POST, request.FILES)
    refused_page = reply_submit(request, form, add=add, page=page)
    return refused_page or redirect("portal:track-status", token=token)


@never_cache
@require_POST
def track_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Mark the ticket as its customer's, by the status link mailed to the email on record."""
    state, verification = status_link_find(token=token)
    if state != "live" or verification is None:
        return _status_link_refused(request, state, verification)
    try:
        ticket_opener_confirm_by_link(verification=verification)
    except StatusLinkInvalid:
        return _status_link_refused(request, "unknown", None)
    except TransitionNotAllowed as exc:  # the account is frozen or closed: the service says so
        messages.error(request, refusal_message(exc))
    else:
        messages.success(request, gettext(OPENER_CONFIRMED))
    return redirect("portal:track-status", token=token)


@never_cache
@require_http_methods(["GET"])
def track_attachment(request: HttpRequest, token: str, attachment_id: int) -> HttpResponse:
    """Download an attachment of the ticket a live status link follows; anything else is 404."""
    return attachment_download(
        found_or_404(status_page_attachment_get(token=token, attachment_id=attachment_id))
    )
