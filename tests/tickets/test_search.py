"""One search, one meaning: the staff queue and the API find the same tickets for a text."""

import pytest

from tests.factories import CustomerFactory, DomainFactory, TicketFactory
from tickets.selectors.queue import QueueFilters, staff_queue
from tickets.selectors.tickets import ticket_list


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
