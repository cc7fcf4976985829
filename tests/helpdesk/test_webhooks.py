"""Only the configured ESP's webhooks are mounted; no /anymail/ request is ever a 500."""

import base64
import re
import types

import pytest
from anymail.urls import urlpatterns as anymail_urlpatterns
from django.test import Client
from django.urls import URLPattern, include, path

from helpdesk.checks import webhooks_configured
from helpdesk.webhooks import ESP_NOT_CONFIGURED, webhook_problems, webhook_urlpatterns

SECRET = "esp:hook-secret"
ESPS = sorted(
    {(p.name or "").split("_webhook")[0].rsplit("_", 1)[0] for p in anymail_urlpatterns} - {""}
)


def _paths(patterns) -> list[str]:
    """The concrete /anymail/ paths of URL patterns (regex ones with their optional part)."""
    paths = []
    for pattern in patterns:
        route = str(pattern.pattern)
        if route.startswith("^"):  # mailgun's ^mailgun/inbound(_mime)?/$
            paths += [re.sub(r"\(_mime\)\?", "", route), route.replace("(_mime)?", "_mime")]
        else:
            paths.append(route)
    return [f"/anymail/{route.strip('^$')}" for route in paths]


ALL_PATHS = _paths(p for p in anymail_urlpatterns if isinstance(p, URLPattern))
BODIES = [
    (b"", "application/json"),
    (b"{not json", "application/json"),
    (b"[]", "application/json"),
    (b'{"RecordType": "Delivery", "MessageID": 5}', "application/json"),
    (b'{"Type": "SubscriptionConfirmation"}', "text/plain"),
    (b"mandrill_events=%5B%7B%22x%22%3A1%7D%5D", "application/x-www-form-urlencoded"),
    (b"\xff\xfe\x00garbage", "application/octet-stream"),
]
AUTHS = [
    {},
    {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"esp:wrong").decode()},
    {"HTTP_AUTHORIZATION": "Basic !!!not-base64"},
    {"HTTP_AUTHORIZATION": "Bearer something"},
]


@pytest.fixture
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def test_only_the_configured_esps_urls_are_mounted(db, webhook_secret):
    client = Client(raise_request_exception=False)
    assert len(ALL_PATHS) > 20  # anymail's whole list, every ESP

    for url in ALL_PATHS:
        for body, content_type in BODIES:
            response = client.post(url, data=body, content_type=content_type)
            expected = 400 if url.startswith("/anymail/postmark/") else 404
            assert response.status_code == expected, (url, body, response.status_code)
        assert client.get(url).status_code in {404, 405}, url


# What each ESP's webhook views need besides the basic-auth secret (any value will do here).
ESP_WEBHOOK_SETTINGS = {
    "brevo": {"BREVO_API_KEY": "k"},
    "mailersend": {"MAILERSEND_INBOUND_SECRET": "s", "MAILERSEND_SIGNING_SECRET": "s"},
    "mailgun": {"MAILGUN_WEBHOOK_SIGNING_KEY": "k"},
    "mailtrap": {"MAILTRAP_API_TOKEN": "t"},
    "mandrill": {"MANDRILL_WEBHOOK_KEY": "k"},
    "postal": {"POSTAL_WEBHOOK_KEY": "k"},
    "sendinblue": {"SENDINBLUE_API_KEY": "k"},
    "unisender_go": {"UNISENDER_GO_API_KEY": "k"},
}


def _mount(settings, esp: str) -> None:
    urlconf = types.ModuleType(f"{esp}_urls")
    urlconf.urlpatterns = [path("anymail/", include((webhook_urlpatterns(esp), "anymail")))]
    urlconf.handler400 = "helpdesk.errors.bad_request"  # JSON under /anymail/, as in production
    settings.ROOT_URLCONF = urlconf


# Their views need a package we do not install (boto3, svix): never mountable as they stand.
NEEDS_PACKAGE = {"amazon_ses", "resend"}


@pytest.mark.parametrize("esp", sorted(set(ESPS) - NEEDS_PACKAGE))
def test_each_esp_when_mounted_answers_4xx_without_the_secret(db, settings, webhook_secret, esp):
    settings.ANYMAIL = {**settings.ANYMAIL, **ESP_WEBHOOK_SETTINGS.get(esp, {})}
    assert webhook_problems(esp) == []
    _mount(settings, esp)
    client = Client(raise_request_exception=False)
    paths = _paths(webhook_urlpatterns(esp))

    for url in paths:
        for auth in AUTHS:
            for body, content_type in BODIES:
                response = client.post(url, data=body, content_type=content_type, **auth)
                assert 400 <= response.status_code < 500, (url, auth, body, response.status_code)
        # Anything else under /anymail/ is not there.
        assert client.post("/anymail/postmark-typo/tracking/").status_code == 404


def test_an_unknown_esp_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="ANYMAIL_ESP='postmrak' has no webhooks"):
        webhook_urlpatterns("postmrak")


@pytest.mark.parametrize("esp", ["mailgun", *sorted(NEEDS_PACKAGE)])
def test_an_esp_mounted_without_its_settings_is_reported_and_answers_503(
    db, settings, webhook_secret, esp
):
    _mount(settings, esp)
    settings.ANYMAIL_ESP = esp

    problems = webhook_problems(esp)
    errors = [e.msg for e in webhooks_configured()]
    client = Client(raise_request_exception=False)
    responses = [
        client.post(url, data=b"{}", content_type="application/json")
        for url in _paths(webhook_urlpatterns(esp))
    ]

    assert problems and problems == errors
    assert problems[0].startswith(f"ANYMAIL_ESP={esp}: ")
    assert {r.status_code for r in responses} <= {400, 503}
    refused = [r for r in responses if r.status_code == 503]
    assert refused and all(r.content.decode() == ESP_NOT_CONFIGURED for r in refused)
