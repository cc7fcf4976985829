"""Staff queue views: parse the form, call one service, render."""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import email_canonical, is_staff_member, is_supervisor
from helpdesk.exceptions import CACHE_DOWN_ERRORS, ApplicationError
from helpdesk.types import AuthenticatedHttpRequest
from tickets.audit import audit_verify
from tickets.models import Message, Ticket
from tickets.selectors import (
    QUEUE_PAGE_SIZES,
    QUEUE_SORTS,
    QUEUE_VIEWS,
    QueueFilters,
    audit_actions,
    audit_log_page,
    customer_disclosures,
    customer_staff_get,
    customer_tickets,
    dashboard_figures,
    staff_member_get,
    staff_members,
    staff_queue,
    staff_ticket_get,
    ticket_events,
    ticket_pk_version_get,
)
from tickets.services import (
    MODIFY_FIELD_LABELS,
    customer_export,
    disclosure_record,
    modify_approval,
    ticket_approve,
    ticket_assign,
    ticket_close,
    ticket_priority_set,
    ticket_reject,
    ticket_reopen,
    ticket_reply_add,
    ticket_resolve,
)
from tickets.services.freeze import account_unfreeze

FILTERS_IGNORED = _("Some filters or sort options were not recognised and were ignored.")
VERSION_MISSING = _("This form is out of date. Reload the page and try again.")
UNKNOWN_STAFF = _("There is no staff member called %(name)s.")
REPLY_EMPTY = _("Write a reply or choose a canned response.")
PRESENCE_SECONDS = 120
_CURSOR_SALT = "tickets.staff.queue"
_DATETIME_KEYS = frozenset({"k_due", "k_created", "k_updated"})

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


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the login page; anyone who is not staff gets a 404."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_staff_member(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _require_perm(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


# --- queue ---


class QueueForm(forms.Form):
    view = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[
            ("open", _("Open")),
            ("mine", _("Mine")),
            ("unassigned", _("Unassigned")),
            ("overdue", _("Overdue")),
            ("awaiting_verification", _("Awaiting verification")),
            ("all", _("All tickets")),
        ],
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *Ticket.Status.choices]
    )
    kind = forms.ChoiceField(
        label=_("Request"), required=False, choices=[("", _("Any request")), *Ticket.Kind.choices]
    )
    assignee = forms.CharField(label=_("Assignee"), required=False, max_length=150)
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        help_text=_("Reference, customer email or number, domain, or subject."),
    )
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[
            ("urgency", _("Overdue first, then due soonest")),
            ("due", _("Due, soonest first")),
            ("-due", _("Due, latest first")),
            ("-priority", _("Priority, highest first")),
            ("priority", _("Priority, lowest first")),
            ("-created", _("Newest first")),
            ("created", _("Oldest first")),
            ("-updated", _("Recently updated first")),
            ("updated", _("Least recently updated first")),
        ],
    )
    size = forms.TypedChoiceField(
        label=_("Per page"),
        required=False,
        coerce=int,
        empty_value=QUEUE_PAGE_SIZES[0],  # type: ignore[arg-type]  # any value may stand for empty; django-stubs says str
        choices=[(n, str(n)) for n in QUEUE_PAGE_SIZES],
    )
    cursor = forms.CharField(required=False, max_length=600, widget=forms.HiddenInput)


def _queue_filters(form: QueueForm) -> QueueFilters:
    """Filters from the valid fields only: a value outside an allow-list falls back to default."""
    data = form.cleaned_data
    view = data.get("view") or "open"
    sort = data.get("sort") or "urgency"
    size = data.get("size") or QUEUE_PAGE_SIZES[0]
    return QueueFilters(
        view=view if view in QUEUE_VIEWS else "open",
        status=data.get("status") or "",
        kind=data.get("kind") or "",
        assignee=data.get("assignee") or "",
        q=data.get("q") or "",
        sort=sort if sort in QUEUE_SORTS else "urgency",
        page_size=size if size in QUEUE_PAGE_SIZES else QUEUE_PAGE_SIZES[0],
    )


def _cursor_dump(sort: str, values: list[Any]) -> str:
    plain = [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
    return signing.dumps({"s": sort, "v": plain}, salt=_CURSOR_SALT, compress=True)


def _cursor_load(raw: str, sort: str) -> list[Any] | None:
    """The position a signed cursor names, or None (a forged or foreign cursor starts over)."""
    if not raw:
        return None
    try:
        payload = signing.loads(raw, salt=_CURSOR_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("s") != sort:
        return None
    keys = QUEUE_SORTS[sort]
    values = payload.get("v")
    if not isinstance(values, list) or len(values) != len(keys):
        return None
    decoded = []
    for (name, _descending), value in zip(keys, values, strict=True):
        if name in _DATETIME_KEYS:
            value = parse_datetime(value) if isinstance(value, str) else None
            if value is None:
                return None
        elif not isinstance(value, int):
            return None
        decoded.append(value)
    return decoded


def _query_string(filters: QueueFilters, **extra: Any) -> str:
    params = {
        "view": filters.view,
        "status": filters.status,
        "kind": filters.kind,
        "assignee": filters.assignee,
        "q": filters.q,
        "sort": filters.sort,
        "size": filters.page_size,
        **extra,
    }
    return urlencode({k: v for k, v in params.items() if v not in ("", None)})


@require_GET
@staff_required
def queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = QueueForm(request.GET)
    form.is_valid()
    filters = _queue_filters(form)
    cursor = _cursor_load(form.cleaned_data.get("cursor") or "", filters.sort)
    page = staff_queue(user=request.user, filters=filters, cursor=cursor)
    next_query = None
    if page.next_cursor is not None:
        next_query = _query_string(filters, cursor=_cursor_dump(filters.sort, page.next_cursor))
    view_links = [
        {
            "name": name,
            "label": label,
            "count": page.counts.get(name),
            "query": _query_string(
                QueueFilters(view=name, sort=filters.sort, page_size=filters.page_size)
            ),
            "current": name == filters.view,
        }
        # A ChoiceField's choices are normalised to a list of (value, label) pairs.
        for name, label in cast(
            list[tuple[str, Any]], cast(forms.ChoiceField, QueueForm.base_fields["view"]).choices
        )
    ]
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "view_links": view_links,
        "next_query": next_query,
        "is_first_page": cursor is None,
        "first_query": _query_string(filters),
        "filters_ignored": bool(form.errors),
        "staff_names": [u.username for u in staff_members()],
    }
    return render(request, "staff/queue.html", context)


# --- ticket ---


def _presence_key(ticket_id: int, user_id: int) -> str:
    return f"staff-presence:{ticket_id}:{user_id}"


def _presence_touch_and_read(ticket_id: int, user) -> list[str]:
    """Mark this user as looking at the ticket; return the other staff seen in the last minutes.

    Presence is a courtesy: with the cache unreachable the page still works, without it.
    """
    others = {
        _presence_key(ticket_id, member.pk): member.username
        for member in staff_members()
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


def _ticket_page(
    request: HttpRequest,
    ticket: Ticket,
    *,
    status: int = 200,
    error: str = "",
    forms_in: dict[str, forms.Form] | None = None,
) -> HttpResponse:
    forms_in = forms_in or {}
    supervisor = is_supervisor(request.user)
    events = list(ticket_events(ticket=ticket))
    changes = [
        {
            "label": MODIFY_FIELD_LABELS.get(c.field, c.field),
            "old": c.old_value,
            "new": c.new_value,
            "applied_at": c.applied_at,
        }
        for c in ticket.changes.all()
    ]
    members = [u.username for u in staff_members()]
    context = {
        "ticket": ticket,
        "now": timezone.now(),
        "changes": changes,
        "thread": list(ticket.messages.all()),
        "notifications": list(ticket.notifications.all()),
        "opensrs_calls": [e for e in events if e.action == "opensrs.call"],
        "events": events,
        "is_supervisor": supervisor,
        "approval": _approval_state(ticket, request.user),
        "contact_differs": bool(
            ticket.customer
            and ticket.contact_email
            and email_canonical(ticket.contact_email) != email_canonical(ticket.customer.email)
        ),
        "viewers": _presence_touch_and_read(ticket.pk, request.user),
        "error": error,
        "staff_names": members,
        "canned": [(key, label, str(text)) for key, (label, text) in CANNED_RESPONSES.items()],
        "reply_form": forms_in.get("reply") or ReplyForm(),
        "note_form": forms_in.get("note") or NoteForm(),
        "reject_form": forms_in.get("reject") or RejectForm(),
        "resolve_form": forms_in.get("resolve") or ResolveForm(),
        "priority_form": PriorityForm(initial={"priority": ticket.priority}),
        "can_reopen": ticket.status in (Ticket.Status.RESOLVED, Ticket.Status.REFERRED),
        "can_close": ticket.status
        in (
            Ticket.Status.AWAITING_CUSTOMER,
            Ticket.Status.RESOLVED,
            Ticket.Status.REFERRED,
            Ticket.Status.REJECTED,
        ),
    }
    return render(request, "staff/ticket.html", context, status=status)


def _ticket_or_404(request: HttpRequest, reference: str) -> Ticket:
    ticket = staff_ticket_get(user=request.user, reference=reference)
    if ticket is None:
        raise Http404
    return ticket


@require_GET
@never_cache
@staff_required
def ticket_detail(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _ticket_page(request, _ticket_or_404(request, reference))


@require_GET
@never_cache
@staff_required
def ticket_presence(request: AuthenticatedHttpRequest, reference: str) -> JsonResponse:
    """Who else is looking, and whether the ticket changed since the version the page shows."""
    found = ticket_pk_version_get(user=request.user, reference=reference)
    if found is None:
        raise Http404
    ticket_id, version = found
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


def _posted_version(request: HttpRequest) -> int:
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        raise ApplicationError(str(VERSION_MISSING)) from None


def _act(
    request: HttpRequest,
    reference: str,
    act: Callable[[Ticket, int], Any],
    *,
    form_name: str = "",
    form: forms.Form | None = None,
    done: Any = "",
) -> HttpResponse:
    """Run one action on a ticket; a refusal re-renders the page with the reason and the input."""
    ticket = _ticket_or_404(request, reference)
    forms_in = {form_name: form} if form is not None else {}
    if form is not None and not form.is_valid():
        return _ticket_page(request, ticket, status=400, forms_in=forms_in)
    try:
        act(ticket, _posted_version(request))
    except (ApplicationError, ValidationError) as exc:
        message = exc.message if isinstance(exc, ApplicationError) else " ".join(exc.messages)
        status = getattr(exc, "status_code", 400)
        fresh = _ticket_or_404(request, reference)
        return _ticket_page(
            request, fresh, status=status, error=gettext(message), forms_in=forms_in
        )
    if done:
        messages.success(request, done)
    return redirect("staff:ticket", reference=reference)


@require_POST
@staff_required
def ticket_claim(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_assign(
            ticket=t, assignee=request.user, actor=request.user, expected_version=v
        ),
        done=_("The ticket is yours."),
    )


@require_POST
@staff_required
def ticket_assign_to(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = AssignForm(request.POST)

    def act(ticket: Ticket, version: int) -> Ticket:
        name = form.cleaned_data["assignee"].strip()
        member = staff_member_get(username=name) if name else None
        if name and member is None:
            raise ApplicationError(str(UNKNOWN_STAFF) % {"name": name})
        return ticket_assign(
            ticket=ticket, assignee=member, actor=request.user, expected_version=version
        )

    return _act(request, reference, act, form_name="assign", form=form, done=_("Assignee saved."))


@require_POST
@staff_required
def ticket_reply(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = ReplyForm(request.POST)

    def act(ticket: Ticket, version: int) -> Message:
        body = form.cleaned_data["body"].strip()
        canned = form.cleaned_data["canned"]
        if canned:
            body = "\n\n".join(part for part in (body, str(CANNED_RESPONSES[canned][1])) if part)
        if not body:
            raise ApplicationError(str(REPLY_EMPTY))
        return ticket_reply_add(
            ticket=ticket,
            body=body,
            actor=request.user,
            author=Message.Author.STAFF,
            channel=Ticket.Channel.STAFF,
            author_user=request.user,
            expected_version=version,
        )

    return _act(request, reference, act, form_name="reply", form=form, done=_("Reply sent."))


@require_POST
@staff_required
def ticket_note(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = NoteForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_reply_add(
            ticket=t,
            body=form.cleaned_data["body"],
            actor=request.user,
            author=Message.Author.STAFF,
            channel=Ticket.Channel.STAFF,
            author_user=request.user,
            internal=True,
            expected_version=v,
        ),
        form_name="note",
        form=form,
        done=_("Note added."),
    )


@require_POST
@staff_required
def ticket_approve_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_approve(ticket=t, actor=request.user, expected_version=v),
        done=_("Approved: the changes are applied."),
    )


@require_POST
@staff_required
def ticket_reject_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = RejectForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_reject(
            ticket=t, actor=request.user, reason=form.cleaned_data["reason"], expected_version=v
        ),
        form_name="reject",
        form=form,
        done=_("Rejected; the requester is told why."),
    )


@require_POST
@staff_required
def ticket_resolve_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = ResolveForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_resolve(
            ticket=t, actor=request.user, note=form.cleaned_data["note"], expected_version=v
        ),
        form_name="resolve",
        form=form,
        done=_("Resolved."),
    )


@require_POST
@staff_required
def ticket_close_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_close(ticket=t, actor=request.user, expected_version=v),
        done=_("Closed."),
    )


@require_POST
@staff_required
def ticket_reopen_view(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        reference,
        lambda t, v: ticket_reopen(ticket=t, actor=request.user, expected_version=v),
        done=_("Reopened."),
    )


@require_POST
@staff_required
def ticket_priority(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    form = PriorityForm(request.POST)
    return _act(
        request,
        reference,
        lambda t, v: ticket_priority_set(
            ticket=t, priority=form.cleaned_data["priority"], actor=request.user, expected_version=v
        ),
        form_name="priority",
        form=form,
        done=_("Priority changed."),
    )


# --- customers, disclosures, export ---


def _customer_or_404(request: HttpRequest, number: str):
    customer = customer_staff_get(user=request.user, number=number)
    if customer is None:
        raise Http404
    return customer


@require_GET
@staff_required
def customer_detail(request: AuthenticatedHttpRequest, number: str) -> HttpResponse:
    customer = _customer_or_404(request, number)
    can_disclose = request.user.has_perm("tickets.manage_disclosures")
    context = {
        "customer": customer,
        "domains": list(customer.domains.order_by("name")),
        "tickets": list(customer_tickets(customer=customer)[:100]),
        "disclosures": list(customer_disclosures(customer=customer)) if can_disclose else None,
        "can_disclose": can_disclose,
        "can_export": request.user.has_perm("tickets.export_customer"),
        "is_supervisor": is_supervisor(request.user),
        "now": timezone.now(),
    }
    return render(request, "staff/customer.html", context)


@require_POST
@staff_required
def customer_unfreeze(request: AuthenticatedHttpRequest, number: str) -> HttpResponse:
    customer = _customer_or_404(request, number)
    try:
        account_unfreeze(
            customer=customer, actor=request.user, reason=request.POST.get("reason", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
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
    _require_perm(request, "tickets.manage_disclosures")
    customer = _customer_or_404(request, number)
    form = DisclosureForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            disclosure_record(customer=customer, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("The disclosure is recorded."))
            return redirect("staff:customer", number=customer.number)
    status = 400 if request.method == "POST" else 200
    context = {"customer": customer, "form": form}
    return render(request, "staff/disclosure_new.html", context, status=status)


@require_POST
@staff_required
def customer_export_view(request: AuthenticatedHttpRequest, number: str) -> HttpResponse:
    _require_perm(request, "tickets.export_customer")
    customer = _customer_or_404(request, number)
    data = customer_export(customer=customer, actor=request.user)
    response = JsonResponse(data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.number}.json"'
    response["Cache-Control"] = "no-store"
    return response


# --- audit log ---


class AuditFilterForm(forms.Form):
    ticket = forms.CharField(label=_("Ticket reference"), required=False, max_length=11)
    customer = forms.CharField(label=_("Customer number"), required=False, max_length=12)
    action = forms.CharField(label=_("Action"), required=False, max_length=64)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    verify = forms.BooleanField(required=False, widget=forms.HiddenInput)


@require_GET
@staff_required
def audit_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    _require_perm(request, "tickets.view_audit_log")
    form = AuditFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    filters = {
        "ticket": (data.get("ticket") or "").strip().upper(),
        "customer": (data.get("customer") or "").strip().upper(),
        "action": (data.get("action") or "").strip(),
    }
    rows, next_before = audit_log_page(**filters, before=data.get("before"))
    context = {
        "form": form,
        "rows": rows,
        "actions": audit_actions(),
        "next_query": urlencode({**filters, "before": next_before}) if next_before else None,
        "first_query": urlencode(filters),
        "chain": audit_verify() if data.get("verify") else None,
    }
    return render(request, "staff/audit.html", context)


# --- dashboard ---


@require_GET
@staff_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "staff/dashboard.html", {"figures": dashboard_figures()})
