"""Reads of one ticket by reference, scoped to who asks."""

import pytest

from tests.factories import TicketFactory
from tickets.models import Ticket
from tickets.selectors.tickets import customer_has_ticket, ticket_visible_get


@pytest.mark.django_db
def test_a_visible_ticket_is_read_in_one_query(alice, django_assert_num_queries):
    # given
    ticket = TicketFactory(customer=alice)

    # when
    # the ticket, joined with its customer, domain and assignee (the login holds her record)
    with django_assert_num_queries(1):
        found = ticket_visible_get(user=alice.user, reference=ticket.reference)

    # then
    assert found == ticket


@pytest.mark.django_db
def test_another_customers_ticket_is_not_visible(alice, bob):
    ticket = TicketFactory(customer=alice)

    assert ticket_visible_get(user=bob.user, reference=ticket.reference) is None


@pytest.mark.django_db
def test_customer_has_ticket_looks_at_the_kind(alice):
    TicketFactory(customer=alice, kind=Ticket.Kind.GENERAL)

    assert customer_has_ticket(customer=alice, kind=Ticket.Kind.GENERAL)
    assert not customer_has_ticket(customer=alice, kind=Ticket.Kind.OPT_OUT)
