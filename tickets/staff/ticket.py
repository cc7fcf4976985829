"""The staff ticket page and who else is looking at it."""

import functools
import logging
from typing import Any

from django import forms
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.selectors import email_canonical, is_supervisor
from domains.models import RegistrationChange
from helpdesk.exceptions import CACHE_DOWN_ERRORS
from helpdesk.shortcuts import found_or_404
from helpdesk.types import AuthenticatedHttpRequest
from tickets.attachments import attachment_download
from tickets.models import CHANGE_REQUEST_KINDS, Ticket
from tickets.selectors.field_changes import field_change_rows
from tickets.selectors.queue import staff_members
from tickets.selectors.registration import registration_changes_for_ticket
from tickets.selectors.ticket_page import (
    customer_other_tickets,
    staff_ticket_history,
    staff_ticket_merged_from,
)
from tickets.selectors.tickets import (
    attachment_get,
    audit_details_visible,
    staff_ticket_get,
    ticket_pk_version_get,
)
from tickets.services import modify_approval, ticket_actions
from tickets.staff.common import staff_required
from tickets.views.common import ATTACHMENT_ACCEPT, AttachmentsField, attachment_limits_help

# A viewer's page polls every PRESENCE_POLL_SECONDS; one that stops (closed, gone) drops out
# after PRESENCE_SECONDS.
PRESENCE_SECONDS = 10
PRESENCE_POLL_SECONDS = 4
# Canned replies staff can start from; the text is the customer-facing English source.
CANNED_RESPONSES: dict[str, tuple[Any, Any]] = {
    "received": (
        _("We are on it"),
        _("Thank you for your message. We are looking into it and will reply shortly."),
    ),
    "need_details": (
        _("Ask for details"),
        _(
            "To go further we need a little more information. Could you reply with the "
            "domain name concerned and a short description of what you see?"
        ),
    ),
    "opensrs_direct": (
        _("OpenSRS direct request"),
        _(
            "The email address on the domain's registration record no longer works, so the "
            "password can only be recovered by a direct, identity-verified request to OpenSRS."
        ),
    ),
    "done": (
        _("Done"),
        _("This is done. If anything else is needed, just reply to this email."),
    ),
}

logger = logging.getLogger(__name__)


# The page's two menus of fixed choices, translated once per language: each of their eight lazy
# labels and four texts translated on every page took 480 of a short ticket page's 41,500 Python
# calls.
@functools.cache
def _canned_menu(language: str | None) -> tuple[tuple[str, str, str], ...]:
    """The canned responses as (key, label, text), in the active language `language`."""
    return tuple((key, str(label), str(text)) for key, (label, text) in CANNED_RESPONSES.items())


@functools.cache
def _priority_menu(language: str | None) -> tuple[tuple[str, str], ...]:
    """The priorities as (value, label), in the active language `language`."""
    return tuple((value, str(label)) for value, label in Ticket.Priority.choices)


def _presence_key(ticket_id: int, user_id: int) -> str:
    return f"staff-presence:{ticket_id}:{user_id}"


def _presence_touch_and_read(ticket_id: int, user, members: list | None = None) -> list[str]:
    """Mark this user as looking at the ticket; return the other staff seen in the last seconds.

    Presence is a courtesy: with the cache unreachable the page still works, without it.
    """
    others = {
        _presence_key(ticket_id, member.pk): member.username
        for member in (members if members is not None else staff_members())
        if member.pk != user.pk
    }
    try:
        cache.set(_presence_key(ticket_id, user.pk), user.get_username(), timeout=PRESENCE_SECONDS)
        seen = cache.get_many(list(others))
    except CACHE_DOWN_ERRORS as exc:
        logger.warning("presence cache unreachable: %s", exc)
        return []
    return sorted(others[key] for key in seen)


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Reply to the customer"),
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 6, "data-canned-target": "reply"}),
    )
    canned = forms.ChoiceField(
        label=_("Canned response"),
        required=False,
        choices=[("", _("None")), *[(k, v[0]) for k, v in CANNED_RESPONSES.items()]],
        help_text=_("Its text is added to the end of your reply."),
    )
    attachments = AttachmentsField(
        help_text=attachment_limits_help(
            _(
                "Sent with the reply once checked for malware. Up to {count} files of "
                "{megabytes} MB each: images, PDF or plain text."
            )
        )
    )


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Internal note (staff only)"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (sent to the requester)"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ResolveForm(forms.Form):
    note = forms.CharField(
        label=_("Note to the requester (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AssignForm(forms.Form):
    assignee = forms.CharField(label=_("Assign to"), required=False, max_length=150)


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(label=_("Priority"), choices=Ticket.Priority.choices)


def _approval_state(ticket: Ticket, user) -> dict[str, Any]:
    approval = modify_approval(ticket, user)
    return {
        "possible": approval.possible,
        "blocked": approval.refusal.message if approval.refusal is not None else "",
        "needs_supervisor": approval.needs_supervisor,
    }


def ticket_page(
    request: HttpRequest,
    ticket: Ticket,
    *,
    status: int = 200,
    error: str = "",
    forms_in: dict[str, forms.Form] | None = None,
) -> HttpResponse:
    forms_in = forms_in or {}
    supervisor = is_supervisor(request.user)
    audit_details = audit_details_visible(request.user)
    history = staff_ticket_history(
        ticket=ticket, audit_details=audit_details, whole=request.GET.get("history") == "all"
    )
    changes = field_change_rows(ticket.changes.all() if ticket.kind in CHANGE_REQUEST_KINDS else [])
    staff = staff_members()
    members = [u.username for u in staff]
    other_tickets, other_count = customer_other_tickets(ticket=ticket)
    registration = registration_changes_for_ticket(ticket=ticket)
    put_backs = [change for change in registration if change.is_put_back]
    context = {
        "other_tickets": other_tickets,
        "other_count": other_count,
        "ticket": ticket,
        "merged_from": staff_ticket_merged_from(ticket=ticket),
        "now": timezone.now(),
        "changes": changes,
        "registration_changes": [change for change in registration if not change.is_put_back],
        "registration_put_backs": put_backs,
        "put_back_offered": any(c.status == RegistrationChange.Status.OFFERED for c in put_backs),
        "history": history,
        "is_supervisor": supervisor,
        "audit_details": audit_details,
        "approval": _approval_state(ticket, request.user),
        "contact_differs": bool(
            ticket.customer
            and ticket.contact_email
            and email_canonical(ticket.contact_email) != email_canonical(ticket.customer.email)
        ),
        "viewers": _presence_touch_and_read(ticket.pk, request.user, staff),
        "presence_poll_seconds": PRESENCE_POLL_SECONDS,
        "error": error,
        "staff_names": members,
        "canned": _canned_menu(get_language()),
        # Only a form posted back with its errors: the template writes out each field, and an
        # empty form would add nothing to it but its making (700 Python calls for the four).
        "reply_form": forms_in.get("reply"),
        "attachments_field": ReplyForm.base_fields["attachments"],
        "attachment_accept": ATTACHMENT_ACCEPT,
        "note_form": forms_in.get("note"),
        "reject_form": forms_in.get("reject"),
        "resolve_form": forms_in.get("resolve"),
        "priority_choices": _priority_menu(get_language()),
        "actions": ticket_actions(ticket),
    }
    return render(request, "staff/ticket.html", context, status=status)


def ticket_or_404(request: HttpRequest, reference: str) -> Ticket:
    return found_or_404(staff_ticket_get(user=request.user, reference=reference))


@require_GET
@never_cache
@staff_required
def ticket_detail(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return ticket_page(request, ticket_or_404(request, reference))


@require_GET
@never_cache
@staff_required
def ticket_presence(request: AuthenticatedHttpRequest, reference: str) -> JsonResponse:
    """Who else is looking, and whether the ticket changed since the version the page shows."""
    ticket_id, version = found_or_404(ticket_pk_version_get(user=request.user, reference=reference))
    try:
        seen_version = int(request.GET.get("version", ""))
    except ValueError:
        seen_version = None
    return JsonResponse(
        {
            "viewers": _presence_touch_and_read(ticket_id, request.user),
            "version": version,
            "changed": seen_version is not None and seen_version != version,
        }
    )


@require_GET
@staff_required
def ticket_attachment(
    request: AuthenticatedHttpRequest, reference: str, attachment_id: int
) -> HttpResponse:
    """Download an attachment of a ticket (staff)."""
    attachment = attachment_get(user=request.user, reference=reference, attachment_id=attachment_id)
    return attachment_download(found_or_404(attachment))
