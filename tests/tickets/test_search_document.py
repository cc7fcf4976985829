"""Each ticket's search document follows every write of its messages, and the search finds it.

On PostgreSQL the staff search reads `tickets_ticket.search_vector`; these tests also run on
SQLite, where the search reads the messages, so the same flows are found on both.
"""

from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Customer
from tests.factories import CustomerFactory, DomainFactory, TicketFactory
from tests.markers import postgresql_only
from tests.migrations import migrate_latest, migrate_to
from tests.tickets.test_inbound import payload, post, webhook_secret  # noqa: F401
from tests.tickets.test_search import explain
from tickets import services
from tickets.models import Ticket
from tickets.selectors.queue import QueueFilters, staff_queue
from tickets.selectors.search import ticket_search_ids
from tickets.selectors.search_statistics import FieldsRare
from tickets.selectors.tickets import ticket_list
from tickets.services.search import ticket_search_documents_rebuild
from tickets.services.versions import ticket_system_note_add

S = Ticket.Status
pytestmark = pytest.mark.django_db


def found(user, text: str) -> set[str]:
    """References the staff queue finds for `text`, checked against the API's answer."""
    queue = staff_queue(user=user, filters=QueueFilters(view="all", q=text, page_size=100))
    api = ticket_list(user=user, filters={"q": text})
    references = {t.reference for t in queue.tickets}
    assert references == {t.reference for t in api}
    return references


def documents() -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, search_vector::text FROM tickets_ticket ORDER BY id")
        return dict(cursor.fetchall())


def assert_documents_current() -> None:
    """Every ticket's stored document is what a rebuild from its rows writes (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    stored = documents()
    with connection.cursor() as cursor:
        ticket_search_documents_rebuild(cursor)
    assert stored == documents()
    assert None not in stored.values()


def test_a_new_ticket_and_a_portal_reply_are_found_by_their_words(client, agent, alice):
    # given Alice's ticket from the portal, and her reply once staff answered
    ticket = services.request_general(
        customer=alice,
        subject="Mailbox quota",
        body="My mailbox is full of newsletters.",
        contact_email=alice.email,
        actor=alice,
        channel=Ticket.Channel.PORTAL,
    )
    services.ticket_reply_add(
        ticket=ticket,
        body="Please archive them.",
        actor=agent,
        author="staff",
        author_user=agent,
        channel="staff",
    )
    client.force_login(alice.user)
    reply = client.post(
        f"/my/tickets/{ticket.reference}/reply/", {"body": "The archive button is greyed out."}
    )
    assert reply.status_code == 302

    # then each message's words find it, and the subject's
    for text in ("newsletters", "archive", "greyed", "quota"):
        assert found(agent, text) == {ticket.reference}, text
    assert_documents_current()


def test_an_email_reply_and_a_new_email_are_found(client, agent, alice):
    # given Alice's ticket, answered by email with its reference in the subject
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER, subject="Renewal")
    post(
        client,
        payload(
            sender="alice@example.test",
            subject=f"Re: [{ticket.reference}] Your request",
            text="The invoice shows the wrong period.",
        ),
    )
    # and a new ticket by email from a stranger
    post(
        client,
        payload(
            sender="stranger@elsewhere.test",
            subject="Hosting",
            text="Which plan includes backups?",
            message_id="another-message",
        ),
    )
    new = Ticket.objects.exclude(pk=ticket.pk).get()

    # then
    assert found(agent, "wrong period") == {ticket.reference}
    assert found(agent, "backups") == {new.reference}
    assert_documents_current()


def test_a_merge_moves_the_words_with_the_messages(agent):
    # given a duplicate whose message holds words the survivor's does not
    customer = CustomerFactory()
    survivor = services.ticket_create(
        kind="general", subject="Site down", actor=customer, customer=customer, body="Error 502."
    )
    duplicate = services.ticket_create(
        kind="general",
        subject="Still broken",
        actor=customer,
        customer=customer,
        body="The gateway keeps timing out.",
    )
    assert found(agent, "gateway") == {duplicate.reference}

    # when
    services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)

    # then the survivor is found by them, and the duplicate by its subject alone
    assert found(agent, "gateway") == {survivor.reference}
    assert found(agent, "broken") == {duplicate.reference}
    assert_documents_current()


def test_notes_are_found_by_staff_and_the_subject_by_its_stems(agent, alice):
    # given a ticket without a message, then a system note and a staff note on it
    ticket = services.ticket_create(
        kind="general", subject="Renewals pending", actor=alice, customer=alice
    )
    services.ticket_reply_add(
        ticket=ticket,
        body="Chargeback suspected.",
        actor=agent,
        author="staff",
        author_user=agent,
        channel="staff",
        internal=True,
    )
    ticket_system_note_add(ticket, body="Registry answered slowly.", actor="system")

    # then staff find it by the notes; Alice, by her own words only
    assert found(agent, "chargeback") == {ticket.reference}
    assert found(agent, "registry") == {ticket.reference}
    assert {t.reference for t in ticket_list(user=alice.user, filters={"q": "chargeback"})} == set()
    if connection.vendor == "postgresql":
        # a stem of a subject word finds it, and the result says the subject matched
        page = staff_queue(user=agent, filters=QueueFilters(view="all", q="renewal"))
        assert [t.reference for t in page.tickets] == [ticket.reference]
        assert page.matched[ticket.pk] == ["subject"]
    assert_documents_current()


def test_a_message_search_costs_the_same_queries_for_one_result_as_for_many(agent, alice):
    def queries(text: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            page = staff_queue(user=agent, filters=QueueFilters(view="all", q=text))
        assert page.tickets
        return len(captured.captured_queries)

    for n in range(6):
        services.ticket_create(
            kind="general",
            subject=f"Ask {n}",
            actor=alice,
            customer=alice,
            body="Glue records" if n == 0 else "Nameserver records",
        )
    # the view counts and the words' shares (PostgreSQL) cached
    staff_queue(user=agent, filters=QueueFilters(view="all", q="records"))

    assert queries("glue") == queries("records")


@postgresql_only("the search document")
@pytest.mark.django_db(transaction=True)
def test_the_migration_writes_the_documents_of_existing_tickets(agent):
    try:
        apps = migrate_to([("tickets", "0021_fieldchange_pending_index")])
        OldTicket = apps.get_model("tickets", "Ticket")
        OldMessage = apps.get_model("tickets", "Message")
        common = {"kind": "general", "contact_email": "x@example.test", "status": "open"}
        asked = OldTicket.objects.create(reference="HD-SEARCH01", subject="Old ask", **common)
        bare = OldTicket.objects.create(reference="HD-SEARCH02", subject="Nothing said", **common)
        for body, internal in [("Kemaskini alamat", False), ("Looks like fraud", True)]:
            OldMessage.objects.create(
                ticket=asked, author="customer", body=body, internal=internal, channel="email"
            )

        migrate_latest()

        assert found(agent, "kemaskini") == {asked.reference}
        assert found(agent, "fraud") == {asked.reference}
        assert found(agent, "said") == {bare.reference}
        assert_documents_current()
    finally:
        migrate_latest()


@postgresql_only("GIN indexes' storage parameters")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_schema_afterwards")
def test_the_search_gin_indexes_keep_short_pending_lists_until_migrated_back():
    from importlib import import_module

    names = import_module("tickets.migrations.0024_gin_pending_list_limit").SEARCH_GIN_INDEXES

    def options() -> dict[str, list[str] | None]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname::text, reloptions FROM pg_class WHERE relname = ANY(%s)",
                [list(names)],
            )
            return dict(cursor.fetchall())

    bounded = {name: ["gin_pending_list_limit=512"] for name in names}
    assert options() == bounded
    migrate_to([("tickets", "0023_ticket_merged_from_any")])
    assert options() == dict.fromkeys(names)
    migrate_latest()
    assert options() == bounded


def test_an_api_search_pages_through_every_match_forward_and_back(client, agent, alice):
    # given nine tickets that a search finds by three different parts (message, subject,
    # domain), some created at the same moment, and two it must not find
    base = timezone.now() - timedelta(days=1)
    shop = DomainFactory(name="glue-shop.test")
    made = []
    for n in range(9):
        by = ("message", "subject", "domain")[n % 3]
        ticket = services.ticket_create(
            kind="general",
            subject="Glue needed" if by == "subject" else f"Ask {n}",
            actor=alice,
            customer=alice,
            domain=shop if by == "domain" else None,
            body="The glue record is stale." if by == "message" else "Hello.",
            status=S.OPEN if n % 2 else S.RESOLVED,
        )
        made.append(ticket)
    for ticket, minutes in zip(made, [0, 5, 5, 5, 10, 20, 20, 30, 40], strict=True):
        Ticket.objects.filter(pk=ticket.pk).update(created_at=base + timedelta(minutes=minutes))
    services.ticket_create(kind="general", subject="Other", actor=alice, customer=alice)
    services.ticket_create(kind="general", subject="Another", actor=alice, body="Nothing.")
    found_in_order = Ticket.objects.filter(pk__in=[t.pk for t in made]).order_by(
        "-created_at", "-id"
    )
    newest_first = [t.reference for t in found_in_order]
    client.force_login(agent)

    def walk(url: str, key: str) -> tuple[list[list[str]], str]:
        pages, last = [], url
        while url:
            body = client.get(url).json()
            pages.append([row["reference"] for row in body["results"]])
            last, url = url, body[key]
        return pages, last

    # when paging forward two at a time, then back from the last page
    forward, last = walk("/api/v1/tickets/?q=glue&page_size=2", "next")
    backward, _ = walk(last, "previous")

    # then every match comes once, in order, both ways
    assert [ref for page in forward for ref in page] == newest_first
    assert backward == forward[::-1]
    # and the other filters narrow the same search
    open_only, _ = walk("/api/v1/tickets/?q=glue&status=open&page_size=2", "next")
    expected = [t.reference for t in found_in_order if t.status == S.OPEN]
    assert len(expected) == 4
    assert [ref for page in open_only for ref in page] == expected


def ticket_due(customer, n: int, body: str, *, status: str, due: datetime) -> None:
    """Ticket "Ask `n`" of `customer`, saying `body`, in `status` and due at `due`."""
    ticket = services.ticket_create(
        kind="general",
        subject=f"Ask {n}",
        actor=customer,
        customer=customer,
        body=body,
        status=status,
    )
    Ticket.objects.filter(pk=ticket.pk).update(due_at=due)


def tickets_every_third_saying(customer, body: str, *, due_hours: int) -> None:
    """90 tickets of `customer`, every third saying `body` (the others "Hello."), open and
    resolved, due in a shuffled order over `due_hours` hours."""
    now = timezone.now()
    for n in range(90):
        due = now + timedelta(hours=(n * 37) % due_hours - due_hours // 2)
        saying = body if n % 3 == 0 else "Hello."
        ticket_due(customer, n, saying, status=S.OPEN if n % 2 else S.RESOLVED, due=due)


@pytest.mark.parametrize("sort", ["urgency", "due", "-created"])
@pytest.mark.parametrize("due_hours", [90, 3])
def test_the_queue_pages_common_words_alike_from_the_head_of_its_order_or_past_it(
    agent, alice, monkeypatch, sort, due_hours
):
    # given 90 tickets, every third saying "glue", open and resolved, due in a shuffled order
    # over 90 hours, or over 3 (30 tickets due at each: the head ends inside a tie)
    from tickets.selectors import queue as queue_selectors

    tickets_every_third_saying(alice, "The glue record is stale.", due_hours=due_hours)

    def pages() -> list[list[str]]:
        found, cursor = [], None
        while True:
            filters = QueueFilters(view="all", q="glue record", sort=sort)
            page = staff_queue(user=agent, filters=filters, cursor=cursor)
            found.append([t.reference for t in page.tickets])
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    # when the words are read as rare ones (the index of the words), then as common ones from
    # the head of the order, which holds every ticket, then only 26 of them
    monkeypatch.setattr(queue_selectors, "ticket_search_words_common", lambda text: False)
    as_rare = pages()
    monkeypatch.setattr(queue_selectors, "ticket_search_words_common", lambda text: True)
    from_the_head = pages()
    monkeypatch.setattr(queue_selectors, "HEAD_ROWS_PER_PAGE_ROW", 1)
    from_past_the_head = pages()

    # then the same 30 tickets in the same pages
    assert sum(len(page) for page in as_rare) == 30
    assert from_the_head == as_rare
    assert from_past_the_head == as_rare


@pytest.mark.parametrize("text", ["glue record", "glue", ""])
def test_the_urgency_order_holds_every_overdue_ticket_before_the_others_past_a_full_page(
    agent, alice, monkeypatch, text
):
    # given 30 open tickets overdue by 1 to 30 hours, and 30 resolved ones (never overdue) due
    # earlier still, 31 to 60 hours ago: all saying "The glue record is stale."
    from tickets.selectors import queue as queue_selectors

    now = timezone.now()
    for n in range(60):
        status = S.OPEN if n < 30 else S.RESOLVED
        due = now - timedelta(hours=n + 1)
        ticket_due(alice, n, "The glue record is stale.", status=status, due=due)
    overdue = Ticket.objects.filter(status=S.OPEN).order_by("due_at", "id")
    others = Ticket.objects.filter(status=S.RESOLVED).order_by("due_at", "id")
    expected = [t.reference for t in [*overdue, *others]]
    # (the words read as common ones: walked in each part's order, as a page fills)
    monkeypatch.setattr(queue_selectors, "ticket_search_words_common", lambda text: True)

    # when the queue of every status is paged in the urgency order, with the search or without
    pages, cursor = [], None
    while True:
        filters = QueueFilters(view="all", q=text, sort="urgency")
        page = staff_queue(user=agent, filters=filters, cursor=cursor)
        pages.append([t.reference for t in page.tickets])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    # then the first page is overdue tickets alone, soonest due first, and the others follow
    # only once every overdue one is shown, however much earlier they were due
    assert [len(page) for page in pages] == [25, 25, 10]
    assert [ref for page in pages for ref in page] == expected


@pytest.mark.parametrize("sort", ["urgency", "due", "-created"])
@pytest.mark.parametrize("text", ["stale glue", "glue@", "wong"])
def test_the_queue_pages_rare_and_common_fields_alike_sorted_at_once_or_walked(
    agent, monkeypatch, sort, text
):
    # given 90 tickets, open and resolved, due in a shuffled order: every third with "stale
    # glue" in its subject, every fifth written from a "glue@" address, every seventh of a
    # customer named Wong
    from tickets.selectors import queue as queue_selectors

    now, wong = timezone.now(), CustomerFactory(full_name="Siti Wong")
    for n in range(90):
        ticket = TicketFactory(
            subject=f"Ask {n}, stale glue" if n % 3 == 0 else f"Ask {n}",
            contact_email=f"glue@{n}.test" if n % 5 == 0 else f"ask-{n}@example.test",
            customer=wong if n % 7 == 0 else None,
            status=S.OPEN if n % 2 else S.RESOLVED,
        )
        due = now + timedelta(hours=(n * 37) % 90 - 45)
        Ticket.objects.filter(pk=ticket.pk).update(due_at=due)

    def pages() -> list[list[tuple[str, tuple[str, ...]]]]:
        found, cursor = [], None
        while True:
            filters = QueueFilters(view="all", q=text, sort=sort)
            page = staff_queue(user=agent, filters=filters, cursor=cursor)
            found.append([(t.reference, tuple(page.matched[t.pk])) for t in page.tickets])
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    # when the ticket's own fields and the customers are read as rare (sorted at once), as
    # common (walked in each part's order), then without statistics to tell
    results = []
    for rare in (True, False, None):
        answer = FieldsRare(own=rare, customers=rare)
        monkeypatch.setattr(queue_selectors, "ticket_search_fields_rare", lambda text, a=answer: a)
        results.append(pages())

    # then the same tickets in the same pages, matched by the same fields
    sorted_at_once, walked, unknown = results
    assert sum(len(page) for page in walked) == {"stale glue": 30, "glue@": 18, "wong": 13}[text]
    assert walked == sorted_at_once
    assert unknown == sorted_at_once


@postgresql_only("the planner's statistics")
def test_a_text_is_rare_when_no_value_the_planner_sampled_holds_it(monkeypatch):
    from tickets.selectors import search_statistics

    # given 40 tickets about a mailbox from "glue" addresses, of customers named Tan, and one
    # about a zebra; read before and after their statistics are gathered
    for n in range(40):
        customer = CustomerFactory(full_name=f"Mei Tan {n}", email=f"tan-{n}@glue.test")
        TicketFactory(subject=f"Mailbox {n}", contact_email=f"ask-{n}@glue.test", customer=customer)
    TicketFactory(subject="A zebra", contact_email="zoo@example.test")
    unknown = search_statistics.ticket_search_fields_rare("zebra")
    cache.clear()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")
        cursor.execute("ANALYZE accounts_customer")
    monkeypatch.setattr(search_statistics, "COMMON_WORD_SHARE", 0.1)
    rare = search_statistics.ticket_search_fields_rare

    # then without statistics nothing is known; with them, what one ticket in 41 holds is rare
    assert unknown == (None, None)
    assert rare("zebra") == (True, True)
    assert rare("nothing like it") == (True, True)
    assert rare("MAILBOX") == (False, True)  # the subjects
    assert rare("ask-1") == (False, True)  # the contact addresses, in part
    assert rare("glue 1 2") == (True, True)  # a blank: the addresses are not read
    assert rare("mei tan") == (True, False)  # the customers' names
    assert rare("@glue.t") == (False, False)  # the addresses, in part
    assert rare("tan-3@glue.test") == (True, True)  # a whole address: one customer
    assert rare("ZZ") == (True, True)  # too short to look for in part


@postgresql_only("the planner's statistics")
def test_the_first_and_the_last_customer_are_as_rare_as_any_other(monkeypatch):
    from tickets.selectors import search_statistics

    # given 400 customers, more than the 101 bounds of a histogram
    Customer.objects.bulk_create(
        CustomerFactory.build(full_name=f"Mei Tan {n:03d}", email=f"tan-{n:03d}@glue.test")
        for n in range(400)
    )
    cache.clear()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_customer")
    rare = search_statistics.ticket_search_fields_rare

    # then the smallest and the largest name and address, always bounds of the histogram, are
    # one customer's, as any other in between: their tickets are sorted at once, not walked
    assert rare("tan-000@glu").customers is True
    assert rare("Mei Tan 399").customers is True
    assert rare("tan-123@glu").customers is True
    # and a part of many names and addresses is still common
    assert rare("Mei Tan 1").customers is False
    assert rare("@glue.t").customers is False


@postgresql_only("the planner's statistics")
def test_the_index_is_asked_for_a_texts_rare_words_and_each_row_found_for_the_text(
    agent, monkeypatch
):
    from tickets.selectors import search_statistics
    from tickets.selectors.search_statistics import Column

    # given 60 tickets from contact-N@example.test, one from bench-customer-7@example.test,
    # and two whose addresses hold every word of "nch-customer-7@exa" but not the text
    for n in range(60):
        TicketFactory(contact_email=f"contact-{n}@example.test", subject=f"Mailbox {n}")
    wanted = TicketFactory(contact_email="bench-customer-7@example.test")
    TicketFactory(contact_email="bench-customer-77@example.test")
    TicketFactory(contact_email="exa-7@bench-customer.test")
    cache.clear()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")
    monkeypatch.setattr(search_statistics, "COMMON_WORD_SHARE", 0.1)
    words = search_statistics.ticket_search_index_words

    # then "exa", in every address, is not asked of the index; nor "7", too short to
    assert words(Column("tickets_ticket", "contact_email"), "nch-customer-7@exa") == [
        "nch",
        "customer",
    ]
    # each word once
    assert words(Column("tickets_ticket", "contact_email"), "nch nch-customer-7@exa") == [
        "nch",
        "customer",
    ]
    # and a text of one word, or of none but common ones, is asked as it is
    assert words(Column("tickets_ticket", "contact_email"), "customer") is None
    assert words(Column("tickets_ticket", "contact_email"), "contact-1@exa") is None
    assert words(Column("tickets_ticket", "subject"), "mailbox 12") is None
    # and the search finds the one address holding the text, not those holding its words
    assert found(agent, "nch-customer-7@exa") == {wanted.reference}
    assert found(agent, "NCH-Customer-7@EXA") == {wanted.reference}
    # read from the addresses' trigram index by its words alone, a pattern each
    plan = explain(ticket_search_ids("nch-customer-7@exa", internal=True))
    addresses = [
        line.strip() for line in plan.splitlines() if "Index Cond: ((upper((contact_" in line
    ]
    assert addresses == [
        "Index Cond: ((upper((contact_email)::text) ~~ '%NCH%'::text)"
        " AND (upper((contact_email)::text) ~~ '%CUSTOMER%'::text))"
    ], plan


@postgresql_only("the planner's statistics")
def test_column_samples_are_read_once_then_come_from_the_cache(django_assert_num_queries):
    from tickets.selectors import search_statistics

    # when the rarity of two texts is asked for, then pg_stats is read for the first only
    with django_assert_num_queries(1):  # pg_stats
        search_statistics.ticket_search_fields_rare("glue")
    with django_assert_num_queries(0):
        search_statistics.ticket_search_fields_rare("zebra")


@postgresql_only("the planner's statistics")
def test_column_samples_are_read_each_time_while_the_cache_is_down(
    django_assert_num_queries, cache_unreachable
):
    from tickets.selectors import search_statistics

    for _ in range(2):
        with django_assert_num_queries(1):  # pg_stats
            assert search_statistics.ticket_search_fields_rare("glue") == (None, None)


@pytest.fixture
def glue_counted(alice, monkeypatch):
    """40 tickets saying "glue", counted by the planner; common from one document in ten."""
    from tickets.selectors import search_statistics

    for n in range(40):
        services.ticket_create(kind="general", subject=f"Ask {n}", actor=alice, body="Glue.")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")
    monkeypatch.setattr(search_statistics, "COMMON_WORD_SHARE", 0.1)
    return search_statistics


@postgresql_only("the search document")
def test_word_shares_are_read_once_then_come_from_the_cache(
    glue_counted, django_assert_num_queries
):
    # when the shares are asked for twice, then pg_stats is read the first time only, beside
    # the one query of each text's words
    with django_assert_num_queries(2):  # pg_stats, the text's words
        assert glue_counted.ticket_search_words_common("glue")
    with django_assert_num_queries(2):  # the texts' words
        assert glue_counted.ticket_search_words_common("glue")
        assert not glue_counted.ticket_search_words_common("zebra")
    # and once the cache has forgotten them (expired), they are read again
    cache.clear()
    with django_assert_num_queries(2):  # pg_stats, the text's words
        assert glue_counted.ticket_search_words_common("glue")


@postgresql_only("the search document")
def test_word_shares_are_read_each_time_while_the_cache_is_down(
    glue_counted, django_assert_num_queries, cache_unreachable
):
    # when the shares are asked for twice with Redis down, then pg_stats is read each time
    for _ in range(2):
        with django_assert_num_queries(2):  # pg_stats, the text's words
            assert glue_counted.ticket_search_words_common("glue")


@pytest.fixture
def stems_counted(alice, monkeypatch):
    """30 tickets of 90 saying "The customer record is stale.", counted by the planner.

    The documents hold "customer" and "record" as written and as the English stems `custom`
    and `record`, but not "customers" nor "records". Common from one document in ten.
    """
    from tickets.selectors import search_statistics

    tickets_every_third_saying(alice, "The customer record is stale.", due_hours=90)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")
    monkeypatch.setattr(search_statistics, "COMMON_WORD_SHARE", 0.1)
    return search_statistics


@postgresql_only("the search document")
def test_a_word_is_common_when_the_documents_hold_its_stem_often(stems_counted):
    common = stems_counted.ticket_search_words_common

    # given words as typed that no document holds, whose English stems a third of them do
    shares = stems_counted._document_word_shares()
    assert "customers" not in shares
    assert "records" not in shares
    assert shares["custom"] >= 0.1

    # then they are as common as their stems, in any case, and a word in no document is rare
    assert common("customers")
    assert common("Records")
    assert common("customers records")
    assert common("customer")  # as written ('simple') and as its stem
    assert not common("zebra")
    assert not common("zebras records")


@postgresql_only("the search document")
def test_every_word_a_search_needs_must_be_common_as_the_search_reads_them(stems_counted):
    common = stems_counted.ticket_search_words_common

    # then a quoted phrase needs each of its words
    assert common('"customer records"')
    assert not common('"customer zebra"')
    # either side of an "or" will do
    assert common("zebra or customers")
    assert not common("zebra or quokka")
    assert not common("customers zebra or quokka")  # (customers and zebra) or quokka
    # a word left out by "-" leaves most documents, and needs nothing of the others
    assert common("customers -record")
    assert not common("zebra -customers")
    assert common("-zebra")
    # a text without a word matches nothing
    assert not common("...")


@postgresql_only("the search document")
@pytest.mark.parametrize("text", ["customers", "customer records", "records -zebra"])
def test_a_common_stem_pages_the_same_tickets_as_a_rare_word(
    stems_counted, agent, monkeypatch, text
):
    from tickets.selectors import queue as queue_selectors

    def pages() -> list[list[tuple[str, tuple[str, ...]]]]:
        found, cursor = [], None
        while True:
            page = staff_queue(user=agent, filters=QueueFilters(view="all", q=text), cursor=cursor)
            found.append([(t.reference, tuple(page.matched[t.pk])) for t in page.tickets])
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    # when the text is read as common (its stems are), then as rare (sorted at once)
    assert stems_counted.ticket_search_words_common(text)
    as_common = pages()
    monkeypatch.setattr(queue_selectors, "ticket_search_words_common", lambda text: False)
    as_rare = pages()

    # then the same 30 tickets in the same pages, matched by their messages
    assert sum(len(page) for page in as_common) == 30
    assert {fields for page in as_common for _ref, fields in page} == {("message",)}
    assert as_common == as_rare


def test_messages_are_written_only_where_the_search_document_follows():
    # A message stored another way would be missing from its ticket's search document.
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    writers = {
        str(path.relative_to(root))
        for app in ("accounts", "domains", "helpdesk", "tickets")
        for path in (root / app).rglob("*.py")
        if "migrations" not in path.parts
        and any(
            call in path.read_text()
            for call in ("Message.objects.create(", "Message.objects.bulk_create(")
        )
    }
    assert writers == {"tickets/services/search.py"}


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["ask-1@glue", "ASK-1@GLUE.TEST", "mailbox 12", "glue"])
def test_the_walked_own_fields_find_the_same_tickets_with_fewer_tests_a_row(text, monkeypatch):
    """A walk tests each row: a whole address is a part of itself, a text holds its words."""
    from tickets.selectors import search_statistics
    from tickets.selectors.search import ticket_search_conditions

    # given addresses and subjects that hold the text whole, in another case, in part, or only
    # its words
    for email, subject in [
        ("ask-1@glue.test", "Mailbox 12 is full"),
        ("ASK-1@glue.TEST", "mailbox 12"),
        ("x-ask-1@glue.testing", "Mailbox 123"),
        ("ask@glue.test", "12 mailbox"),
        ("glue-ask-1@example.test", "Other"),
    ]:
        TicketFactory(contact_email=email, subject=subject)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE tickets_ticket")
        cache.clear()
        monkeypatch.setattr(search_statistics, "COMMON_WORD_SHARE", 0.5)  # each word's pattern

    def found(*, walked: bool) -> tuple[list[int], str]:
        own, *_ = ticket_search_conditions(
            text, internal=True, document=False, customer=False, walked=walked
        )
        tickets = Ticket.objects.filter(own).order_by("pk")
        return list(tickets.values_list("pk", flat=True)), str(tickets.query).split(" WHERE ")[1]

    (indexed, indexed_sql), (walked, walked_sql) = found(walked=False), found(walked=True)
    # then the same tickets, each field tested once in the walk (the address whole or in
    # part, as the text is looked for)
    assert walked == indexed and walked
    assert walked_sql.count('"contact_email"') == 1
    assert walked_sql.count('"subject"') == 1
    assert len(walked_sql) <= len(indexed_sql)
