"""The resolution email's "Did this solve it?" links: GET shows a confirm button, POST records."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from helpdesk.exceptions import ApplicationError, RateLimited
from helpdesk.ratelimit import client_ip
from helpdesk.refusals import refusal_form_errors, refused
from tickets.models import Satisfaction, Verification
from tickets.selectors.satisfaction import satisfaction_current
from tickets.selectors.status_page import status_link_find
from tickets.services.satisfaction import (
    SATISFACTION_COMMENT_MAX,
    SatisfactionLinkInvalid,
    satisfaction_link_check,
    satisfaction_record,
)

THANKS = _("Thank you: your answer is recorded. You can change it here until the link expires.")


class SatisfactionForm(forms.Form):
    answer = forms.ChoiceField(
        label=_("Did this solve it?"),
        choices=Satisfaction.Answer.choices,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("Anything to add? (optional)"),
        required=False,
        max_length=SATISFACTION_COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


def _refused(request: HttpRequest, exc: SatisfactionLinkInvalid) -> HttpResponse:
    return render(
        request,
        "portal/satisfaction_refused.html",
        {"state": exc.state, "error": exc.message},
        status=exc.status_code,
    )


def _page(
    request: HttpRequest,
    token: str,
    answer: str,
    *,
    form: SatisfactionForm | None = None,
    status: int = 200,
) -> HttpResponse:
    state, found = status_link_find(token=token, purpose=Verification.Purpose.SATISFACTION)
    try:
        verification = satisfaction_link_check(state=state, verification=found)
    except SatisfactionLinkInvalid as exc:
        return _refused(request, exc)
    current = satisfaction_current(ticket_id=verification.ticket_id)
    if form is None:
        initial = {"answer": answer if answer in Satisfaction.Answer.values else ""}
        if current is not None:
            initial["comment"] = current.comment
        form = SatisfactionForm(initial=initial)
    context = {
        "form": form,
        "token": token,
        "answer": answer,
        "reference": verification.ticket.reference,
        "current": current,
    }
    return render(request, "portal/satisfaction.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def satisfaction(request: HttpRequest, token: str, answer: str) -> HttpResponse:
    # GET never records: mail scanners follow links.
    if request.method != "POST":
        return _page(request, token, answer)
    form = SatisfactionForm(request.POST)
    if not form.is_valid():
        return _page(request, token, answer, form=form, status=400)
    try:
        recorded = satisfaction_record(
            token=token,
            answer=form.cleaned_data["answer"],
            comment=form.cleaned_data["comment"],
            client_key=client_ip(request),
        )
    except SatisfactionLinkInvalid as exc:
        return _refused(request, exc)
    except RateLimited as exc:
        form.add_error(None, exc.message)
        return refused(_page(request, token, answer, form=form), exc)
    except ApplicationError as exc:
        form.add_error("answer", exc.message)
        return _page(request, token, answer, form=form, status=400)
    except ValidationError as exc:
        refusal_form_errors(form, exc)
        return _page(request, token, answer, form=form, status=400)
    messages.success(request, THANKS)
    return redirect("portal:satisfaction", token=token, answer=recorded.answer)
