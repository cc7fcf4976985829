"""What the staff ticket page reads beyond the ticket itself.

Its latest history, the tickets merged into it and the customer's other tickets, each in a
number of queries that the length of the history does not change.
"""

from dataclasses import dataclass
from typing import Any

from tickets.models import OPENSRS_CALL_KINDS, ActionLog, Attachment, Message, Notification, Ticket
from tickets.selectors.tickets import opensrs_call_details_visible


def staff_ticket_merged_from(*, ticket: Ticket) -> list[str]:
    """The references of the tickets merged into `ticket`, read only if there are any."""
    if not ticket.merged_from_any:
        return []
    return list(ticket.merged_from.order_by("pk").values_list("reference", flat=True))


# The staff ticket page shows the latest part of a ticket's history, so that it takes the same
# time however long that history is; the whole of it is one link away.
TICKET_PAGE_MESSAGES = 25
TICKET_PAGE_NOTIFICATIONS = 10
TICKET_PAGE_EVENTS = 20
TICKET_PAGE_OPENSRS_CALLS = 10
TICKET_PAGE_FILE_FIELDS = ("message_id", "filename", "size", "scan_status", "scan_result")

# The history's reads, written out as the ORM wrote them (the same plans): built and compiled
# as querysets on every request, for SQL that never changes, they took 5,400 Python calls on the
# agent's closed-ticket page, 1,700 read by raw() (8,100 and 4,700 with 401 messages; hd_bench,
# 2026-12-07). Each reads only the columns the page prints, into the models' own rows (the other
# columns deferred).
# A message's author's name and whether it has files are subqueries per row read: joined to the
# users, the ticket's messages were all read and sorted whenever PostgreSQL took a ticket for
# one of a few messages (the usual), 401 for the longest bench ticket instead of the 26 from
# the end of its index. Not the bytes of the files, nor a notification's context and headers
# (JSON, decoded per row): the page does not show them.
MESSAGES_OF_TICKET_SQL = """
    SELECT m.id, m.created_at, m.ticket_id, m.author, m.body, m.internal, m.channel,
        m.sender_authentication, m.unproven,
        (SELECT u.username FROM auth_user u WHERE u.id = m.author_user_id) AS author_name,
        EXISTS(SELECT 1 FROM tickets_attachment a WHERE a.message_id = m.id) AS has_files
    FROM tickets_message m
    WHERE m.ticket_id = %s
"""
NOTIFICATIONS_OF_TICKET_SQL = """
    SELECT n.id, n.created_at, n.ticket_id, n.template, n.recipient, n.status, n.attempts,
        n.last_error
    FROM tickets_notification n
    WHERE n.ticket_id = %s
"""
EVENTS_OF_TICKET_SQL = """
    SELECT e.id, e.sequence, e.created_at, e.actor, e.action, e.ticket_id, e.details
    FROM tickets_actionlog e
    WHERE e.ticket_id = %s
"""


@dataclass(frozen=True)
class TicketHistory:
    """A ticket's messages, emails, audit rows and OpenSRS calls, oldest first.

    Each message carries its author's username as `author_name` (None for none) and its
    attachments, in upload order, as the list `files`.
    """

    messages: list[Message]
    notifications: list[Notification]
    events: list[ActionLog]
    opensrs_calls: list[ActionLog]
    cut: bool  # whether older entries were left out


def _latest(
    model: type[Any], sql: str, params: list[Any], *, order: tuple[str, ...], limit: int | None
) -> tuple[list[Any], bool]:
    """The last `limit` rows of `sql` in `order` (all when None), and whether any were left out."""
    if limit is None:
        return list(model.objects.raw(f"{sql} ORDER BY {', '.join(order)}", params)), False
    backwards = ", ".join(f"{column} DESC" for column in order)
    rows = list(model.objects.raw(f"{sql} ORDER BY {backwards} LIMIT %s", [*params, limit + 1]))
    return rows[:limit][::-1], len(rows) > limit


def _files_attach(messages: list[Message]) -> None:
    """Give each message its attachments (names, not bytes), in upload order, as `files`.

    Read only for the messages that have any (their `has_files`): most pages have none, and
    then no query is made. Grouped here rather than by a prefetch, whose machinery cost as
    much as the read.
    """
    files: dict[int, list[Attachment]] = {message.pk: [] for message in messages}
    having = [message.pk for message in messages if message.has_files]  # type: ignore[attr-defined]
    if having:
        for attachment in (
            Attachment.objects.filter(message_id__in=having)
            .only(*TICKET_PAGE_FILE_FIELDS)
            .order_by("id")
        ):
            files[attachment.message_id].append(attachment)
    for message in messages:
        message.files = files[message.pk]  # type: ignore[attr-defined]


def staff_ticket_history(
    *, ticket: Ticket, audit_details: bool, whole: bool = False
) -> TicketHistory:
    """The latest of a ticket's history for its staff page (the whole of it when `whole`).

    `audit_details`: whether the reader reads audit details (`audit_details_visible`); without
    them each OpenSRS call keeps what was done and how it went, not OpenSRS's answer.

    Three queries whatever the history: messages with their authors' names, notifications and
    audit rows; a fourth for the attachments (names, not bytes) when a message read has any,
    and one for the OpenSRS calls of a resend.
    """
    messages, messages_cut = _latest(
        Message,
        MESSAGES_OF_TICKET_SQL,
        [ticket.pk],
        order=("m.created_at", "m.id"),
        limit=None if whole else TICKET_PAGE_MESSAGES,
    )
    _files_attach(messages)
    notifications, notifications_cut = _latest(
        Notification,
        NOTIFICATIONS_OF_TICKET_SQL,
        [ticket.pk],
        order=("n.created_at", "n.id"),
        limit=None if whole else TICKET_PAGE_NOTIFICATIONS,
    )
    events, events_cut = _latest(
        ActionLog,
        EVENTS_OF_TICKET_SQL,
        [ticket.pk],
        order=("e.sequence",),
        limit=None if whole else TICKET_PAGE_EVENTS,
    )
    calls, calls_cut = (
        _latest(
            ActionLog,
            f"{EVENTS_OF_TICKET_SQL} AND e.action = %s",
            [ticket.pk, "opensrs.call"],
            order=("e.sequence",),
            limit=None if whole else TICKET_PAGE_OPENSRS_CALLS,
        )
        if ticket.kind in OPENSRS_CALL_KINDS
        else ([], False)
    )
    if not audit_details:
        for call in calls:  # rows of their own query: the audit trail's are other instances
            call.details = opensrs_call_details_visible(call.details, audit_details=False)
    return TicketHistory(
        messages=messages,
        notifications=notifications,
        events=events,
        opensrs_calls=calls,
        cut=messages_cut or notifications_cut or events_cut or calls_cut,
    )


CUSTOMER_OTHER_TICKETS = 10
# Written out as the ORM wrote it, for the reason of the history's reads above: 2,200 Python
# calls as a queryset, 900 read by raw().
# COUNT(*) as a subquery of its own: the aggregate would group by, COUNT(id) read the table.
OTHER_TICKETS_OF_CUSTOMER_SQL = """
    SELECT t.id, t.created_at, t.reference, t.kind, t.status, t.subject,
        (SELECT COUNT(*) FROM tickets_ticket c WHERE c.customer_id = %s) AS customer_tickets
    FROM tickets_ticket t
    WHERE t.customer_id = %s AND NOT (t.id = %s)
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT %s
"""


def customer_other_tickets(*, ticket: Ticket) -> tuple[list[Ticket], int]:
    """The customer's latest other tickets (at most CUSTOMER_OTHER_TICKETS) and how many in all.

    One query whatever the customer's history: the newest few from the customer index, each
    with the count of all the customer's tickets beside it, this one included. The count is a
    subquery of its own, which PostgreSQL answers once from the customer index alone: counted
    over the rows read (a window), it read each of the customer's tickets from the table, 150
    at 1,000,000 tickets for a list of 10 (and a reseller's thousands).
    """
    if ticket.customer_id is None:
        return [], 0
    params = [ticket.customer_id, ticket.customer_id, ticket.pk, CUSTOMER_OTHER_TICKETS]
    rows = list(Ticket.objects.raw(OTHER_TICKETS_OF_CUSTOMER_SQL, params))
    return rows, rows[0].customer_tickets - 1 if rows else 0  # type: ignore[attr-defined]
