"""Every client error is a 4xx: oversized bodies are 413, too deeply nested JSON is 400."""

import base64

import pytest
from django.conf import settings as django_settings

from helpdesk.parsers import JSON_SURROGATE

pytestmark = pytest.mark.django_db

SECRET = "hookuser:hookpass"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
DEEP = "[" * 100_000 + "]" * 100_000
JSON_ENDPOINTS = [
    "/api/v1/requests/modify/",
    "/api/v1/requests/opt-out/",
    "/api/v1/requests/password-resend/",
    "/api/v1/verify/",
    "/api/v1/auth/token/",
]
WEBHOOKS = ["/anymail/postmark/inbound/", "/anymail/postmark/tracking/"]
PORTAL_FORMS = [
    "/requests/new/",
    "/requests/password/",
    "/requests/modify/",
    "/requests/opt-out/",
    "/accounts/login/",
    "/accounts/password-reset/",
    "/admin/login/",
]


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def _oversized() -> str:
    return '{"note": "' + "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + '"}'


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_an_oversized_json_body_is_a_413_with_a_json_error(client, path):
    response = client.post(path, _oversized(), content_type="application/json")

    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_nested_100000_deep_is_a_400(client, path):
    response = client.post(path, DEEP, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_nested_a_few_hundred_deep_is_a_400_not_a_500(client, path):
    # given JSON deep enough to run a recursive walk of it out of Python's stack, though not
    # too deep for the decoder
    body = "[" * 400 + "]" * 400

    # when it is posted to an endpoint anyone may call
    response = client.post(path, body, content_type="application/json")

    # then it is refused as any JSON of the wrong shape is
    assert response.status_code == 400
    assert response.json()


@pytest.mark.parametrize("path", WEBHOOKS)
def test_json_nested_100000_deep_to_a_webhook_is_a_400(client, path):
    response = client.post(path, DEEP, content_type="application/json", **AUTH)

    assert response.status_code == 400


def test_an_oversized_tracking_webhook_body_is_a_413(client):
    response = client.post(
        "/anymail/postmark/tracking/", _oversized(), content_type="application/json", **AUTH
    )

    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_an_inbound_webhook_body_past_its_own_limit_is_a_413_before_it_is_read(client):
    response = client.post(
        "/anymail/postmark/inbound/",
        "{}",
        content_type="application/json",
        CONTENT_LENGTH=str(django_settings.INBOUND_MAX_BODY_BYTES + 1),
        **AUTH,
    )

    assert response.status_code == 413


def test_an_inbound_email_with_a_large_attachment_is_still_read(client):
    # Above the 2.5 MB of every other URL, below the inbound webhook's own limit.
    body = '{"x": "' + "a" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + '"}'

    response = client.post(
        "/anymail/postmark/inbound/", body, content_type="application/json", **AUTH
    )

    assert response.status_code == 200


@pytest.mark.parametrize("path", PORTAL_FORMS)
def test_an_oversized_portal_form_is_a_413_page(client, path):
    size = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1

    response = client.post(path, {"subject": "x" * size, "message": "hello"})

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert "larger than the help desk accepts" in response.content.decode()


# --- NUL characters: PostgreSQL stores none, so they are refused before any query ---


def test_a_nul_in_a_pages_path_is_a_404(client, agent, alice):
    staff = client.__class__()
    staff.force_login(agent)
    customer = client.__class__()
    customer.force_login(alice.user)

    for who, path in (
        (staff, "/staff/tickets/%00/"),
        (staff, "/staff/customers/%00/"),
        (customer, "/my/tickets/%00/"),
        (client, "/verify/%00/"),
    ):
        response = who.get(path)
        assert response.status_code == 404, path
        assert "Page not found" in response.content.decode()


def test_a_nul_in_a_value_a_staff_form_looks_up_finds_nothing(agent_client, alice):
    from tests.factories import TicketFactory

    ticket = TicketFactory(customer=alice)

    merge = agent_client.post(
        f"/staff/tickets/{ticket.reference}/merge/", {"version": ticket.version, "into": "HD-\x00"}
    )
    bulk = agent_client.post("/staff/bulk/", {"ticket": ["HD-\x00"], "action": "resolve"})
    assign = agent_client.post(
        "/staff/bulk/", {"ticket": [ticket.reference], "action": "assign:a\x00b"}
    )

    assert merge.status_code == 400
    assert "There is no ticket" in merge.content.decode()
    assert bulk.status_code == assign.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.merged_into_id, ticket.assignee_id, ticket.version) == (None, None, 1)


def test_a_nul_in_api_json_is_a_400_naming_it(agent, alice):
    from django.test import Client

    from tests.factories import TicketFactory, api_key_for

    ticket = TicketFactory(customer=alice)
    api = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(agent)}")

    response = api.post(
        f"/api/v1/tickets/{ticket.reference}/assign/",
        '{"assignee": "\\u0000"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "The JSON holds a NUL character (\\u0000)."}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # a field named in the error: the key of a change
        (
            "/api/v1/requests/modify/",
            '{"email": "a@example.test", "changes": {"ci\\ud800ty": "x"}}',
        ),
        # a choice repeated in the error
        ("/api/v1/requests/opt-out/", '{"email": "a@example.test", "lists": ["\\udc80"]}'),
        ("/api/v1/requests/password-resend/", '{"domain": "a.test", "\\ud83d": 1}'),
    ],
)
def test_a_lone_surrogate_in_api_json_is_a_400_naming_it(client, path, body):
    # when JSON escaping half a UTF-16 surrogate pair, which no UTF-8 text can hold, is posted
    response = client.post(path, body, content_type="application/json")

    # then it is refused before any field repeats it in an error or a query is given it
    assert response.status_code == 400
    assert response.json() == {"detail": JSON_SURROGATE}


def test_a_lone_surrogate_in_a_customers_change_is_a_400(alice):
    from django.test import Client

    from tests.factories import api_key_for

    api = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")

    response = api.post(
        "/api/v1/requests/modify/", '{"changes": {"\\udfff": "x"}}', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {"detail": JSON_SURROGATE}


@pytest.mark.parametrize(
    "headers",
    [
        [("Message-ID", "<a\x00b@mail.example>")],
        [("Auto-Submitted", "auto-replied"), ("Message-ID", "<a\x00b@mail.example>")],
    ],
    ids=["new ticket", "ignored auto-reply"],
)
def test_inbound_mail_with_a_nul_in_its_headers_is_read_not_a_500(client, headers):
    from tests.tickets.test_inbound import payload, post
    from tickets.models import ActionLog

    response = post(client, payload(headers=headers, message_id=""))

    assert response.status_code == 200
    assert ActionLog.objects.filter(action__startswith="inbound.").exists()


def test_inbound_mail_with_a_nul_in_an_attachment_type_is_read_not_a_500(client):
    from tests.tickets.test_inbound import payload, post
    from tickets.models import Ticket

    response = post(client, payload(attachments=[("a.txt", "text/plain\x00", b"hello")]))

    assert response.status_code == 200
    assert Ticket.objects.count() == 1


def test_a_tracking_event_with_a_nul_is_read_not_a_500():
    from tickets import services

    outcome = services.notification_tracking_event(
        esp_name="postmark",
        event_type="bounced",
        message_id="a\x00b",
        recipient="someone\x00@example.test",
        metadata={},
        reject_reason="",
        description="550 no such user\x00",
        esp_event_type="HardBounce",
    )

    assert outcome == "unmatched"
