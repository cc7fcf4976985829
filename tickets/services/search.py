"""The search document kept on each ticket: its subject and the text of its messages.

PostgreSQL only: the column `tickets_ticket.search_vector` (migration 0022) is outside the
model, so no ORM read loads it. The staff search filters tickets by it, which lets the planner
walk the queue's ordering index and stop after one page instead of fetching every message
that holds a common word. Every write of a message or a subject calls this module; elsewhere
(SQLite) the search reads the messages themselves.
"""

from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.translation import gettext

from helpdesk.validators import HIDDEN_CHARACTERS, INVALID_CHARACTERS
from tickets.models import Message, Ticket
from tickets.selectors.messages import message_written_unproven

# A tsvector holds at most 1 MB; with both configurations a text can take up to about seven
# bytes of vector a character (many short distinct words), so the document is cut here.
SEARCH_DOCUMENT_MAX_CHARS = 100_000

# English stems ("records" finds "record") and 'simple' for Malay, which PostgreSQL has no
# dictionary for (Malay words match as written, lower-cased): the configurations of the
# message index message_body_fts. The messages in the order they were written.
_DOCUMENTS_UPDATE = """
UPDATE tickets_ticket AS t
SET search_vector = to_tsvector('english'::regconfig, d.doc)
    || to_tsvector('simple'::regconfig, d.doc)
FROM (
    SELECT o.id, left(
        o.subject || E'\\n'
        || coalesce(string_agg(m.body, E'\\n' ORDER BY m.created_at, m.id), ''),
        %s
    ) AS doc
    FROM tickets_ticket AS o LEFT JOIN tickets_message AS m ON m.ticket_id = o.id
    WHERE {where}
    GROUP BY o.id
) AS d
WHERE t.id = d.id
"""


def _documents_update(cursor: Any, where: str, params: list[Any]) -> int:
    cursor.execute(_DOCUMENTS_UPDATE.format(where=where), [SEARCH_DOCUMENT_MAX_CHARS, *params])
    return int(cursor.rowcount)


def ticket_search_documents_update(*, ticket_ids: Collection[int]) -> None:
    """Write the search documents of these tickets again from their subject and messages."""
    if connection.vendor != "postgresql" or not ticket_ids:
        return
    with connection.cursor() as cursor:
        _documents_update(cursor, "o.id = ANY(%s)", [sorted(ticket_ids)])


def ticket_search_documents_rebuild(cursor: Any, *, from_id: int = 0) -> int:
    """Write the search document of every ticket from `from_id` on (a backfill); the count."""
    return _documents_update(cursor, "o.id >= %s", [from_id])


# Mail and the system's own notes are taken as they come, less what would hide or reverse text
# on a staff page; what a person typed on a page or through the API is refused, on its field.
_TAKEN_AS_SENT = frozenset({Ticket.Channel.EMAIL, Ticket.Channel.SYSTEM})


def message_create(**fields: Any) -> Message:
    """Store a message (model fields as keywords) and its ticket's search document with it.

    Marked `unproven` when its writer is not shown to be the ticket's customer
    (selectors.messages.message_written_unproven), unless the caller says so itself. A body
    holding HIDDEN_CHARACTERS is refused (ValidationError on `body`) when a person typed it, and
    stored without them when it came by email or from the system.
    """
    body = fields.get("body", "")
    if HIDDEN_CHARACTERS.search(body):
        if fields.get("channel") not in _TAKEN_AS_SENT:
            raise ValidationError({"body": [gettext(INVALID_CHARACTERS)]})
        fields["body"] = HIDDEN_CHARACTERS.sub("", body)
    if "unproven" not in fields:
        fields["unproven"] = message_written_unproven(
            ticket=fields["ticket"],
            author=fields["author"],
            author_user=fields.get("author_user"),
            sender_authentication=fields.get("sender_authentication"),
        )
    message = Message.objects.create(**fields)
    ticket_search_documents_update(ticket_ids=[message.ticket_id])
    return message
