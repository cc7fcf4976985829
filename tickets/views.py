"""Portal views: parse the form, call one service, render."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Customer
from accounts.selectors import customer_for_user
from helpdesk.exceptions import ApplicationError, RateLimited, TransitionNotAllowed
from helpdesk.ratelimit import client_ip
from helpdesk.types import AuthenticatedHttpRequest
from tickets.models import Message, Ticket
from tickets.redaction import CARD_NOTICE, contains_card_number
from tickets.selectors import ticket_get, ticket_list
from tickets.selectors_verification import verification_get_live, verification_summary
from tickets.services import (
    MODIFY_FIELD_LABELS,
    MODIFY_FIELDS,
    NO_REPLY_STATUSES,
    RESEND_DETAIL,
    TRANSITIONS,
    modify_input_has_card,
    preferences_update,
    ticket_close,
    ticket_reply_add,
    unsubscribe_by_token,
    unsubscribe_token_read,
    verification_confirm,
)
from tickets.services import request_general as request_general_service
from tickets.services import request_modify as request_modify_service
from tickets.services import request_opt_out as request_opt_out_service
from tickets.services import request_password_resend as request_password_resend_service
from tickets.services.freeze import account_freeze, freeze_link_get_live


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


# --- general help (portal) ---

GENERAL_REQUEST_REFUSED = _("A subject and a message are both needed.")


class GeneralRequestForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=200)
    message = forms.CharField(
        label=_("Message"),
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Never include a password or a card number."),
    )
    email = forms.EmailField(
        label=_("Your email address"),
        max_length=254,
        help_text=_("We reply to this address."),
    )

    def __init__(self, *args, customer: Customer | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if customer is not None:
            email = self.fields["email"]
            email.required = False
            email.initial = customer.email
            email.help_text = _("Leave it empty to use the address on your account.")


def _rate_limited_response(response: HttpResponse, exc: RateLimited) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(exc.retry_after)
    return response


@require_http_methods(["GET", "POST"])
def request_general(request: HttpRequest) -> HttpResponse:
    customer = customer_for_user(request.user)
    if request.method != "POST":
        form = GeneralRequestForm(customer=customer)
        return render(request, "portal/request_general.html", {"form": form})
    form = GeneralRequestForm(request.POST, customer=customer)
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
        )
    except RateLimited as exc:
        form.add_error(None, exc.message)
        response = render(request, "portal/request_general.html", {"form": form})
        return _rate_limited_response(response, exc)
    except ApplicationError:
        form.add_error(None, GENERAL_REQUEST_REFUSED)
        return render(request, "portal/request_general.html", {"form": form}, status=400)
    context = {
        "ticket": ticket,
        "card_notice": gettext(CARD_NOTICE) if card_found else "",
    }
    return render(request, "portal/request_general_done.html", context)


# --- password resend (portal) ---


class PasswordResendForm(forms.Form):
    domain = forms.CharField(
        label=_("Domain name"), max_length=300, help_text=_("For example: example.com")
    )
    contact_email = forms.EmailField(
        label=_("Your email address (optional)"), max_length=254, required=False
    )


def _password_resend_context(**extra) -> dict:
    return {
        "direct_request_url": settings.OPENSRS_DIRECT_REQUEST_URL,
        "manage_url": settings.OPENSRS_MANAGE_URL,
        **extra,
    }


@require_http_methods(["GET", "POST"])
def request_password(request: HttpRequest) -> HttpResponse:
    status, retry_after = 200, None
    form = PasswordResendForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        status = 400
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
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            except RateLimited as exc:
                form.add_error(None, exc.message)
                status, retry_after = 429, exc.retry_after
            else:
                context = _password_resend_context(ticket=ticket, detail=gettext(RESEND_DETAIL))
                return render(request, "portal/request_password_done.html", context)
    response = render(
        request,
        "portal/request_password.html",
        _password_resend_context(form=form),
        status=status,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


# --- modify personal information (portal) ---


class ModifyRequestForm(forms.Form):
    email_on_record = forms.CharField(
        label=_("Your email address on record"), max_length=254, required=False
    )
    full_name = forms.CharField(label=_("Full name"), max_length=254, required=False)
    email = forms.CharField(label=_("New email address"), max_length=254, required=False)
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
    if request.method == "POST":
        form = ModifyRequestForm(request.POST, customer=customer)
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
                )
            except ValidationError as exc:
                _modify_form_errors(form, exc)
                status = 400
            except RateLimited as exc:
                form.add_error(None, exc.message)
                status = 429
            else:
                card = modify_input_has_card(changes=form.changes(), note=form.cleaned_data["note"])
                context = {
                    "ticket": ticket,
                    "owner": customer is not None,
                    "card_notice": gettext(CARD_NOTICE) if card else "",
                    "hours": int(settings.VERIFICATION_TTL.total_seconds() // 3600),
                }
                return render(request, "portal/modify_done.html", context)
        else:
            status = 400
    else:
        initial = {field: getattr(customer, field) for field in MODIFY_FIELDS} if customer else {}
        form = ModifyRequestForm(initial=initial, customer=customer)
    return render(
        request, "portal/modify_request.html", {"form": form, "owner": customer}, status=status
    )


def _modify_form_errors(form: ModifyRequestForm, exc: ValidationError) -> None:
    for key, errors in exc.error_dict.items():
        for error in errors:
            if key == "email" and "email_on_record" in form.fields:
                form.add_error("email_on_record", error.messages)
            elif error.code in MODIFY_FIELDS and error.params:
                form.add_error(error.code, str(error.params["error"]))
            else:
                form.add_error(None, error.messages)


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest, token: str) -> HttpResponse:
    # GET only shows a button: mail scanners fetch links, and a fetch must change nothing.
    # It shows what the link confirms only for a link that could be confirmed now.
    if request.method == "GET":
        live = verification_get_live(token=token)
        summary = verification_summary(ticket=live.ticket, purpose=live.purpose) if live else None
        return render(request, "portal/verify.html", {"token": token, "summary": summary})
    try:
        ticket = verification_confirm(token=token, client_key=client_ip(request), actor="anonymous")
    except ApplicationError as exc:
        return render(
            request,
            "portal/verify.html",
            {"token": token, "error": exc.message},
            status=exc.status_code,
        )
    return render(request, "portal/verify_done.html", {"ticket": ticket})


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
        return render(
            request,
            "portal/not_me.html",
            {"token": token, "error": exc.message},
            status=exc.status_code,
        )
    return render(request, "portal/not_me_done.html", {"ticket": ticket})


# --- opt-out and unsubscribe (portal) ---

OPT_OUT_CHOICES = [
    ("product_mailings", _("Product mailings (news and offers from support@)")),
    ("reseller_newsletters", _("Reseller newsletters (from billing@)")),
]
PREFERENCES_SAVED = _("Your mailing preferences were saved. We sent a confirmation by email.")
PREFERENCES_UNCHANGED = _("Nothing changed: these were already your preferences.")


class OptOutRequestForm(forms.Form):
    email = forms.EmailField(label=_("Your email address on record"), max_length=254)
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

    def __init__(self, *args, customer: Customer, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not customer.is_reseller:
            del self.fields["reseller_newsletters"]


@require_http_methods(["GET", "POST"])
def request_opt_out(request: HttpRequest) -> HttpResponse:
    status, retry_after = 200, None
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
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            except RateLimited as exc:
                form.add_error(None, exc.message)
                status, retry_after = 429, exc.retry_after
            else:
                hours = int(settings.VERIFICATION_TTL.total_seconds() // 3600)
                context = {"ticket": ticket, "hours": hours}
                return render(request, "portal/opt_out_done.html", context)
    context = {"form": form, "customer": customer_for_user(request.user)}
    response = render(request, "portal/opt_out_request.html", context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    customer = _customer_or_404(request)
    if request.method != "POST":
        initial = {
            "product_mailings": customer.product_mailings,
            "reseller_newsletters": customer.reseller_newsletters,
        }
        form = PreferencesForm(initial=initial, customer=customer)
        return render(request, "portal/preferences.html", {"form": form, "customer": customer})
    form = PreferencesForm(request.POST, customer=customer)
    if not form.is_valid():
        context = {"form": form, "customer": customer}
        return render(request, "portal/preferences.html", context, status=400)
    before = (customer.product_mailings, customer.reseller_newsletters)
    preferences_update(
        customer=customer,
        product_mailings=form.cleaned_data["product_mailings"],
        reseller_newsletters=form.cleaned_data.get("reseller_newsletters", False),
        actor=customer,
    )
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
    except ApplicationError as exc:
        context = {"error": exc.message}
        return render(request, "portal/unsubscribe.html", context, status=exc.status_code)
    return render(request, "portal/unsubscribe_done.html", {"ticket": ticket})


# --- my tickets (portal) ---

REPLY_ADDED = _("Your reply was added. We will answer by email and on this page.")
REPLY_REFUSED = _("This ticket is closed, so it cannot take a reply. Please open a new request.")
TICKET_CLOSED = _("The ticket is closed. Thank you for letting us know.")
CLOSE_REFUSED = _("This ticket cannot be closed now.")
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


class TicketCloseForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


def _customer_or_404(request: HttpRequest) -> Customer:
    # Staff work tickets in the staff queue; /my/ is only for customers.
    customer = customer_for_user(request.user)
    if customer is None:
        raise Http404
    return customer


def _my_ticket_or_404(request: HttpRequest, reference: str) -> Ticket:
    ticket = ticket_get(user=request.user, reference=reference)
    if ticket is None:
        raise Http404
    return ticket


@login_required
@require_http_methods(["GET"])
def my_tickets(request: AuthenticatedHttpRequest) -> HttpResponse:
    _customer_or_404(request)
    page = Paginator(ticket_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "portal/my_tickets.html", {"page": page, "tickets": page.object_list})


def _my_ticket_render(
    request: HttpRequest, ticket: Ticket, *, reply_form: TicketReplyForm, status: int = 200
) -> HttpResponse:
    changes = [
        {
            "label": gettext(MODIFY_FIELD_LABELS.get(change.field, change.field)),
            "old": change.old_value,
            "new": change.new_value,
            "applied_at": change.applied_at,
        }
        for change in ticket.changes.all()
    ]
    context = {
        "ticket": ticket,
        "changes": changes,
        "conversation": list(ticket.messages.all()),
        "reply_form": reply_form,
        "can_reply": ticket.status not in NO_REPLY_STATUSES,
        "can_close": Ticket.Status.CLOSED in TRANSITIONS[ticket.status],
    }
    return render(request, "portal/my_ticket.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def my_ticket(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    _customer_or_404(request)
    ticket = _my_ticket_or_404(request, reference)
    return _my_ticket_render(request, ticket, reply_form=TicketReplyForm())


@login_required
@require_POST
def my_ticket_reply(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    customer = _customer_or_404(request)
    ticket = _my_ticket_or_404(request, reference)
    form = TicketReplyForm(request.POST)
    if not form.is_valid():
        return _my_ticket_render(request, ticket, reply_form=form, status=400)
    body = form.cleaned_data["body"]
    card_found = contains_card_number(body)
    try:
        ticket_reply_add(
            ticket=ticket,
            body=body,
            actor=customer,
            author=Message.Author.CUSTOMER,
            channel=Ticket.Channel.PORTAL,
            author_user=request.user,
        )
    except TransitionNotAllowed:
        messages.error(request, REPLY_REFUSED)
    except ApplicationError:
        form.add_error("body", _("Write a message first."))
        return _my_ticket_render(request, ticket, reply_form=form, status=400)
    else:
        messages.success(request, REPLY_ADDED)
        if card_found:
            messages.warning(request, gettext(CARD_NOTICE))
    return redirect("portal:my-ticket", reference=ticket.reference)


@login_required
@require_POST
def my_ticket_close(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    customer = _customer_or_404(request)
    ticket = _my_ticket_or_404(request, reference)
    form = TicketCloseForm(request.POST)
    version = form.cleaned_data["version"] if form.is_valid() else None
    try:
        ticket_close(ticket=ticket, actor=customer, expected_version=version)
    except TransitionNotAllowed:
        messages.error(request, CLOSE_REFUSED)
    except ApplicationError:
        messages.error(request, TICKET_CHANGED)
    else:
        messages.success(request, TICKET_CLOSED)
    return redirect("portal:my-ticket", reference=ticket.reference)
