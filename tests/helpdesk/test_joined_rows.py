import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.backends import OneQueryModelBackend as BACKEND
from accounts.models import Customer, LoginState
from helpdesk.joined_rows import joined_row_get
from tests.factories import DomainFactory, TicketFactory
from tickets.models import Ticket

RELATIONS = ("customer", "domain", "assignee")


def _fields(row) -> dict:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


@pytest.mark.django_db
def test_a_ticket_with_its_rows_reads_as_select_related_reads_it(agent):
    # given: every kind of column (dates, flags, numbers, text) set on all four rows
    domain = DomainFactory(synced_at=timezone.now())
    ticket = TicketFactory(
        customer=domain.customer,
        domain=domain,
        assignee=agent,
        subject='<script>alert("x")</script>',
        verified_by="session",
    )
    expected = Ticket.objects.select_related(*RELATIONS).get(pk=ticket.pk)

    # when
    with CaptureQueriesContext(connection) as queries:
        found = joined_row_get(
            Ticket, RELATIONS, where="t.reference = %s", params=[ticket.reference]
        )
        related = (found.customer, found.domain, found.assignee)

    # then: one query, the same values, of the same types, as the ORM's
    assert len(queries) == 1
    assert _fields(found) == _fields(expected)
    for row, want in zip(
        related, (expected.customer, expected.domain, expected.assignee), strict=True
    ):
        assert _fields(row) == _fields(want)
        assert {k: type(v) for k, v in _fields(row).items()} == {
            k: type(v) for k, v in _fields(want).items()
        }
    assert found.verified_at == expected.verified_at and found.verified_at.tzinfo is not None
    assert not found._state.adding and found._state.db == "default"


@pytest.mark.django_db
def test_empty_keys_read_as_none_without_a_query():
    # given
    ticket = TicketFactory(customer=None, domain=None, assignee=None)

    # when
    with CaptureQueriesContext(connection) as queries:
        found = joined_row_get(
            Ticket, RELATIONS, where="t.reference = %s", params=[ticket.reference]
        )
        related = (found.customer, found.domain, found.assignee)

    # then
    assert len(queries) == 1
    assert related == (None, None, None)


@pytest.mark.django_db
def test_no_row_is_none():
    assert joined_row_get(Ticket, RELATIONS, where="t.reference = %s", params=["HD-NONE"]) is None


@pytest.mark.django_db
def test_a_login_without_a_customer_or_state_says_so_without_a_query(agent):
    # when
    with CaptureQueriesContext(connection) as queries:
        user = joined_row_get(
            User, ("customer", "login_state"), where="t.id = %s", params=[agent.pk]
        )
        assert user is not None
        with pytest.raises(Customer.DoesNotExist):
            user.customer  # noqa: B018
        with pytest.raises(LoginState.DoesNotExist):
            user.login_state  # noqa: B018

    # then
    assert len(queries) == 1
    assert user.username == "agent"


@pytest.mark.django_db
def test_a_login_with_its_customer_and_state_reads_both_each_naming_it(alice):
    # given
    LoginState.objects.create(user=alice.user, reactivations=2)

    # when
    with CaptureQueriesContext(connection) as queries:
        user = joined_row_get(
            User, ("customer", "login_state"), where="t.id = %s", params=[alice.user.pk]
        )
        assert user is not None
        read = (user.customer, user.login_state, user.customer.user, user.login_state.user)

    # then
    assert len(queries) == 1
    assert _fields(read[0]) == _fields(Customer.objects.get(pk=alice.pk))
    assert read[1].reactivations == 2
    assert read[2] is user and read[3] is user


@pytest.mark.django_db
def test_the_backend_reads_a_login_with_its_customer_in_one_query(alice):
    # when
    with CaptureQueriesContext(connection) as queries:
        user = BACKEND().get_user(alice.user.pk)
        assert user is not None
        customer = user.customer

    # then
    assert len(queries) == 1
    assert customer.pk == alice.pk
    assert BACKEND().get_user(alice.user.pk + 1000) is None
    assert BACKEND().get_user("not a number") is None
