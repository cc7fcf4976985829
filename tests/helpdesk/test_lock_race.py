"""A transaction PostgreSQL rolled back in a lock race is a 409 that says to try again.

When two actions wait on each other's row locks, PostgreSQL aborts one of them
(deadlock_detected); nothing of it was saved, and doing it again works. The person (or API
client) whose action lost gets a clear 409 in the site's layout or as JSON, never a 500.
"""

import threading

import psycopg.errors
import pytest
from django.db import OperationalError, close_old_connections, connection, transaction
from django.test import Client

from accounts.services import api_token_issue
from helpdesk.exceptions import lost_a_lock_race
from tests.factories import TicketFactory
from tests.markers import postgresql_only
from tests.tickets.test_inbound import SECRET, payload, post
from tickets.lock_objects import ticket_lock
from tickets.models import Ticket
from tickets.services import inbound_email, lifecycle

pytestmark = pytest.mark.django_db


def _deadlock(**_kwargs):
    # As Django raises it: its own OperationalError, from the driver's error with the SQLSTATE.
    try:
        raise psycopg.errors.DeadlockDetected("deadlock detected")
    except psycopg.errors.DeadlockDetected as exc:
        raise OperationalError(*exc.args) from exc


def test_only_a_lost_lock_race_counts_as_one():
    with pytest.raises(OperationalError) as raced:
        _deadlock()
    assert lost_a_lock_race(raced.value)
    assert not lost_a_lock_race(OperationalError("server closed the connection unexpectedly"))
    assert not lost_a_lock_race(ValueError("deadlock detected"))


def test_a_staff_action_that_lost_a_lock_race_is_a_409_page_and_changes_nothing(
    agent_client, monkeypatch
):
    # given a ticket, and the next lock of it lost to another transaction
    ticket = TicketFactory(priority=Ticket.Priority.NORMAL)
    monkeypatch.setattr(lifecycle, "ticket_lock", _deadlock)

    # when the agent changes its priority
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/priority/",
        {"priority": "high", "version": ticket.version},
    )

    # then a page that says to try again, and the ticket as it was
    assert response.status_code == 409
    assert "nothing was saved" in response.content.decode()
    assert "<html" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.priority == Ticket.Priority.NORMAL


def test_an_api_action_that_lost_a_lock_race_is_a_409_in_json(agent, monkeypatch):
    # given an open ticket and an agent's token
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    client = Client(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=agent).key}")
    monkeypatch.setattr(lifecycle, "ticket_lock", _deadlock)

    # when
    response = client.post(
        f"/api/v1/tickets/{ticket.reference}/resolve/", {}, content_type="application/json"
    )

    # then
    assert response.status_code == 409
    assert "nothing was saved" in response.json()["detail"]
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN


@postgresql_only("a row lock that waits on another")
@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_on_postgresql_is_recognised_as_a_lost_lock_race():
    # given two transactions that lock two tickets in opposite orders
    first, second = TicketFactory(), TicketFactory()
    both_hold_one = threading.Barrier(2, timeout=10)
    raised: list[BaseException] = []

    def lock(one: int, other: int) -> None:
        close_old_connections()
        try:
            with transaction.atomic():
                ticket_lock(pk=one)
                both_hold_one.wait()
                ticket_lock(pk=other)
        except Exception as exc:
            raised.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=lock, args=(first.pk, second.pk)),
        threading.Thread(target=lock, args=(second.pk, first.pk)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then PostgreSQL rolled one of them back, and that error reads as a lost lock race
    assert len(raised) == 1
    assert lost_a_lock_race(raised[0])


def test_an_inbound_email_that_lost_a_lock_race_is_a_503_and_its_resend_is_stored(
    client, settings, monkeypatch
):
    # given the ESP's inbound webhook, and the first try's transaction lost to another one
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    monkeypatch.setattr(inbound_email, "request_general", _deadlock)

    # when the ESP posts the message: a 503 it retries (a 4xx may make it drop the message)
    first = post(client, payload())
    assert first.status_code == 503
    assert first["Retry-After"] == "1"
    assert not Ticket.objects.exists()

    # then its retry is stored once
    monkeypatch.undo()
    assert post(client, payload()).status_code == 200
    assert Ticket.objects.count() == 1
