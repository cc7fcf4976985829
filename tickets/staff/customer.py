"""The staff customer page: the freeze, disclosures and the export."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Customer
from accounts.selectors import is_supervisor
from helpdesk.exceptions import ApplicationError, StaffForbidden
from helpdesk.refusals import refusal_form_errors, refusal_message, refused
from helpdesk.shortcuts import found_or_404
from helpdesk.types import AuthenticatedHttpRequest
from tickets.selectors.export import (
    customer_disclosures_for,
    customer_staff_get,
    customer_tickets,
    disclosures_keeper,
)
from tickets.services import customer_export, disclosure_record
from tickets.services.disclosure import DISCLOSURE_FORBIDDEN
from tickets.services.freeze import account_unfreeze
from tickets.staff.common import posted_version, staff_required


def _customer_or_404(request: HttpRequest, number: str):
    return found_or_404(customer_staff_get(user=request.user, number=number))


def _customer_page(
    request: AuthenticatedHttpRequest, customer: Customer, *, error: str = ""
) -> HttpResponse:
    disclosures = customer_disclosures_for(user=request.user, customer=customer)
    context = {
        "customer": customer,
        "domains": list(customer.domains.order_by("name")),
        "tickets": list(customer_tickets(customer=customer)[:100]),
        "disclosures": disclosures,
        "can_disclose": disclosures is not None,
        "can_export": request.user.has_perm("tickets.export_customer"),
        "is_supervisor": is_supervisor(request.user),
        "now": timezone.now(),
        "error": error,
    }
    return render(request, "staff/customer.html", context)


@require_GET
@staff_required
def customer_detail(request: AuthenticatedHttpRequest, number: str) -> HttpResponse:
    return _customer_page(request, _customer_or_404(request, number))


@require_POST
@staff_required
def customer_unfreeze(request: AuthenticatedHttpRequest, number: str) -> HttpResponse:
    """Lift the freeze the page showed (its `freeze_version`); a refusal shows the page again."""
    customer = _customer_or_404(request, number)
    try:
        account_unfreeze(
            customer=customer,
            freeze_version=posted_version(request, "freeze_version"),
            actor=request.user,
            reason=request.POST.get("reason", ""),
        )
    except ApplicationError as exc:
        fresh = _customer_or_404(request, number)
        return refused(_customer_page(request, fresh, error=refusal_message(exc)), exc)
    messages.success(request, _("The freeze is lifted."))
    return redirect("staff:customer", number=customer.number)


class DisclosureForm(forms.Form):
    disclosed_to = forms.CharField(
        label=_("Disclosed to"),
        max_length=200,
        help_text=_("The person or body that received the information."),
    )
    information = forms.CharField(
        label=_("What information"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )
    legal_basis = forms.CharField(
        label=_("Legal basis or process"),
        max_length=200,
        help_text=_("For example a court order, or a police request under a named law."),
    )
    reference = forms.CharField(label=_("Their reference"), max_length=100, required=False)
    disclosed_at = forms.DateTimeField(
        label=_("When it was disclosed"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=_("Leave it empty for now."),
    )


@require_http_methods(["GET", "POST"])
@staff_required
def disclosure_new(request: AuthenticatedHttpRequest, number: str) -> HttpResponse:
    if not disclosures_keeper(request.user):
        raise StaffForbidden(DISCLOSURE_FORBIDDEN)
    customer = _customer_or_404(request, number)
    form = DisclosureForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            disclosure_record(customer=customer, actor=request.user, **form.cleaned_data)
        except (ApplicationError, ValidationError) as exc:
            refusal_form_errors(form, exc)
        else:
            messages.success(request, _("The disclosure is recorded."))
            return redirect("staff:customer", number=customer.number)
    status = 400 if request.method == "POST" else 200
    context = {"customer": customer, "form": form}
    return render(request, "staff/disclosure_new.html", context, status=status)


@require_POST
@staff_required
def customer_export_view(request: AuthenticatedHttpRequest, number: str) -> HttpResponse:
    customer = _customer_or_404(request, number)
    data = customer_export(customer=customer, actor=request.user)
    response = JsonResponse(data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.number}.json"'
    response["Cache-Control"] = "no-store"
    return response
