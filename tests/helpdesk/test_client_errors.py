"""Every client error is a 4xx: oversized bodies are 413, too deeply nested JSON is 400."""

import base64

import pytest
from django.conf import settings as django_settings

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
