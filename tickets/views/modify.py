"""Asking to change personal information; confirming it, or saying it was not me."""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.models import Customer
from accounts.selectors import customer_for_user
from helpdesk.exceptions import ApplicationError, RateLimited
from helpdesk.fields import AddressFormField
from helpdesk.ratelimit import client_ip
from helpdesk.refusals import Refusal, refusal_form_errors, refusal_render, refused
from tickets.models import Ticket, Verification
from tickets.redaction import CARD_NOTICE
from tickets.selectors.registration import registration_choices_parse, registration_domains_of
from tickets.selectors.verification import verification_link_state, verification_summary
from tickets.services import MODIFY_FIELDS, modify_input_has_card
from tickets.services import request_modify as request_modify_service
from tickets.services.freeze import account_freeze, freeze_link_get_live
from tickets.services.lifecycle import AccountLockedOut
from tickets.services.registration import registration_confirm
from tickets.services.verification import verification_locked_out
from tickets.views.common import (
    AttachmentsField,
    attachment_limits_help,
    done_redirect,
    ticket_done_summary,
)


class ModifyRequestForm(forms.Form):
    email_on_record = AddressFormField(label=_("Your email address on record"), required=False)
    full_name = forms.CharField(label=_("Full name"), max_length=254, required=False)
    email = AddressFormField(label=_("New email address"), required=False)
    phone = forms.CharField(label=_("Phone"), max_length=254, required=False)
    address_line1 = forms.CharField(label=_("Address line 1"), max_length=254, required=False)
    address_line2 = forms.CharField(label=_("Address line 2"), max_length=254, required=False)
    city = forms.CharField(label=_("City"), max_length=254, required=False)
    state = forms.CharField(label=_("State"), max_length=254, required=False)
    postcode = forms.CharField(label=_("Postcode"), max_length=254, required=False)
    country = forms.CharField(label=_("Country"), max_length=254, required=False)
    note = forms.CharField(
        label=_("Anything we should know"), max_length=5000, required=False, widget=forms.Textarea
    )
    attachments = AttachmentsField(
        label=_("Proof (optional)"),
        help_text=attachment_limits_help(
            _(
                "Changing your name? Attach a scan or photo of the document that shows it. Up to "
                "{count} files of {megabytes} MB each: images, PDF or plain text."
            )
        ),
    )

    def __init__(self, *args, customer: Customer | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.customer = customer
        if customer is not None:
            del self.fields["email_on_record"]

    def changes(self) -> dict[str, str]:
        """Fields to change: all of them for an owner (prefilled), only those filled otherwise."""
        data = self.cleaned_data
        if self.customer is not None:
            return {field: data[field] for field in MODIFY_FIELDS}
        return {field: data[field] for field in MODIFY_FIELDS if data[field].strip()}


@require_http_methods(["GET", "POST"])
def request_modify(request: HttpRequest) -> HttpResponse:
    customer = customer_for_user(request.user)
    status = 200
    refusal: Refusal | None = None
    if request.method == "POST":
        form = ModifyRequestForm(request.POST, request.FILES, customer=customer)
        if form.is_valid():
            try:
                ticket = request_modify_service(
                    email=form.cleaned_data.get("email_on_record"),
                    customer=customer,
                    changes=form.changes(),
                    note=form.cleaned_data["note"],
                    client_key=client_ip(request),
                    actor=customer or "anonymous",
                    channel=Ticket.Channel.PORTAL,
                    registration=registration_choices_parse(request.POST.getlist("registration")),
                    attachments=form.cleaned_data["attachments"],
                )
            except ValidationError as exc:
                _modify_form_errors(form, exc)
                refusal = exc
            except ApplicationError as exc:
                refusal_form_errors(form, exc)
                refusal = exc
            else:
                card = modify_input_has_card(changes=form.changes(), note=form.cleaned_data["note"])
                done = {
                    "ticket": ticket_done_summary(ticket),
                    "owner": customer is not None,
                    "card_notice": gettext(CARD_NOTICE) if card else "",
                    "hours": int(settings.VERIFICATION_TTL.total_seconds() // 3600),
                }
                return done_redirect(request, "request-modify", done)
        else:
            status = 400
    else:
        initial = {field: getattr(customer, field) for field in MODIFY_FIELDS} if customer else {}
        form = ModifyRequestForm(initial=initial, customer=customer)
    offer = registration_domains_of(customer=customer) if customer else []
    if request.method == "POST":
        chosen = registration_choices_parse(request.POST.getlist("registration"))
        for row in offer:
            row["update_owner"] = "owner" in chosen.get(row["name"], ())
            row["update_admin"] = "admin" in chosen.get(row["name"], ())
    context = {"form": form, "owner": customer, "registration_offer": offer}
    response = render(request, "portal/modify_request.html", context, status=status)
    return refused(response, refusal) if refusal is not None else response


def _modify_form_errors(form: ModifyRequestForm, exc: ValidationError) -> None:
    for key, errors in exc.error_dict.items():
        for error in errors:
            if key == "attachments":
                form.add_error("attachments", error.messages)
            elif key == "email" and "email_on_record" in form.fields:
                form.add_error("email_on_record", error.messages)
            elif error.code in MODIFY_FIELDS and error.params:
                form.add_error(error.code, str(error.params["error"]))
            elif key == "note":
                form.add_error("note", error.messages)
            else:
                form.add_error(None, error.messages)


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest, token: str) -> HttpResponse:
    # GET only shows a button: mail scanners fetch links, and a fetch must change nothing.
    # It shows what the link confirms only for a link that could be confirmed now.
    if request.method == "GET":
        state, found = verification_link_state(token=token)
        if state != "live" or found is None:
            return _verify_refused(request, state, found)
        locked_out = verification_locked_out(found.ticket)
        if locked_out is not None:
            return _verify_locked_out(request, locked_out)
        summary = verification_summary(ticket=found.ticket, purpose=found.purpose)
        return render(request, "portal/verify.html", {"token": token, "summary": summary})
    try:
        ticket = registration_confirm(
            token=token,
            choices=registration_choices_parse(request.POST.getlist("registration")),
            client_key=client_ip(request),
            actor="anonymous",
        )
    except RateLimited as exc:
        context = {"token": token, "error": exc.message}
        return refusal_render(request, "portal/verify.html", context, exc)
    except AccountLockedOut as exc:
        # Raised only for a link found live: its holder reads the mail it was sent to.
        return _verify_locked_out(request, exc)
    except ApplicationError as exc:
        state, found = verification_link_state(token=token)
        return refused(_verify_refused(request, state, found), exc)
    return done_redirect(request, "verify", {"ticket": ticket_done_summary(ticket)})


def _verify_refused(request: HttpRequest, state: str, found: Verification | None) -> HttpResponse:
    """Say which way a link is no good, before any button, and offer the next step."""
    ticket = found.ticket if found is not None and state != "unknown" else None
    context = {
        "state": state,
        "ticket": ticket,
        # A new request of the same kind; only a domain name (public) is carried over.
        "again_url": _request_again_url(ticket),
        "status_label": Ticket.Status(ticket.status).label if ticket else "",
        "used_at": found.used_at if found is not None else None,
        "expires_at": found.expires_at if found is not None else None,
    }
    default = 410 if state in ("used", "expired", "settled", "superseded") else 404
    if state == "locked":
        default = 429
    return render(request, "portal/verify_refused.html", context, status=default)


def _verify_locked_out(request: HttpRequest, exc: AccountLockedOut) -> HttpResponse:
    """A live link of a frozen or closed account: say so, in the status page's words (409).

    Only the holder of a live link reads this: they proved they read the mail it went to. An
    unknown, used or expired link says nothing of the account (`_verify_refused`).
    """
    context = {"state": "account_locked", "message": exc.message, "closed": exc.closed}
    return refused(render(request, "portal/verify_refused.html", context), exc)


def _request_again_url(ticket: Ticket | None) -> str:
    if ticket is None:
        return reverse("portal:home")
    if ticket.kind == Ticket.Kind.RESEND_PASSWORD and ticket.requested_domain:
        return (
            reverse("portal:request-password")
            + "?"
            + urlencode({"domain": ticket.requested_domain})
        )
    names: dict[str, str] = {
        Ticket.Kind.MODIFY_INFO: "portal:request-modify",
        Ticket.Kind.OPT_OUT: "portal:request-opt-out",
    }
    return reverse(names.get(ticket.kind, "portal:request-general"))


@never_cache
@require_http_methods(["GET", "POST"])
def not_me(request: HttpRequest, token: str) -> HttpResponse:
    """The old address of an email change says it was not them: GET explains, POST freezes."""
    if request.method == "GET":
        live = freeze_link_get_live(token=token)
        return render(
            request,
            "portal/not_me.html",
            {"token": token, "reference": live.ticket.reference if live else None},
        )
    try:
        ticket = account_freeze(token=token, client_key=client_ip(request), actor="anonymous")
    except ApplicationError as exc:
        context = {"token": token, "error": exc.message}
        return refusal_render(request, "portal/not_me.html", context, exc)
    return done_redirect(request, "not-me", {"ticket": ticket_done_summary(ticket)})
