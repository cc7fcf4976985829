"""Asking for general help or a domain password resend."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from accounts.models import Customer
from accounts.selectors import customer_for_user
from domains.validators import domain_input_suggestion
from helpdesk.exceptions import ApplicationError
from helpdesk.fields import AddressFormField
from helpdesk.ratelimit import client_ip
from helpdesk.refusals import Refusal, refusal_form_errors, refusal_render, refused
from tickets.models import Ticket
from tickets.redaction import CARD_NOTICE, contains_card_number
from tickets.services import RESEND_DETAIL
from tickets.services import request_general as request_general_service
from tickets.services import request_password_resend as request_password_resend_service
from tickets.views.common import (
    AttachmentsField,
    attachment_errors_add,
    attachment_limits_help,
    done_redirect,
    ticket_done_summary,
)


class GeneralRequestForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=200)
    message = forms.CharField(
        label=_("Message"),
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Never include a password or a card number."),
    )
    email = AddressFormField(
        label=_("Your email address"),
        help_text=_("We reply to this address."),
    )
    attachments = AttachmentsField(
        help_text=attachment_limits_help(
            _(
                "A screenshot of an error, for example. Up to {count} files of {megabytes} MB "
                "each: images, PDF or plain text."
            )
        )
    )

    def __init__(self, *args, customer: Customer | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if customer is not None:
            email = self.fields["email"]
            email.required = False
            email.initial = customer.email
            email.help_text = _("Leave it empty to use the address on your account.")


@require_http_methods(["GET", "POST"])
def request_general(request: HttpRequest) -> HttpResponse:
    customer = customer_for_user(request.user)
    if request.method != "POST":
        form = GeneralRequestForm(customer=customer)
        return render(request, "portal/request_general.html", {"form": form})
    form = GeneralRequestForm(request.POST, request.FILES, customer=customer)
    if not form.is_valid():
        return render(request, "portal/request_general.html", {"form": form}, status=400)
    card_found = contains_card_number(form.cleaned_data["subject"], form.cleaned_data["message"])
    try:
        ticket = request_general_service(
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["message"],
            client_key=client_ip(request),
            contact_email=form.cleaned_data["email"] or "",
            actor=customer or "anonymous",
            customer=customer,
            channel=Ticket.Channel.PORTAL,
            language=getattr(request, "LANGUAGE_CODE", None),
            attachments=form.cleaned_data["attachments"],
        )
    except ValidationError as exc:
        attachment_errors_add(form, exc)
        return render(request, "portal/request_general.html", {"form": form}, status=400)
    except ApplicationError as exc:
        refusal_form_errors(form, exc)
        return refusal_render(request, "portal/request_general.html", {"form": form}, exc)
    context = {
        "ticket": ticket_done_summary(ticket),
        "card_notice": gettext(CARD_NOTICE) if card_found else "",
    }
    return done_redirect(request, "request-general", context)


class PasswordResendForm(forms.Form):
    domain = forms.CharField(
        label=_("Domain name"), max_length=300, help_text=_("For example: example.com")
    )
    contact_email = AddressFormField(label=_("Your email address (optional)"), required=False)


def _password_resend_context(**extra) -> dict:
    return {
        "direct_request_url": settings.OPENSRS_DIRECT_REQUEST_URL,
        "manage_url": settings.OPENSRS_MANAGE_URL,
        **extra,
    }


@require_http_methods(["GET", "POST"])
def request_password(request: HttpRequest) -> HttpResponse:
    status = 200
    refusal: Refusal | None = None
    form = (
        PasswordResendForm(request.POST)
        if request.method == "POST"
        else PasswordResendForm(initial={"domain": request.GET.get("domain", "")[:300]})
    )
    if request.method == "POST":
        status = 400
        suggestion = (
            domain_input_suggestion(form.data.get("domain", "")) if form.is_valid() else None
        )
        if suggestion is not None:
            # A URL was typed: offer the domain name in it, and send only when confirmed.
            form = PasswordResendForm(
                initial={"domain": suggestion, "contact_email": form.cleaned_data["contact_email"]}
            )
            context = _password_resend_context(form=form, did_you_mean=suggestion)
            return render(request, "portal/request_password.html", context)
        if form.is_valid():
            customer = customer_for_user(request.user)
            try:
                ticket = request_password_resend_service(
                    domain=form.cleaned_data["domain"],
                    contact_email=form.cleaned_data["contact_email"],
                    client_key=client_ip(request),
                    actor=customer or "anonymous",
                    channel=Ticket.Channel.PORTAL,
                    language=getattr(request, "LANGUAGE_CODE", None),
                )
            except (ValidationError, ApplicationError) as exc:
                refusal_form_errors(form, exc)
                refusal = exc
            else:
                context = _password_resend_context(
                    ticket=ticket_done_summary(ticket), detail=gettext(RESEND_DETAIL)
                )
                return done_redirect(request, "request-password", context)
    response = render(
        request,
        "portal/request_password.html",
        _password_resend_context(form=form),
        status=status,
    )
    return refused(response, refusal) if refusal is not None else response
