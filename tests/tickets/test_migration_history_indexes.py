"""A ticket's history tables keep one index on the ticket, by time, after migration 0026."""

import pytest
from django.db import connection

from tests.migrations import migrate_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("latest_schema_afterwards"),
]

TABLES = ("tickets_message", "tickets_notification", "tickets_actionlog")


def _ticket_indexes() -> dict[str, list[list[str]]]:
    """Each history table's indexes that start with its ticket, as their columns."""
    found = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            constraints = connection.introspection.get_constraints(cursor, table)
            found[table] = sorted(
                c["columns"]
                for c in constraints.values()
                if c["index"] and not c["unique"] and c["columns"][:1] == ["ticket_id"]
            )
    return found


def test_the_plain_ticket_indexes_give_way_to_the_ones_by_time_and_come_back_on_reverse():
    migrate_to([("tickets", "0025_message_sender_authentication")])
    assert _ticket_indexes() == {table: [["ticket_id"]] for table in TABLES}

    migrate_to([("tickets", "0026_history_latest_indexes")])

    # one index on the ticket each (the plain one dropped by its name, not left beside it)
    assert _ticket_indexes() == {
        "tickets_message": [["ticket_id", "created_at", "id"]],
        "tickets_notification": [["ticket_id", "created_at", "id"]],
        "tickets_actionlog": [["ticket_id", "sequence"]],
    }

    migrate_to([("tickets", "0025_message_sender_authentication")])
    assert _ticket_indexes() == {table: [["ticket_id"]] for table in TABLES}
