"""Small helpers for the staff pages: SLA wording, durations, queue and history rows, charts."""

import functools
import html
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django import template
from django.db.models import TextChoices
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import get_language, gettext, gettext_lazy

from domains.models import Domain
from tickets import audit_text
from tickets.models import ActionLog, Message, Notification, Ticket
from tickets.selectors.dashboard import MonthPart
from tickets.selectors.queue import QueuePage
from tickets.selectors.search import SEARCH_FIELDS
from tickets.selectors.ticket_page import TicketHistory

register = template.Library()

BAR_ROW_HEIGHT = 28
BAR_LABEL_WIDTH = 200
# SVG text is not measured before drawing: a generous average width of a 14 px character, so a
# long label (or its translation) pushes the bars right instead of running under them.
BAR_CHAR_WIDTH = 8.5
BAR_AREA_WIDTH = 120
COLUMN_WIDTH = 14
COLUMN_GAP = 4
COLUMN_AREA_HEIGHT = 100


@register.filter
def duration_short(value: timedelta | None) -> str:
    """A duration as people say it: `2 d 4 h`, `3 h 12 min`, `45 min`, `under 1 min`."""
    if value is None:
        return "—"
    minutes = max(int(abs(value).total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return gettext("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return gettext("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    if not minutes:
        return gettext("under 1 min")
    return gettext("%(m)s min") % {"m": minutes}


_CHOICES: dict[str, type[TextChoices]] = {
    "kind": Ticket.Kind,
    "status": Ticket.Status,
    "priority": Ticket.Priority,
    "channel": Ticket.Channel,
    "notification_status": Notification.Status,
    "verified_by": Ticket.VerifiedBy,
    "registrant_email_status": Domain.EmailStatus,
}


@functools.cache
def _label(field: str, value: str, language: str | None) -> str:
    """The label of a choice value, as get_FOO_display() gives it (cached per language)."""
    try:
        return str(_CHOICES[field](value).label)
    except ValueError:
        return value


@register.filter
def choice_label(value: str, field: str) -> str:
    """`{{ ticket.status|choice_label:"status" }}`: what get_status_display() gives, cached.

    get_FOO_display() builds the dict of every choice and translates the label on each call:
    the ticket page's six took 1,300 of its 46,000 Python calls.
    """
    return _label(field, value, get_language())


@register.simple_tag
def select_options(choices: Any, selected: Any) -> str:
    """The `<option>`s of `choices`, the one whose value is `selected` marked so.

    `choices`: (value, label) pairs, or names that are both. As a template loop, the staff
    pages' menus (the queue's five filters, the ticket's assignee and priority) took 3,000 of
    a queue page's 44,000 Python calls after its rows.
    """
    options = []
    for choice in choices:
        value, label = (choice, choice) if isinstance(choice, str) else choice
        mark = " selected" if value == selected else ""
        options.append(
            f'<option value="{html.escape(str(value))}"{mark}>{html.escape(str(label))}</option>'
        )
    return mark_safe("".join(options))  # escaped values


@register.simple_tag
def canned_options(canned: list[tuple[str, Any, str]]) -> str:
    """The reply form's canned responses as `<option>`s, each with its text in `data-text`.

    `canned`: (key, label, text) triples. As a template loop, three variables a response (the
    label a lazy translation) took 680 of the 41,500 Python calls of a short ticket page.
    """
    return mark_safe(  # escaped values
        "".join(
            f'<option value="{html.escape(str(key))}" data-text="{html.escape(str(text))}">'
            f"{html.escape(str(label))}</option>"
            for key, label, text in canned
        )
    )


# Stands for the key in the one reverse() of page_links; in no URL pattern's own text.
_LINK_KEY = "LINK-KEY"


def page_links(view: str) -> Callable[[str], str]:
    """reverse(view, args=[key]) for each of a page's keys, with a single reverse() call.

    For the rows' links: one reverse() a link, 22 µs each, took 1.1 ms of a 25-row queue page.
    The keys are references and customer numbers (letters, digits and "-"), which reverse()
    puts in the URL as they are.
    """
    head, _key, tail = reverse(view, args=[_LINK_KEY]).rpartition(_LINK_KEY)
    return lambda key: f"{head}{key}{tail}"


# The queue table's columns after the checkbox, each name its header's and each row cell's
# data-label (the cards of a narrow screen print it).
QUEUE_COLUMNS = (
    gettext_lazy("Ticket"),
    gettext_lazy("Subject"),
    gettext_lazy("Customer"),
    gettext_lazy("Request"),
    gettext_lazy("Status"),
    gettext_lazy("Priority"),
    gettext_lazy("Assignee"),
    gettext_lazy("Due"),
)


@register.simple_tag
def queue_table(page: QueuePage) -> dict[str, Any]:
    """A queue page's column names (`columns`, escaped) and its rows' markup (`rows`).

    The rows are markup joined here, as the dashboard's charts are: as a template loop (26
    variables and 7 conditions a row, each a resolve, a localize and an escape) they took
    27,500 of the 106,500 Python calls of a 25-row search page, 40 % of its template's; joined
    here, about 4,000 (bench/README.md, 2026-12-07, session 3). Every value is escaped with
    html.escape, which is what Django's escape() calls. The sentences of a row (its checkbox's
    label, what a search matched) are translated once per page.
    """
    language = get_language()
    select = gettext("Select %(ref)s")
    matched = gettext("matched: %(fields)s")
    ticket_url, customer_url = page_links("staff:ticket"), page_links("staff:customer")
    columns = [html.escape(str(name)) for name in QUEUE_COLUMNS]
    label = dict(
        zip(
            ("ticket", "subject", "customer", "kind", "status", "priority", "assignee", "due"),
            columns,
            strict=True,
        )
    )
    rows = []
    for ticket in page.tickets:
        customer, sla = ticket.customer, sla_info(ticket, page.now)
        reference = html.escape(ticket.reference)
        subject = html.escape(ticket.subject)
        place = ticket.domain.name if ticket.domain else ticket.requested_domain
        if place:
            subject += f'<br><span class="small muted">{html.escape(place)}</span>'
        fields = ", ".join(str(SEARCH_FIELDS[k]) for k in page.matched.get(ticket.pk, []))
        if fields:
            found = html.escape(matched % {"fields": fields})
            subject += f'<br><span class="small matched">{found}</span>'
        if customer:
            who = (
                f'<a href="{html.escape(customer_url(customer.number))}">'
                f"{html.escape(customer.full_name)}</a><br>"
                f'<span class="small muted">{html.escape(customer.number)}</span>'
            )
        else:
            who = f'<span class="muted">{html.escape(ticket.contact_email or "—")}</span>'
        if sla["overdue"]:
            due = f'<span class="sla overdue-label">{html.escape(sla["text"])}</span>'
        elif sla["open"]:
            due = f'<span class="sla">{html.escape(sla["text"])}</span>'
        else:
            due = '<span class="muted">—</span>'
        kind = html.escape(_label("kind", ticket.kind, language))
        status, priority = html.escape(ticket.status), html.escape(ticket.priority)
        status_label = html.escape(_label("status", ticket.status, language))
        priority_label = html.escape(_label("priority", ticket.priority, language))
        assignee = html.escape(ticket.assignee.username if ticket.assignee else "—")
        check = (
            f'<input type="checkbox" name="ticket" value="{reference}" form="bulk-form"'
            f' class="bulk-check" aria-label="{html.escape(select % {"ref": ticket.reference})}">'
            f'<input type="hidden" name="version-{reference}" value="{ticket.version}"'
            ' form="bulk-form">'
        )
        link = f'<a class="reference" href="{html.escape(ticket_url(ticket.reference))}">'
        rows.append(
            f'\n    <tr class="ticket-row{" overdue-row" if sla["overdue"] else ""}"'
            f' data-reference="{reference}">'
            f'\n      <td class="cell-check">{check}</td>'
            f'\n      <th scope="row" data-label="{label["ticket"]}">{link}{reference}</a></th>'
            f'\n      <td class="subject" data-label="{label["subject"]}">{subject}</td>'
            f'\n      <td data-label="{label["customer"]}">{who}</td>'
            f'\n      <td data-label="{label["kind"]}">{kind}</td>'
            f'\n      <td data-label="{label["status"]}">'
            f'<span class="badge badge-{status}">{status_label}</span></td>'
            f'\n      <td data-label="{label["priority"]}">'
            f'<span class="badge badge-{priority}">{priority_label}</span></td>'
            f'\n      <td data-label="{label["assignee"]}">{assignee}</td>'
            f'\n      <td data-label="{label["due"]}">{due}</td>'
            "\n    </tr>\n  "
        )
    # Safe: markup joined from escaped values.
    return {"columns": [mark_safe(name) for name in columns], "rows": mark_safe("".join(rows))}


class _Moments:
    """Times as `|date:'c'` and `|date:shown` print them, each distinct second formatted once.

    In local time. A date format costs about 25 µs (DATETIME_FORMAT translates the month and
    a.m./p.m. each time), and the rows one action writes (a reply, its email, its audit
    entries) share their second. Keyed by the second, not the whole value: no format the pages
    show prints a fraction of one.
    """

    def __init__(self, shown: str = "DATETIME_FORMAT") -> None:
        self.shown = shown
        self.zone = timezone.get_current_timezone()
        self.formatted: dict[datetime, str] = {}

    def __call__(self, value: datetime) -> tuple[str, str]:
        local = value.astimezone(self.zone)
        second = local.replace(microsecond=0)
        shown = self.formatted.get(second)
        if shown is None:
            shown = self.formatted[second] = date_format(local, self.shown)
        return local.isoformat(), shown


@register.simple_tag
def time_element(value: datetime) -> str:
    """`<time datetime="{{ value|date:'c' }}">{{ value|date:"DATETIME_FORMAT" }}</time>`.

    In local time, as the history rows print theirs: the two filters took about 320 Python
    calls a time on the ticket page, this about 200 (most of them the format's own).
    """
    iso, shown = _Moments()(value)
    return mark_safe(f'<time datetime="{html.escape(iso)}">{html.escape(shown)}</time>')


# The ticket page's lists, like the queue's rows, as markup joined from escaped values, once
# per entry: as template loops (per message, email or audit entry its variables, conditions
# and translations) they took 13,500 of the 64,000 Python calls of a ticket page showing 25
# messages, 10 emails, 20 audit entries and 10 other tickets; joined here, about 3,000
# (bench/README.md, 2026-12-07, session 3).


@functools.lru_cache(maxsize=4096)
def _short_date(day: date, language: str | None) -> str:
    """A day as `|date:"SHORT_DATE_FORMAT"` prints it, cached per language like _day_labels."""
    return date_format(day, "SHORT_DATE_FORMAT")


@register.simple_tag
def other_ticket_rows(tickets: list[Ticket]) -> str:
    """The customer's other tickets as the ticket page lists them (one `<li>` each)."""
    language = get_language()
    zone = timezone.get_current_timezone()
    ticket_url = page_links("staff:ticket")
    rows = []
    for ticket in tickets:
        local = ticket.created_at.astimezone(zone)  # as timezone.localtime(), zone read once
        iso, day = local.isoformat(), _short_date(local.date(), language)
        reference = html.escape(ticket.reference)
        status_label = html.escape(_label("status", ticket.status, language))
        rows.append(
            f'<li><a href="{html.escape(ticket_url(ticket.reference))}">{reference}</a>'
            f" {html.escape(ticket.subject)}"
            f' <span class="badge badge-{html.escape(ticket.status)}">{status_label}</span>'
            f' <time class="muted" datetime="{html.escape(iso)}">{html.escape(day)}</time></li>'
        )
    return mark_safe("".join(rows))  # escaped values


@register.simple_tag
def history_rows(history: TicketHistory, details: bool, reference: str) -> dict[str, Any]:
    """A ticket's history (staff_ticket_history) as the page prints it, one entry per section.

    `messages`, `notifications` and `events` (with their details when `details`) as markup,
    `opensrs_calls` as values; their times share one _Moments. `reference`: the ticket's, for
    its attachments' links.
    """
    moment = _Moments()
    return {
        "messages": _message_rows(history.messages, moment, reference),
        "notifications": _notification_rows(history.notifications, moment),
        "events": _event_rows(history.events, details, moment),
        "opensrs_calls": _opensrs_call_rows(history.opensrs_calls, moment),
    }


@functools.cache
def _history_words(language: str | None) -> dict[str, str]:
    """The history rows' fixed words and notices, translated once per language like _label.

    Eight translations on every page: about 320 of the 780 Python calls of a short history's
    rows.
    """
    notice = '<p class="notice warning small">{}</p>'
    return {
        "customer": gettext("Customer"),
        "system": gettext("System"),
        "staff": gettext("Staff"),
        "note": f'<span class="note-label">{html.escape(gettext("Internal note"))}</span> · ',
        "unauthenticated": notice.format(
            html.escape(
                gettext(
                    "Sender not authenticated: our mail server could not confirm (SPF, DKIM or "
                    "DMARC) that this email came from its From address. It acted for nobody."
                )
            )
        ),
        "held": notice.format(
            html.escape(
                gettext(
                    "Not shown to the customer: sent without logging in by someone not shown "
                    "to be them, it waits for them to confirm the request."
                )
            )
        ),
        "by": gettext("by %(actor)s"),
        "details": html.escape(gettext("Details")),
    }


def _message_rows(messages: list[Message], moment: _Moments, reference: str) -> str:
    language = get_language()
    words = _history_words(language)
    names = {"customer": words["customer"], "system": words["system"]}
    staff, note = words["staff"], words["note"]
    unauthenticated, held = words["unauthenticated"], words["held"]
    rows = []
    for message in messages:
        iso, when = moment(message.created_at)
        if message.author == Message.Author.STAFF:
            who = message.author_name or staff  # type: ignore[attr-defined]  # staff_ticket_history's
        else:
            who = names.get(message.author, names["system"])
        channel = html.escape(_label("channel", message.channel, language))
        # An email our mail server could not authenticate the sender of (inbound_auth).
        refused = (message.sender_authentication or {}).get("authenticated") is False
        files = message.files  # type: ignore[attr-defined]  # staff_ticket_history's
        attachments = (
            render_to_string(
                "partials/attachments.html",
                {
                    "attachments": files,
                    "url_name": "staff:ticket-attachment",
                    "ticket_key": reference,
                    "show_scan_result": True,
                },
            )
            if files
            else ""
        )
        rows.append(
            f'\n  <li class="message-item from-{html.escape(message.author)}'
            f'{" internal" if message.internal else ""}">'
            '\n    <div class="message-head">'
            f"\n      <strong>{note if message.internal else ''}{html.escape(who)}</strong>"
            f'\n      <span>{channel} · <time datetime="{html.escape(iso)}">{html.escape(when)}'
            "</time></span>"
            "\n    </div>"
            f"\n    {unauthenticated if refused else ''}"
            # Written by someone not shown to be the customer: held from them (Message).
            f"\n    {held if message.unproven else ''}"
            f'\n    <p class="message-body">{html.escape(message.body)}</p>'
            f"\n    {attachments}"
            "\n  </li>\n  "
        )
    return mark_safe("".join(rows))  # escaped values, and the attachments' own template


def _event_rows(events: list[ActionLog], details: bool, moment: _Moments) -> str:
    """Audit rows as sentences in the active language, with their details when `details`."""
    words = _history_words(get_language())
    by, caption = words["by"], words["details"]
    rows = []
    for event in events:
        iso, when = moment(event.created_at)
        table = ""
        if details and event.details:
            cells = "".join(
                f'<tr><th scope="row">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
                for label, value in audit_text.audit_detail_rows(event)
            )
            table = (
                '<table class="audit-details small">'
                f'\n      <caption class="visually-hidden">{caption}</caption>'
                f"\n      <tbody>{cells}</tbody>"
                "\n    </table>"
            )
        rows.append(
            "\n  <li>"
            f'\n    <time datetime="{html.escape(iso)}">{html.escape(when)}</time>'
            f'\n    <span class="audit-sentence">{html.escape(audit_text.audit_sentence(event))}'
            # As {% blocktranslate %} does: the translation as it is, the name escaped.
            f'</span> <span class="muted small">{by % {"actor": html.escape(event.actor)}}</span>'
            f"\n    {table}"
            "\n  </li>\n  "
        )
    return mark_safe("".join(rows))  # escaped values


def _opensrs_call_rows(calls: list[ActionLog], moment: _Moments) -> list[dict[str, Any]]:
    rows = []
    for call in calls:
        iso, when = moment(call.created_at)
        rows.append({"iso": iso, "when": when, "details": call.details})
    return rows


def _notification_rows(notifications: list[Notification], moment: _Moments) -> str:
    language = get_language()
    rows = []
    for notification in notifications:
        iso, when = moment(notification.created_at)
        status = html.escape(notification.status)
        label = html.escape(_label("notification_status", notification.status, language))
        error = ""
        if notification.last_error:
            shown = Truncator(notification.last_error).chars(160)  # as |truncatechars:160
            error = f'<br><span class="small muted">{html.escape(shown)}</span>'
        rows.append(
            "\n    <tr>"
            f"\n      <td><code>{html.escape(notification.template)}</code></td>"
            f"\n      <td>{html.escape(notification.recipient)}</td>"
            f'\n      <td><span class="badge badge-notification-{status}">{label}</span>'
            f"{error}</td>"
            f"\n      <td>{notification.attempts}</td>"
            f'\n      <td><time datetime="{html.escape(iso)}">{html.escape(when)}</time></td>'
            "\n    </tr>\n  "
        )
    return mark_safe("".join(rows))  # escaped values


@register.simple_tag
def sla_info(ticket: Ticket, now: datetime | None = None) -> dict[str, Any]:
    """Whether a ticket is overdue, and the time left or overdue by, as words."""
    now = now or timezone.now()
    if not ticket.is_open or ticket.due_at is None:
        return {"overdue": False, "text": "", "open": False}
    if ticket.sla_paused_at is not None:
        left = ticket.due_at - ticket.sla_paused_at
        text = (
            gettext("Paused, waiting: %(t)s left") % {"t": duration_short(left)}
            if left >= timedelta(0)
            else gettext("Paused, waiting: overdue by %(t)s") % {"t": duration_short(-left)}
        )
        return {"overdue": False, "text": text, "open": True, "paused": True}
    left = ticket.due_at - now
    if left < timedelta(0):
        text = gettext("Overdue by %(t)s") % {"t": duration_short(-left)}
        return {"overdue": True, "text": text, "open": True}
    return {
        "overdue": False,
        "text": gettext("%(t)s left") % {"t": duration_short(left)},
        "open": True,
    }


@register.inclusion_tag("staff/_bar_chart.html")
def bar_chart(rows: list[tuple[str, int]], chart_id: str, title: str) -> dict[str, Any]:
    """Horizontal bars for a few labelled counts, with the numbers drawn beside each bar.

    As in day_chart, the bars and the table's rows are joined here from escaped labels and
    integers: a template loop cost about 1.5 ms of a dashboard's four charts.
    """
    top = max([n for _label, n in rows] or [0]) or 1
    longest = max([len(str(label)) for label, _n in rows] or [0])
    label_width = max(BAR_LABEL_WIDTH, round(longest * BAR_CHAR_WIDTH) + 12)
    bars, table = [], []
    for i, (label, count) in enumerate(rows):
        n = int(count)
        width = round(BAR_AREA_WIDTH * n / top) if n else 0
        y = i * BAR_ROW_HEIGHT
        text = escape(label)
        bars.append(
            f'<g class="bar-row"><text class="bar-label" x="0" y="{y + 18}">{text}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 4}" width="{width}" '
            f'height="{BAR_ROW_HEIGHT - 8}"></rect><text class="bar-value" '
            f'x="{label_width + width + 6}" y="{y + 18}">{n}</text></g>'
        )
        table.append(f'<tr><th scope="row">{text}</th><td>{n}</td></tr>')
    return {
        # Safe: integers and escaped labels.
        "bars": mark_safe("\n    ".join(bars)),
        "rows": mark_safe("".join(table)),
        "chart_id": chart_id,
        "title": title,
        "width": label_width + BAR_AREA_WIDTH + 40,
        "height": max(len(rows), 1) * BAR_ROW_HEIGHT,
    }


@functools.lru_cache(maxsize=4096)
def _day_labels(day: date, language: str | None) -> tuple[str, str, str]:
    """A day as the charts print it, "6 Dec" and "Sun 6 Dec" HTML-escaped, and its ISO form.

    The same days recur on every dashboard: cached per language.
    """
    return escape(date_format(day, "j M")), escape(date_format(day, "D j M")), day.isoformat()


def _column_chart(items: list[tuple[str, str, int]], chart_id: str, title: str) -> dict[str, Any]:
    """Columns for counts, the scale and the total beside them, and the table of counts.

    `items` are (short label, row heading, count), the labels and headings already escaped.
    """
    top = max([n for _short, _heading, n in items] or [0])
    scale = top or 1
    columns, rows = [], []
    step = COLUMN_WIDTH + COLUMN_GAP
    for i, (short, heading, n) in enumerate(items):
        height = round(COLUMN_AREA_HEIGHT * n / scale) if n else 0
        columns.append(
            f'<rect class="column" x="{i * step}" y="{COLUMN_AREA_HEIGHT - height}" '
            f'width="{COLUMN_WIDTH}" height="{height}"><title>{short}: {n}</title></rect>'
        )
        rows.append(f'<tr><th scope="row">{heading}</th><td>{n}</td></tr>')
    return {
        # Safe: integers and labels escaped by the callers.
        "columns": mark_safe("\n    ".join(columns)),
        "rows": mark_safe("".join(rows)),
        "chart_id": chart_id,
        "title": title,
        "top": top,
        "total": sum(n for _short, _heading, n in items),
        "width": len(items) * step,
        "height": COLUMN_AREA_HEIGHT,
        "first": items[0][0] if items else "",
        "last": items[-1][0] if items else "",
    }


@register.inclusion_tag("staff/_column_chart.html")
def day_chart(series: list[tuple[Any, int]], chart_id: str, title: str) -> dict[str, Any]:
    """Columns for a count per day, the scale and the total beside it, and the table of days.

    The columns and rows are built in Python rather than in a template loop: per item a loop
    costs about ten times more. The labels come escaped from the cache and the other values
    are integers, so the strings are joined without format_html, which escapes every value
    again.
    """
    language = get_language()
    items = []
    for day, n in series:
        short, long, iso = _day_labels(day, language)
        items.append((short, f'<time datetime="{iso}">{long}</time>', int(n)))
    return _column_chart(items, chart_id, title)


@register.inclusion_tag("staff/_column_chart.html")
def month_chart(series: list[tuple[MonthPart, int]], chart_id: str, title: str) -> dict[str, Any]:
    """Columns for a count per month, as day_chart draws days.

    A month the range covers only in part says which of its days count, in its column's title
    and its table row.
    """
    items: list[tuple[str, str, int]] = []
    months: list[str] = []
    for part, n in series:
        month = str(escape(date_format(part.first, "M Y")))
        months.append(month)
        heading = f'<time datetime="{part.first:%Y-%m}">{month}</time>'
        if not part.whole:
            only = escape(
                gettext("%(first)s to %(last)s only")
                % {"first": date_format(part.first, "j M"), "last": date_format(part.last, "j M")}
            )
            month, heading = f"{month}, {only}", f"{heading}, {only}"
        items.append((month, heading, int(n)))
    chart = _column_chart(items, chart_id, title)
    chart["by_month"] = True
    chart["in_part"] = any(not part.whole for part, _n in series)
    # The axis names the months alone.
    chart["first"], chart["last"] = (months[0], months[-1]) if months else ("", "")
    return chart
