"""A page shown to a signed-in login is never kept by a browser or a proxy.

Signed out on a shared computer, the next person's Back button must not bring back a
customer's tickets, the change form filled in with their name, phone and address, or their
API tokens. The API says `private` itself (its ETags let a client revalidate): left as it is.
"""

import pytest

from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db


def _no_store(response) -> bool:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    return {"no-store", "private"} <= directives


def test_a_signed_in_customers_pages_are_not_stored(alice_client, alice):
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    pages = [
        "/",
        "/my/",
        f"/my/tickets/{ticket.reference}/",
        "/my/preferences/",
        "/requests/modify/",
        "/requests/new/",
        "/accounts/tokens/",
    ]
    for path in pages:
        response = alice_client.get(path)
        assert response.status_code == 200, path
        assert _no_store(response), (path, response.get("Cache-Control"))
    assert "Tan" in alice_client.get("/requests/modify/").content.decode()


def test_a_signed_in_staff_members_pages_are_not_stored(agent_client):
    for path in ["/staff/", "/staff/dashboard/"]:
        response = agent_client.get(path)
        assert response.status_code == 200, path
        assert _no_store(response), (path, response.get("Cache-Control"))


def test_an_api_answer_is_private_and_never_stored(alice_client, alice):
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    response = alice_client.get(f"/api/v1/tickets/{ticket.reference}/")
    assert response.status_code == 200
    assert _no_store(response), response["Cache-Control"]


def test_an_anonymous_page_is_left_to_its_view(client):
    assert "Cache-Control" not in client.get("/requests/password/")
