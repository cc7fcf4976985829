"""The search box of the staff pages: jump to a reference, search every status, say what matched."""

import re

import pytest
from django.db import connection

from tests.factories import CustomerFactory, DomainFactory, TicketFactory
from tickets.models import Message, Ticket
from tickets.services.search import message_create

S = Ticket.Status


def rows(response) -> list[str]:
    return re.findall(r'data-reference="(HD-[0-9A-Z]{8})"', response.content.decode())


def current_tab(response) -> list[str]:
    """The quick views marked as the page shown."""
    return re.findall(
        r'\?view=(\w+)[^"]*" class="view-link[^"]*" aria-current="page"', response.content.decode()
    )


def note(ticket, body, *, internal=False):
    message_create(
        ticket=ticket,
        author=Message.Author.STAFF if internal else Message.Author.CUSTOMER,
        body=body,
        internal=internal,
        channel=Ticket.Channel.PORTAL,
    )


@pytest.fixture
def resolved(db):
    customer = CustomerFactory(full_name="Siti Nurhaliza", email="siti@kedai.example")
    ticket = TicketFactory(customer=customer, subject="Website down", status=S.RESOLVED)
    note(ticket, "The nameserver glue was wrong.")
    return ticket


@pytest.mark.django_db
def test_every_staff_page_has_the_search_box(agent_client, resolved):
    for url in (
        "/staff/",
        f"/staff/tickets/{resolved.reference}/",
        f"/staff/customers/{resolved.customer.number}/",
        "/staff/dashboard/",
    ):
        page = agent_client.get(url).content.decode()
        assert re.search(
            r'<form class="staff-search" role="search" method="get" action="/staff/">', page
        ), url
        assert 'name="q" id="id_q"' in page, url


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["{ref}", " {lower} "])
def test_an_exact_reference_jumps_to_its_ticket_whatever_its_status(agent_client, resolved, typed):
    # when
    text = typed.format(ref=resolved.reference, lower=resolved.reference.lower())
    response = agent_client.get("/staff/", {"q": text, "view": "open"})

    # then
    assert response.status_code == 302
    assert response["Location"] == f"/staff/tickets/{resolved.reference}/"


@pytest.mark.django_db
def test_a_reference_nobody_has_is_searched_for_like_any_text(agent_client, resolved):
    # given a message that quotes a reference that does not exist
    note(resolved, "Same as HD-ZZZZZZZZ last year.")

    # when
    response = agent_client.get("/staff/", {"q": "hd-zzzzzzzz"})

    # then
    assert response.status_code == 200
    assert rows(response) == [resolved.reference]


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["siti", "kedai.exa", "nameserver", "Website"])
def test_a_search_from_the_open_tab_finds_a_resolved_ticket(agent_client, resolved, text):
    # given an open ticket that does not match
    TicketFactory(subject="Other thing", status=S.OPEN)

    # when the box is used (it sends the text alone)
    response = agent_client.get("/staff/", {"q": text})

    # then every status is searched, and the tabs say so
    assert rows(response) == [resolved.reference]
    assert current_tab(response) == ["all"]


@pytest.mark.django_db
def test_a_tab_chosen_while_searching_narrows_the_search_to_it(agent_client, resolved):
    # given an open match as well
    other = TicketFactory(subject="Website slow", status=S.OPEN)
    page = agent_client.get("/staff/", {"q": "website"}).content.decode()
    open_link = re.search(r'href="\?(view=open[^"]*)"', page).group(1).replace("&amp;", "&")

    # when
    response = agent_client.get("/staff/?" + open_link)

    # then
    assert "in_view=1" in open_link and "q=website" in open_link
    assert rows(response) == [other.reference]
    assert current_tab(response) == ["open"]


@pytest.mark.django_db
def test_a_status_chosen_on_the_open_tab_highlights_what_is_shown(agent_client, agent, resolved):
    # given
    mine = TicketFactory(assignee=agent, status=S.RESOLVED, subject="Mine, done")
    TicketFactory(assignee=agent, status=S.OPEN)

    # when
    on_open = agent_client.get("/staff/", {"view": "open", "status": "resolved"})
    on_mine = agent_client.get("/staff/", {"view": "mine", "status": "resolved"})

    # then the resolved tickets are listed under "All tickets", not "Open"
    assert set(rows(on_open)) == {resolved.reference, mine.reference}
    assert current_tab(on_open) == ["all"]
    # and a status chosen on Mine shows my tickets in that status
    assert rows(on_mine) == [mine.reference]
    assert current_tab(on_mine) == ["mine"]


@pytest.mark.django_db
def test_each_result_says_which_field_matched(agent_client, resolved):
    # when
    by_message = agent_client.get("/staff/", {"q": "glue"}).content.decode()
    by_name = agent_client.get("/staff/", {"q": "nurhaliza"}).content.decode()

    # then
    assert "matched: message text" in by_message
    assert "matched: customer name" in by_name


@pytest.mark.django_db
def test_what_was_searched_for_is_shown_escaped(agent_client):
    # when
    page = agent_client.get("/staff/", {"q": '<script>alert("x")</script>'}).content.decode()

    # then
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page


@pytest.mark.django_db
def test_a_search_text_too_long_is_ignored_with_a_notice(agent_client, resolved):
    response = agent_client.get("/staff/", {"q": "x" * 201})
    assert response.status_code == 200
    assert "were not recognised and were ignored" in response.content.decode()


@pytest.mark.django_db
def test_an_internal_note_is_found_by_staff(agent_client, resolved):
    note(resolved, "Escalated to the datacentre team.", internal=True)
    assert rows(agent_client.get("/staff/", {"q": "datacentre"})) == [resolved.reference]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 50])
def test_the_results_page_makes_the_same_number_of_queries_for_5_and_50_results(
    agent_client, count, django_assert_num_queries
):
    # given tickets found by customer name, by domain and by message text
    for n in range(count):
        customer = CustomerFactory(full_name=f"Rahman {n}")
        domain = DomainFactory(customer=customer, name=f"rahman-{n}.test")
        ticket = TicketFactory(customer=customer, domain=domain, status=S.CLOSED)
        note(ticket, "Pak Rahman asked again.")
    agent_client.get("/staff/?q=rahman")  # warm up the session and the words' shares

    # when / then, one query each:
    # session / user / view counts / page of tickets (search parts inside as a subquery, with
    # customer, domain and assignee joined) / the user's saved views / the user's permissions
    # (own and groups'); on PostgreSQL, the lexemes of the search's words too (the staff names
    # kept in the cache by the first request)
    with django_assert_num_queries(7 if connection.vendor == "postgresql" else 6):
        response = agent_client.get("/staff/?size=50&q=rahman")
    assert len(rows(response)) == count
    assert response.content.decode().count("matched: ") == count


@pytest.mark.django_db
def test_the_search_box_is_not_offered_to_a_customer(alice_client):
    assert agent_search_box_absent(alice_client.get("/").content.decode())


def agent_search_box_absent(page: str) -> bool:
    return 'class="staff-search"' not in page


@pytest.mark.django_db
def test_a_customer_asking_the_staff_search_gets_no_ticket(alice_client, resolved):
    response = alice_client.get("/staff/", {"q": resolved.reference})
    assert response.status_code in (302, 403, 404)
    assert resolved.reference not in response.content.decode()
    assert resolved.reference not in response.get("Location", "")
