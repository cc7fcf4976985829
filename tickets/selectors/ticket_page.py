"""What the staff ticket page reads beyond the ticket itself.

Its latest history, the tickets merged into it and the customer's other tickets, each in a
number of queries that the length of the history does not change.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from tickets.models import OPENSRS_CALL_KINDS, ActionLog, Attachment, Message, Notification, Ticket
from tickets.selectors.tickets import opensrs_call_details_visible, ticket_events


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
TICKET_PAGE_MESSAGE_FIELDS = (
    "created_at",
    "ticket_id",
    "author",
    "body",
    "internal",
    "channel",
    "sender_authentication",
    "unproven",
)
TICKET_PAGE_FILE_FIELDS = ("message_id", "filename", "size", "scan_status", "scan_result")


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
    queryset: QuerySet[Any], *, order: tuple[str, ...], limit: int | None
) -> tuple[list[Any], bool]:
    """The last `limit` rows in `order` (all when None), and whether older ones were left out."""
    if limit is None:
        return list(queryset.order_by(*order)), False
    rows = list(queryset.order_by(*(f"-{field}" for field in order))[: limit + 1])
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


# The messages' two subqueries, the same for every ticket: built once (annotate() resolves a
# copy for each query), they took 500 of the 3,100 Python calls of building the messages' query.
MESSAGE_AUTHOR_NAME = Subquery(
    User.objects.filter(pk=OuterRef("author_user_id")).values("username")
)
MESSAGE_HAS_FILES = Exists(Attachment.objects.filter(message=OuterRef("pk")))


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
        # The columns the page prints: not the author's user row (a name is enough), nor the
        # bytes of the files, of which only whether there are any. Both per row read, as
        # subqueries: joined to the users, the ticket's messages were all read and sorted
        # whenever PostgreSQL took a ticket for one of a few messages (the usual), 401 for the
        # longest bench ticket instead of the 26 from the end of its index.
        Message.objects.filter(ticket=ticket)
        .only(*TICKET_PAGE_MESSAGE_FIELDS)
        .annotate(author_name=MESSAGE_AUTHOR_NAME, has_files=MESSAGE_HAS_FILES),
        order=("created_at", "id"),
        limit=None if whole else TICKET_PAGE_MESSAGES,
    )
    _files_attach(messages)
    notifications, notifications_cut = _latest(
        # Not the context and headers (JSON, decoded per row): the page does not show them.
        Notification.objects.filter(ticket=ticket).only(
            "created_at", "ticket_id", "template", "recipient", "status", "last_error", "attempts"
        ),
        order=("created_at", "id"),
        limit=None if whole else TICKET_PAGE_NOTIFICATIONS,
    )
    events = ticket_events(ticket=ticket).only(
        "sequence", "created_at", "actor", "action", "ticket_id", "details"
    )
    latest_events, events_cut = _latest(
        events, order=("sequence",), limit=None if whole else TICKET_PAGE_EVENTS
    )
    calls, calls_cut = (
        _latest(
            events.filter(action="opensrs.call"),
            order=("sequence",),
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
        events=latest_events,
        opensrs_calls=calls,
        cut=messages_cut or notifications_cut or events_cut or calls_cut,
    )


CUSTOMER_OTHER_TICKETS = 10


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
    mine = Ticket.objects.filter(customer_id=ticket.customer_id)
    # COUNT(*) written out: the aggregate would group by, COUNT(id) read the table, and the
    # same SQL built as a Subquery of a values() cost 600 Python calls more (a fifth of this).
    count = RawSQL(
        'SELECT COUNT(*) FROM "tickets_ticket" U0 WHERE U0."customer_id" = %s',
        [ticket.customer_id],
        output_field=IntegerField(),
    )
    rows = list(
        mine.exclude(pk=ticket.pk)
        .annotate(customer_tickets=count)
        .order_by("-created_at", "-id")
        .only("reference", "subject", "status", "kind", "created_at")[:CUSTOMER_OTHER_TICKETS]
    )
    latest: list[Ticket] = [row for row in rows]  # noqa: C416 - the annotated type, widened
    return latest, rows[0].customer_tickets - 1 if rows else 0
