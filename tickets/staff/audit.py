"""The staff audit-log page."""

from urllib.parse import urlencode

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from helpdesk.types import AuthenticatedHttpRequest
from tickets.audit import audit_verify
from tickets.selectors.audit import audit_actions, audit_log_page
from tickets.staff.common import SingleValuedQueryForm, staff_required


class AuditFilterForm(SingleValuedQueryForm):
    ticket = forms.CharField(label=_("Ticket reference"), required=False, max_length=11)
    customer = forms.CharField(label=_("Customer number"), required=False, max_length=12)
    action = forms.CharField(label=_("Action"), required=False, max_length=64)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    verify = forms.BooleanField(required=False, widget=forms.HiddenInput)


@require_GET
@staff_required
def audit_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    filters = {
        "ticket": (data.get("ticket") or "").strip().upper(),
        "customer": (data.get("customer") or "").strip().upper(),
        "action": (data.get("action") or "").strip(),
    }
    rows, next_before = audit_log_page(user=request.user, **filters, before=data.get("before"))
    context = {
        "form": form,
        "rows": rows,
        "actions": audit_actions(user=request.user),
        "next_query": urlencode({**filters, "before": next_before}) if next_before else None,
        "first_query": urlencode(filters),
        "chain": audit_verify() if data.get("verify") else None,
    }
    return render(request, "staff/audit.html", context)
