"""Error pages with DEBUG=0: the site's layout with a way back for people, JSON for the API."""

import types

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.test import Client
from django.urls import include, path

from helpdesk.exceptions import ApplicationError, RateLimited, TransitionNotAllowed


def _boom(request):
    raise RuntimeError("a bug")


def _forbidden(request):
    raise PermissionDenied


def _suspicious(request):
    raise SuspiciousOperation("odd")


def _limited(request):
    raise RateLimited("too many", retry_after=150)


def _refused(request):
    raise ApplicationError("This account is frozen <b>now</b>.")


def _conflict(request):
    raise TransitionNotAllowed("This ticket is closed.")


class _Gone(ApplicationError):
    status_code = 410


def _gone(request):
    raise _Gone("This link has expired.")


@pytest.fixture
def failing_urls(settings):
    """The real URLs plus views that fail in each way, under the real handlers."""
    urlconf = types.ModuleType("failing_urls")
    urlconf.urlpatterns = [
        path("boom/", _boom),
        path("api/v1/boom/", _boom),
        path("forbidden/", _forbidden),
        path("suspicious/", _suspicious),
        path("limited/", _limited),
        path("refused/", _refused),
        path("conflict/", _conflict),
        path("gone/", _gone),
        path("api/v1/refused/", _refused),
        path("", include("helpdesk.urls")),
    ]
    urlconf.handler400 = "helpdesk.errors.bad_request"
    urlconf.handler403 = "helpdesk.errors.permission_denied"
    urlconf.handler404 = "helpdesk.errors.page_not_found"
    urlconf.handler500 = "helpdesk.errors.server_error"
    settings.ROOT_URLCONF = urlconf
    assert settings.DEBUG is False
    return Client(raise_request_exception=False)


def _page(response) -> str:
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'href="/static/css/app.css"' in html  # the site's layout
    assert '<a href="/">Back to the help desk</a>' in html  # a way back
    return html


@pytest.mark.parametrize(
    ("url", "status", "heading"),
    [
        ("/suspicious/", 400, "Bad request"),
        ("/forbidden/", 403, "Not allowed"),
        ("/no-such-page/", 404, "Page not found"),
        ("/limited/", 429, "Too many requests"),
        ("/boom/", 500, "Something went wrong"),
    ],
)
def test_each_error_is_a_page_in_the_sites_style_with_a_way_back(
    db, failing_urls, url, status, heading
):
    response = failing_urls.get(url)

    assert response.status_code == status
    html = _page(response)
    assert f"<h1>{heading}</h1>" in html
    assert "Traceback" not in html and "a bug" not in html


@pytest.mark.usefixtures("rate_window_start")
def test_429_page_says_when_to_try_again(db, failing_urls):
    response = failing_urls.get("/limited/")

    assert response["Retry-After"] == "150"
    assert "You can try again in about 3 minutes." in response.content.decode()


def test_a_host_we_do_not_serve_is_a_400_page(db, failing_urls):
    response = failing_urls.get("/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert "<h1>Bad request</h1>" in _page(response)


def test_an_expired_form_is_a_403_page_that_says_what_to_do(db):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/requests/password/", {"domain": "alice-shop.test"})

    assert response.status_code == 403
    assert "This form has expired or was sent from another page." in _page(response)


def test_error_pages_follow_the_chosen_language(db, failing_urls):
    response = failing_urls.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="ms")

    assert response.status_code == 404
    assert '<html lang="ms">' in response.content.decode()


def test_the_500_page_renders_while_the_database_is_what_failed(failing_urls, settings):
    # No `db` fixture: the page must not need the database (or the session) to render.
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "messages" not in m]

    response = failing_urls.get("/boom/")

    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in _page(response)


def test_the_api_keeps_json_errors(db, failing_urls):
    missing = failing_urls.get("/api/v1/no-such-endpoint/")
    broken = failing_urls.get("/api/v1/boom/")

    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert broken.status_code == 500
    assert broken["Content-Type"] == "application/json"
    assert broken.json() == {
        "detail": "An error on our side stopped this request. It has been recorded; please try "
        "again in a few minutes."
    }


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/refused/", 400, "This account is frozen &lt;b&gt;now&lt;/b&gt;."),
        ("/conflict/", 409, "This ticket is closed."),
        ("/gone/", 410, "This link has expired."),
    ],
)
def test_a_refusal_no_view_caught_is_its_4xx_page_with_its_message(
    db, failing_urls, url, status, message
):
    response = failing_urls.get(url)

    assert response.status_code == status
    html = _page(response)
    assert message in html
    assert "<b>now</b>" not in html


def test_a_refusal_no_api_view_caught_is_json(db, failing_urls):
    response = failing_urls.get("/api/v1/refused/")

    assert response.status_code == 400
    assert response.json() == {"detail": "This account is frozen <b>now</b>."}
