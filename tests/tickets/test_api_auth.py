"""REST API v1 authentication (session with CSRF, tokens), token management and throttling."""

import pytest
from django.test import Client
from rest_framework.exceptions import Throttled

from accounts.models import ApiToken
from helpdesk.api import SERVER_ERROR, exception_handler
from tests.factories import TicketFactory, api_key_for, api_token_stored
from tickets.models import ActionLog

TOKEN = "/api/v1/auth/token/"
LIST = "/api/v1/tickets/"


def token_client(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def post_json(client: Client, path: str, data: dict | None = None):
    return client.post(path, data or {}, content_type="application/json")


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice@example.test", "alice-demo-pass"), ("agent", "agent-demo-pass")],
)
def test_a_user_gets_a_token_with_its_username_and_password(alice, agent, username, password):
    # when
    response = post_json(Client(), TOKEN, {"username": username, "password": password})

    # then
    assert response.status_code == 200
    key = response.json()["token"]
    assert api_token_stored(key).user.get_username() == username
    assert token_client(key).get(LIST).status_code == 200
    issued = ActionLog.objects.get(action="api_token.issued")
    assert key not in str(issued.details)


def test_asking_twice_gives_two_tokens_that_both_work(alice):
    # given
    credentials = {"username": "alice@example.test", "password": "alice-demo-pass"}

    # when
    first = post_json(Client(), TOKEN, credentials).json()["token"]
    second = post_json(Client(), TOKEN, credentials).json()["token"]

    # then: a key is shown once and never kept, so each ask makes a new one
    assert first != second
    assert token_client(first).get(LIST).status_code == 200
    assert token_client(second).get(LIST).status_code == 200
    assert ActionLog.objects.filter(action="api_token.issued").count() == 2


def test_a_wrong_password_gets_no_token(alice):
    # when
    response = post_json(Client(), TOKEN, {"username": "alice@example.test", "password": "guess"})

    # then
    assert response.status_code == 401
    assert response.json() == {"detail": "Unable to log in with the username and password given."}
    assert not ApiToken.objects.exists()


def test_an_anonymous_request_without_credentials_gets_a_401(db):
    response = post_json(Client(), TOKEN)
    assert response.status_code == 401
    assert response.json()["detail"] == "Log in first, or give your username and password."


def test_a_logged_in_user_gets_its_token_by_session_with_the_csrf_token(alice):
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.user)
    client.get("/accounts/login/")  # sets the CSRF cookie, as the portal would
    csrf = client.cookies["csrftoken"].value

    # when
    response = client.post(TOKEN, {}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)

    # then
    assert response.status_code == 200
    assert api_token_stored(response.json()["token"]).user == alice.user


def test_a_session_post_without_the_csrf_token_is_refused(alice):
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.user)
    ticket = TicketFactory(customer=alice)

    # when
    token_response = post_json(client, TOKEN)
    message_response = post_json(client, f"{LIST}{ticket.reference}/messages/", {"body": "hi"})

    # then
    assert token_response.status_code == 403
    assert "CSRF" in token_response.json()["detail"]
    assert message_response.status_code == 403
    assert not ticket.messages.exists()


def test_a_revoked_token_is_refused_on_the_very_next_request(alice):
    # given
    key = post_json(
        Client(), TOKEN, {"username": "alice@example.test", "password": "alice-demo-pass"}
    ).json()["token"]
    client = token_client(key)
    assert client.get(LIST).status_code == 200

    # when
    revoked = client.delete(TOKEN)

    # then
    assert revoked.status_code == 204
    after = client.get(LIST)
    assert after.status_code == 401
    assert after.json() == {"detail": "Invalid token."}
    assert ActionLog.objects.filter(action="api_token.revoked").count() == 1


def test_a_token_cannot_make_itself_a_successor(alice):
    # given a token about to expire, in the hands of whoever copied it
    key = api_key_for(alice.user, days=1)
    client = token_client(key)

    # when its holder asks for a new token with it, one lasting as long as any may
    response = post_json(client, TOKEN, {"expires_in_days": 365})

    # then none is made: a new token takes the password or the owner's session
    assert response.status_code == 403
    assert "password" in response.json()["detail"]
    assert ApiToken.objects.filter(user=alice.user).count() == 1
    assert not ActionLog.objects.filter(action="api_token.issued").exists()


def test_revoking_needs_a_login(db):
    assert Client().delete(TOKEN).status_code == 401


def test_a_session_user_can_revoke_its_token(agent, client):
    # given
    key = api_key_for(agent)
    client.force_login(agent)

    # when
    response = client.delete(TOKEN)

    # then
    assert response.status_code == 204
    assert api_token_stored(key) is None


def test_another_customers_token_cannot_read_the_ticket(alice, bob):
    # given
    ticket = TicketFactory(customer=alice)
    bob_key = api_key_for(bob.user)

    # when
    response = token_client(bob_key).get(f"{LIST}{ticket.reference}/")

    # then
    assert response.status_code == 404


def test_a_staff_token_works_a_ticket(alice, agent):
    # given
    ticket = TicketFactory(customer=alice)
    client = token_client(api_key_for(agent))

    # when
    response = post_json(client, f"{LIST}{ticket.reference}/resolve/")

    # then: a token carries no CSRF duty
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


def test_a_malformed_authorization_header_is_a_401(db):
    response = Client(HTTP_AUTHORIZATION="Token a b c").get(LIST)
    assert response.status_code == 401
    assert "detail" in response.json()


# --- throttling ---


@pytest.mark.usefixtures("rate_window_start")
def test_password_guessing_for_a_token_is_throttled(alice, settings):
    # given
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_client": (3, 300),
        "login_failures_per_username": (3, 300),
    }
    client = Client()
    wrong = {"username": "alice@example.test", "password": "guess"}
    statuses = [post_json(client, TOKEN, wrong).status_code for _ in range(3)]

    # when: even the right password is refused now
    response = post_json(
        client, TOKEN, {"username": "alice@example.test", "password": "alice-demo-pass"}
    )

    # then
    assert statuses == [401, 401, 401]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 300
    assert not ApiToken.objects.exists()


@pytest.mark.usefixtures("rate_window_start")
def test_a_user_past_its_api_budget_gets_429_with_retry_after(alice, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_per_user": (3, 60)}
    client = token_client(api_key_for(alice.user))
    statuses = [client.get(LIST).status_code for _ in range(3)]

    # when
    response = client.get(LIST)

    # then
    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json() == {"detail": "Too many requests. Please wait a little and try again."}


def test_the_budget_is_per_user(alice, bob, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_per_user": (2, 60)}
    alice_client = token_client(api_key_for(alice.user))
    for _ in range(3):
        alice_client.get(LIST)

    # when
    response = token_client(api_key_for(bob.user)).get(LIST)

    # then
    assert response.status_code == 200


@pytest.mark.usefixtures("rate_window_start")
def test_anonymous_clients_are_throttled_by_address(db, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_per_client": (2, 60)}
    first = Client(REMOTE_ADDR="10.0.0.1")
    other = Client(REMOTE_ADDR="10.0.0.2")
    first.get("/api/v1/health/")
    first.get("/api/v1/health/")

    # when
    throttled = first.get("/api/v1/health/")
    elsewhere = other.get("/api/v1/health/")

    # then
    assert throttled.status_code == 429
    assert "Retry-After" in throttled
    assert elsewhere.status_code == 200


@pytest.mark.usefixtures("rate_window_start")
def test_drfs_own_throttled_error_carries_retry_after():
    # when
    response = exception_handler(Throttled(wait=7), {})

    # then
    assert response.status_code == 429
    assert response["Retry-After"] == "7"


def test_an_unexpected_error_is_a_json_500_without_a_trace():
    # when
    response = exception_handler(RuntimeError("secret internals"), {"view": None})

    # then
    assert response.status_code == 500
    assert response.data == {"detail": SERVER_ERROR}
