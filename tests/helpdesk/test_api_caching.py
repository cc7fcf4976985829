"""Every API answer is the caller's alone unless its URL is listed here as the same for everyone.

The test walks the API's URLconf, so an endpoint added later is covered without anyone
remembering to add it here.
"""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import TicketFactory, api_key_for, api_token_stored
from tickets.models import Ticket

# Answers that do not depend on who asks, which a shared cache may keep.
SAME_FOR_EVERYONE = {"api:health", "api:schema", "api:docs"}


def _api_patterns() -> list[URLPattern]:
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "api":
            return [p for p in entry.url_patterns if isinstance(p, URLPattern)]
    raise AssertionError("no URLconf namespace 'api'")


API_PATTERNS = {f"api:{p.name}": p for p in _api_patterns()}


def _client(user, how: str) -> Client:
    if how == "token":
        return Client(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    client = Client()
    client.force_login(user)
    return client


def _vary(response) -> set[str]:
    return {v.strip().lower() for v in response.get("Vary", "").split(",")}


@pytest.fixture
def reachable(alice):
    """Path arguments that reach a real object of Alice's for every API URL that takes one."""
    ticket = TicketFactory(customer=alice, status=Ticket.Status.OPEN)
    key = api_key_for(alice.user, name="another")
    return {"reference": ticket.reference, "token_id": api_token_stored(key).pk}


@pytest.mark.parametrize("how", ["token", "session"])
@pytest.mark.parametrize("persona", ["alice", "agent"])
@pytest.mark.parametrize("name", sorted(set(API_PATTERNS) - SAME_FOR_EVERYONE))
def test_every_api_answer_is_kept_by_no_cache_for_another_reader(
    name, persona, how, reachable, alice, agent
):
    # given a caller signed in by token or by session, and the URL's arguments
    user = {"alice": alice.user, "agent": agent}[persona]
    wanted = API_PATTERNS[name].pattern.regex.groupindex
    path = reverse(name, kwargs={arg: reachable[arg] for arg in wanted})

    # when they read it (whatever the answer: a body, a 404, a 405)
    response = _client(user, how).get(path)

    # then caches are told it depends on who asks and is no one else's to keep
    assert {"authorization", "cookie"} <= _vary(response), (path, response.status_code)
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert {"private", "no-store"} <= directives, (path, response.status_code)


@pytest.mark.parametrize("name", sorted(SAME_FOR_EVERYONE - {"api:health"}))
def test_an_answer_listed_as_the_same_for_everyone_is(name, alice, agent):
    # when a customer and an agent read it, by token
    bodies = [_client(user, "token").get(reverse(name)) for user in (alice.user, agent)]

    # then both are shown the same
    assert bodies[0].status_code == bodies[1].status_code == 200
    assert bodies[0].content == bodies[1].content
    assert "private" not in bodies[0].get("Cache-Control", "")


def test_health_is_never_stored_by_a_cache(client):
    # when monitoring reads readiness
    response = client.get(reverse("api:health"))

    # then no cache keeps it: a stale "ok" would hide an outage
    assert response["Cache-Control"] == "no-store"


def test_the_ticket_etag_is_its_version_in_quotes(alice):
    # given Alice's ticket
    ticket = TicketFactory(customer=alice, status=Ticket.Status.OPEN)

    # when she reads it
    path = reverse("api:ticket", kwargs={"reference": ticket.reference})
    response = _client(alice.user, "token").get(path)

    # then the ETag is its version, the form a change sends back
    assert response["ETag"] == f'"{ticket.version}"'
