"""One search, one meaning: the staff queue and the API find the same tickets for a text."""

import pytest
from django.db import connection

from accounts.models import Customer
from tests.factories import CustomerFactory, DomainFactory, TicketFactory
from tests.markers import postgresql_only
from tickets.models import Message, Ticket
from tickets.selectors.queue import QueueFilters, staff_queue
from tickets.selectors.search import ticket_search_conditions, ticket_search_ids
from tickets.selectors.tickets import ticket_list
from tickets.services.search import message_create

S = Ticket.Status


@pytest.fixture
def tickets(db):
    carol = CustomerFactory(email="Carol.Wong@Example.test")
    shop = DomainFactory(name="carol-shop.test", customer=carol)
    return {
        "by customer": TicketFactory(customer=carol, contact_email="other@example.test"),
        "by domain": TicketFactory(domain=shop),
        "by subject": TicketFactory(subject="Invoice for carol-shop hosting"),
        "by contact": TicketFactory(contact_email="billing@carol.test"),
        "unrelated": TicketFactory(subject="Something else", contact_email="x@y.test"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    ["carol.wong@example.TEST", "carol-shop", "BILLING@carol.test", "invoice", "nothing-here"],
)
def test_the_queue_and_the_api_find_the_same_tickets(tickets, agent, text):
    # when
    queue = staff_queue(user=agent, filters=QueueFilters(view="all", q=text, page_size=100))
    api = ticket_list(user=agent, filters={"q": text})

    # then
    assert {t.pk for t in queue.tickets} == {t.pk for t in api}


@pytest.mark.django_db
def test_a_search_matches_the_customer_the_domain_the_subject_and_the_contact(tickets, agent):
    # when
    found = {
        t.pk for t in ticket_list(user=agent, filters={"q": tickets["by customer"].customer.number})
    }
    by_domain = {t.pk for t in ticket_list(user=agent, filters={"q": "carol-shop"})}

    # then
    assert found == {tickets["by customer"].pk}
    assert by_domain == {tickets["by domain"].pk, tickets["by subject"].pk}


# --- what a search matches, on PostgreSQL and SQLite alike ---


def found(user, text: str) -> set[str]:
    return {t.reference for t in ticket_list(user=user, filters={"q": text})}


@pytest.fixture
def people(db):
    """Customers and tickets named so that no other text holds the words searched for."""
    lim = CustomerFactory(full_name="Bob Lim", email="bob.lim@reseller.example", number="C12345678")
    tan = CustomerFactory(full_name="Alice Tan", email="alice.tan@shop.example")
    dns = TicketFactory(customer=tan, subject="Help please", status=S.RESOLVED)
    message_create(
        ticket=dns,
        author=Message.Author.CUSTOMER,
        body="Please update the DNS records for my shop.",
        channel=Ticket.Channel.PORTAL,
    )
    return {
        "lim": TicketFactory(customer=lim, subject="Renewal", status=S.CLOSED),
        "tan": dns,
        "anonymous": TicketFactory(
            customer=None, contact_email="walk.in@visitor.example", subject="Hello there"
        ),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bob", {"lim"}),
        ("ALICE t", {"tan"}),
        ("lim@reseller", {"lim"}),
        ("visitor.exa", {"anonymous"}),
        ("c12345678", {"lim"}),
        ("dns", {"tan"}),
        ("DNS records", {"tan"}),
        ("nothing-like-it", set()),
    ],
)
def test_a_search_matches_name_partial_email_number_and_message_text(people, agent, text, expected):
    assert found(agent, text) == {people[key].reference for key in expected}


@pytest.mark.django_db
def test_two_characters_match_whole_values_only(people, agent):
    # "li" is in "Bob Lim" and "alice", but too short to search inside values
    assert found(agent, "li") == set()


@pytest.mark.django_db
def test_message_text_is_searched_with_english_stems_and_malay_words_as_written(people, agent):
    # given a message in Malay
    message_create(
        ticket=people["lim"],
        author=Message.Author.CUSTOMER,
        body="Tolong kemaskini rekod DNS saya.",
        channel=Ticket.Channel.EMAIL,
    )

    # then a Malay word finds it as written, on every database
    assert found(agent, "kemaskini") == {people["lim"].reference}
    if connection.vendor == "postgresql":
        # and on PostgreSQL an English word finds its other forms ("record" finds "records"),
        # and words need not be next to each other
        assert found(agent, "record") == {people["tan"].reference}
        assert found(agent, "shop update") == {people["tan"].reference}


@pytest.mark.django_db
def test_a_customer_cannot_find_what_an_internal_note_on_its_own_ticket_says(alice, agent):
    # given a note staff wrote on Alice's ticket
    ticket = TicketFactory(customer=alice, subject="Refund")
    message_create(
        ticket=ticket,
        author=Message.Author.STAFF,
        body="Suspected chargeback fraud, check the card.",
        internal=True,
        channel=Ticket.Channel.STAFF,
    )

    # then staff find the ticket by the note, Alice does not
    assert found(agent, "chargeback") == {ticket.reference}
    assert found(alice.user, "chargeback") == set()
    assert found(alice.user, "Refund") == {ticket.reference}


@pytest.mark.django_db
def test_a_customer_search_by_name_or_message_stays_inside_its_own_tickets(alice, bob, people):
    # Bob Lim's name and the other customer's message words find nothing of theirs for Alice
    assert found(alice.user, "Bob Lim") == set()
    assert found(alice.user, "DNS records") == set()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("bob", ["customer_name", "customer_email"]),
        ("reseller.example", ["customer_email"]),
        ("c12345678", ["customer_number"]),
        ("renewal", ["subject"]),
        ("dns records", ["message"]),
        ("walk.in@visitor.example", ["contact_email"]),
    ],
)
def test_each_result_says_which_field_matched(people, agent, text, matched):
    # when
    page = staff_queue(user=agent, filters=QueueFilters(q=text))

    # then (the message text only when nothing on the ticket itself matched)
    assert len(page.tickets) == 1
    assert page.matched[page.tickets[0].pk][: len(matched)] == matched


def explain(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Bitmap scans only, which need an index condition: a part without an index of its
        # own would have to read the whole table, whatever the statistics of the test data.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgresql_only("the trigram and full-text indexes")
@pytest.mark.django_db
def test_every_part_of_a_search_has_an_index_on_postgresql(people):
    # when
    plan = explain(ticket_search_ids("records", internal=True))
    as_customer = explain(ticket_search_ids("dns records", internal=False))
    no_domain_has = explain(ticket_search_ids("dns records", internal=True))
    by_name = explain(Customer.objects.filter(full_name__icontains="bob l"))
    by_email = explain(Customer.objects.filter(email__icontains="lim@res"))

    # then each part names its index: staff search the tickets' search documents, a customer
    # the messages (an expression index the query must repeat exactly)
    assert "message_body_fts" in as_customer and "ticket_search_vector" not in as_customer
    for index in (
        "ticket_search_vector",
        "ticket_contact_email_trgm",
        "ticket_subject_trgm",
        "domain_name_trgm",
    ):
        assert index in plan
    # and a text no domain name can hold (a space) does not look among the domains
    assert "domain_name_trgm" not in no_domain_has
    assert "ticket_subject_trgm" in no_domain_has
    assert "customer_full_name_trgm" in by_name
    assert "customer_email_trgm" in by_email


@pytest.mark.django_db
def test_a_text_with_a_blank_reads_no_address_but_an_escaped_blank_is_still_found(agent):
    # given an address with an escaped blank inside quotes, which validate_email accepts
    quoted = TicketFactory(customer=None, contact_email='"walk\\ in"@visitor.example')
    named = TicketFactory(customer=CustomerFactory(full_name="Siti Rahman"))

    # when / then: a name with a blank is found by name without a partial read of addresses
    assert found(agent, "siti rahman") == {named.reference}
    assert "email__icontains" not in repr(ticket_search_conditions("siti rahman"))
    assert "email__icontains" in repr(ticket_search_conditions("rahman"))
    # and an address holding a blank is still found by a text with its backslash
    assert found(agent, "walk\\ in") == {quoted.reference}


@pytest.mark.django_db
def test_a_whole_address_finds_that_address_not_the_longer_ones_that_hold_it(agent):
    # given "ann@shop.example", and "joann@shop.example" which holds it
    ann = TicketFactory(customer=None, contact_email="ann@shop.example")
    joann = TicketFactory(customer=CustomerFactory(email="joann@shop.example"))

    # when / then: the whole address is that person; a part of one still finds both
    assert found(agent, "ANN@shop.example") == {ann.reference}
    assert "email__icontains" not in repr(ticket_search_conditions("ann@shop.example"))
    assert found(agent, "ann@shop") == {ann.reference, joann.reference}
