"""The staff queue: parse the filters, read one page, render."""

from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core import signing
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from helpdesk.exceptions import ApplicationError
from helpdesk.shortcuts import found_or_404
from helpdesk.types import AuthenticatedHttpRequest
from tickets.models import Ticket
from tickets.selectors.queue import (
    QUEUE_PAGE_SIZES,
    QUEUE_SORTS,
    QUEUE_VIEWS,
    QueueFilters,
    queue_view_effective,
    staff_members,
    staff_queue,
)
from tickets.selectors.saved_views import saved_view_get, saved_views_of
from tickets.selectors.search import SEARCH_FIELDS, ticket_reference_shaped
from tickets.selectors.tickets import staff_ticket_exists
from tickets.services import saved_view_delete, saved_view_save
from tickets.services.saved_views import SAVED_VIEW_NAME_NEEDED
from tickets.staff.common import SingleValuedQueryForm, staff_required

_CURSOR_SALT = "tickets.staff.queue"
SAVED_VIEW_SAVED = _("View “%(name)s” saved. Its address can be shared.")
SAVED_VIEW_DELETED = _("View “%(name)s” deleted.")
_DATETIME_KEYS = frozenset({"k_due", "k_created", "k_updated"})


class QueueForm(SingleValuedQueryForm):
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
        help_text=_("Reference, customer name, email or number, domain, subject or message text."),
    )
    in_view = forms.BooleanField(required=False)
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
        in_view=bool(data.get("in_view")) and bool((data.get("q") or "").strip()),
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
        "in_view": 1 if filters.in_view else "",
        **extra,
    }
    return urlencode({k: v for k, v in params.items() if v not in ("", None)})


@require_GET
@staff_required
def queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = QueueForm(request.GET)
    form.is_valid()
    repeated = [name for name in form.fields if len(request.GET.getlist(name)) > 1]
    filters = _queue_filters(form)
    cursor = _cursor_load(form.cleaned_data.get("cursor") or "", filters.sort)
    reference = ticket_reference_shaped(filters.q)
    if reference and cursor is None and staff_ticket_exists(user=request.user, reference=reference):
        return redirect("staff:ticket", reference=reference)
    page = staff_queue(user=request.user, filters=filters, cursor=cursor)
    next_query = None
    if page.next_cursor is not None:
        next_query = _query_string(filters, cursor=_cursor_dump(filters.sort, page.next_cursor))
    shown = queue_view_effective(filters)
    searching = bool(filters.q.strip())
    view_links = [
        {
            "name": name,
            "label": label,
            "count": page.counts.get(name),
            # While searching, a tab narrows the search to itself; otherwise it starts afresh.
            "query": _query_string(
                QueueFilters(
                    view=name,
                    sort=filters.sort,
                    page_size=filters.page_size,
                    q=filters.q if searching else "",
                    in_view=searching and name != "all",
                )
            ),
            "current": name == shown,
        }
        # A ChoiceField's choices are normalised to a list of (value, label) pairs.
        for name, label in cast(
            list[tuple[str, Any]], cast(forms.ChoiceField, QueueForm.base_fields["view"]).choices
        )
    ]
    first_query = _query_string(filters)
    saved_views = [
        {"pk": v.pk, "name": v.name, "query": v.query, "current": v.query == first_query}
        for v in saved_views_of(user=request.user)
    ]
    context = {
        "form": form,
        "filters": filters,
        "shown_view": shown,
        "saved_views": saved_views,
        "page": page,
        "view_links": view_links,
        "next_query": next_query,
        "is_first_page": cursor is None,
        "first_query": first_query,
        "filters_ignored": bool(form.errors),
        "repeated": repeated,
        "staff_names": [u.username for u in staff_members()],
        "priority_choices": Ticket.Priority.choices,
        "search_fields": SEARCH_FIELDS,
    }
    return render(request, "staff/queue.html", context, status=400 if repeated else 200)


class SavedViewForm(forms.Form):
    name = forms.CharField(label=_("Save this view as"), max_length=80)
    query = forms.CharField(required=False, max_length=1000)


def _queue_url(query: str) -> str:
    return reverse("staff:queue") + (f"?{query}" if query else "")


@require_POST
@staff_required
def saved_view_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext(SAVED_VIEW_NAME_NEEDED))
        return redirect(_queue_url(""))
    # The querystring is read back through the queue's own form: only its allow-listed keys
    # and values are kept, and never a page cursor.
    queue_form = QueueForm(QueryDict(form.cleaned_data["query"]))
    queue_form.is_valid()
    query = _query_string(_queue_filters(queue_form))
    try:
        view = saved_view_save(owner=request.user, name=form.cleaned_data["name"], query=query)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, SAVED_VIEW_SAVED % {"name": view.name})
    return redirect(_queue_url(query))


@require_POST
@staff_required
def saved_view_remove(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    view = found_or_404(saved_view_get(user=request.user, pk=pk))
    name = view.name
    try:
        saved_view_delete(view=view, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, SAVED_VIEW_DELETED % {"name": name})
    return redirect(_queue_url(""))
