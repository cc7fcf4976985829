"""The staff dashboard: figures over a range of days."""

from datetime import date
from typing import Any

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from accounts.selectors import is_supervisor
from helpdesk.types import AuthenticatedHttpRequest
from tickets.selectors.dashboard import (
    DASHBOARD_DEFAULT_DAYS,
    DASHBOARD_MAX_DAYS,
    DASHBOARD_RANGES,
    DayRange,
    dashboard_figures,
    dashboard_last_days,
    dashboard_today,
)
from tickets.selectors.registration import registration_problems
from tickets.services import modify_awaiting_supervisor
from tickets.staff.common import SingleValuedQueryForm, staff_required

EARLIEST_DAY = date(2000, 1, 1)
RANGE_DATES_NEEDED = _("Give both the first and the last day of the range.")
RANGE_BACKWARDS = _("The first day comes after the last day.")
RANGE_IN_FUTURE = _("The range cannot end after today.")
RANGE_TOO_OLD = _("The range cannot start before 1 January 2000.")
RANGE_TOO_LONG = gettext_noop("A range covers at most %(days)s days.")


class RangeForm(SingleValuedQueryForm):
    range = forms.ChoiceField(
        label=_("Period"),
        required=False,
        choices=[
            *[(str(n), format_lazy(_("Last {days} days"), days=n)) for n in DASHBOARD_RANGES],
            ("custom", _("Custom")),
        ],
    )
    start = forms.DateField(label=_("From"), required=False, input_formats=["%Y-%m-%d"])
    end = forms.DateField(label=_("To"), required=False, input_formats=["%Y-%m-%d"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("range") != "custom":
            return data
        start, end = data.get("start"), data.get("end")
        if start is None or end is None:
            if not self.errors:
                raise forms.ValidationError(RANGE_DATES_NEEDED)
            return data
        if start > end:
            raise forms.ValidationError(RANGE_BACKWARDS)
        if end > dashboard_today():
            raise forms.ValidationError(RANGE_IN_FUTURE)
        if start < EARLIEST_DAY:
            raise forms.ValidationError(RANGE_TOO_OLD)
        if (end - start).days + 1 > DASHBOARD_MAX_DAYS:
            raise forms.ValidationError(gettext(RANGE_TOO_LONG) % {"days": DASHBOARD_MAX_DAYS})
        return data

    def day_range(self) -> DayRange:
        """The days asked for; the default range when the form is not valid."""
        data = self.cleaned_data if self.is_valid() else {}
        chosen = data.get("range") or str(DASHBOARD_DEFAULT_DAYS)
        if chosen == "custom":
            return DayRange(start=data["start"], end=data["end"])
        return dashboard_last_days(int(chosen))


@require_GET
@staff_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = RangeForm(request.GET)
    days = form.day_range()
    supervisor = is_supervisor(request.user)
    context = {
        "form": form,
        "figures": dashboard_figures(days=days, reader=request.user),
        "registration_problems": registration_problems(),
        "approvals_waiting": modify_awaiting_supervisor().count(),
        "is_supervisor": supervisor,
    }
    return render(request, "staff/dashboard.html", context, status=400 if form.errors else 200)
