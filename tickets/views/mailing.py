"""Opting out of mailings: the request, the preferences page, the unsubscribe link."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import Customer
from accounts.selectors import customer_for_user
from helpdesk.exceptions import ApplicationError, RateLimited
from helpdesk.fields import AddressFormField
from helpdesk.ratelimit import client_ip
from helpdesk.refusals import Refusal, refusal_form_errors, refusal_render, refused
from helpdesk.types import AuthenticatedHttpRequest
from tickets.models import Ticket
from tickets.services import (
    UnsubscribeLinkOld,
    preferences_update,
    unsubscribe_by_token,
    unsubscribe_token_read,
)
from tickets.services import request_opt_out as request_opt_out_service
from tickets.views.common import customer_or_404, done_redirect, ticket_done_summary

OPT_OUT_CHOICES = [
    ("product_mailings", _("Product mailings (news and offers from support@)")),
    ("reseller_newsletters", _("Reseller newsletters (from billing@)")),
]
PREFERENCES_SAVED = _("Your mailing preferences were saved. We sent a confirmation by email.")
PREFERENCES_UNCHANGED = _("Nothing changed: these were already your preferences.")


class OptOutRequestForm(forms.Form):
    email = AddressFormField(label=_("Your email address on record"))
    lists = forms.MultipleChoiceField(
        label=_("Stop these mailings"),
        choices=OPT_OUT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        initial=["product_mailings"],
    )


class PreferencesForm(forms.Form):
    product_mailings = forms.BooleanField(
        label=_("Product mailings"),
        required=False,
        help_text=_("News about our products and offers, sent from support@."),
    )
    reseller_newsletters = forms.BooleanField(
        label=_("Reseller newsletters"),
        required=False,
        help_text=_("News for resellers, sent from billing@."),
    )
    # What the page showed of each list (preferences_update leaves a box saved as shown alone).
    shown_product_mailings = forms.NullBooleanField(widget=forms.HiddenInput, required=False)
    shown_reseller_newsletters = forms.NullBooleanField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, customer: Customer, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not customer.is_reseller:
            del self.fields["reseller_newsletters"]
            del self.fields["shown_reseller_newsletters"]

    def shown(self) -> dict[str, bool]:
        """The lists whose value the page showed, as it showed them (none from an older page)."""
        return {
            name[len("shown_") :]: value
            for name, value in self.cleaned_data.items()
            if name.startswith("shown_") and value is not None
        }


@require_http_methods(["GET", "POST"])
def request_opt_out(request: HttpRequest) -> HttpResponse:
    status = 200
    refusal: Refusal | None = None
    form = OptOutRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                ticket = request_opt_out_service(
                    email=form.cleaned_data["email"],
                    lists=form.cleaned_data["lists"],
                    client_key=client_ip(request),
                    actor="anonymous",
                    channel=Ticket.Channel.PORTAL,
                )
            except (ValidationError, ApplicationError) as exc:
                refusal_form_errors(form, exc)
                refusal = exc
            else:
                hours = int(settings.VERIFICATION_TTL.total_seconds() // 3600)
                done = {"ticket": ticket_done_summary(ticket), "hours": hours}
                return done_redirect(request, "request-opt-out", done)
    context = {"form": form, "customer": customer_for_user(request.user)}
    response = render(request, "portal/opt_out_request.html", context, status=status)
    return refused(response, refusal) if refusal is not None else response


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    customer = customer_or_404(request)
    if request.method != "POST":
        initial = {
            "product_mailings": customer.product_mailings,
            "reseller_newsletters": customer.reseller_newsletters,
            "shown_product_mailings": customer.product_mailings,
            "shown_reseller_newsletters": customer.reseller_newsletters,
        }
        form = PreferencesForm(initial=initial, customer=customer)
        return render(request, "portal/preferences.html", {"form": form, "customer": customer})
    form = PreferencesForm(request.POST, customer=customer)
    if not form.is_valid():
        context = {"form": form, "customer": customer}
        return render(request, "portal/preferences.html", context, status=400)
    before = (customer.product_mailings, customer.reseller_newsletters)
    try:
        preferences_update(
            customer=customer,
            product_mailings=form.cleaned_data["product_mailings"],
            reseller_newsletters=form.cleaned_data.get("reseller_newsletters", False),
            actor=customer,
            shown=form.shown(),
        )
    except RateLimited as exc:
        form.add_error(None, exc.message)
        context = {"form": form, "customer": customer}
        return refusal_render(request, "portal/preferences.html", context, exc)
    customer.refresh_from_db(fields=["product_mailings", "reseller_newsletters"])
    changed = before != (customer.product_mailings, customer.reseller_newsletters)
    if changed:
        messages.success(request, PREFERENCES_SAVED)
    else:
        messages.info(request, PREFERENCES_UNCHANGED)
    return redirect("portal:preferences")


# Authorised by the signed token alone: an RFC 8058 one-click POST comes from the mail
# provider with no cookie and no CSRF token, and only ever turns a mailing off.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "GET":
            # GET only shows a button: mail scanners fetch links, and a fetch must change nothing.
            customer, list_name = unsubscribe_token_read(token=token)
            context = {
                "token": token,
                "list_name": list_name,
                "already": not getattr(customer, list_name),
            }
            return render(request, "portal/unsubscribe.html", context)
        ticket = unsubscribe_by_token(token=token)
    except UnsubscribeLinkOld:
        # A year-old link is not trusted to act alone: the owner signs in and chooses.
        return redirect("portal:preferences")
    except ApplicationError as exc:
        return refusal_render(request, "portal/unsubscribe.html", {"error": exc.message}, exc)
    done = {"ticket": ticket_done_summary(ticket)}
    if request.POST.get("List-Unsubscribe") == "One-Click":
        # RFC 8058: the mail provider posts and reads the answer itself; it follows no redirect.
        return render(request, "portal/unsubscribe_done.html", done)
    return done_redirect(request, "unsubscribe", done)
