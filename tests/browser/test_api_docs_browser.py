"""The API docs page in a real browser: Swagger UI works under our Content-Security-Policy."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_from_our_own_origin_with_no_csp_violation(live_server, page):
    # given a browser that reports every console error and every request it makes
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # when
    page.goto(f"{live_server.url}/api/v1/docs/")

    # then Swagger UI has read our schema and lists the operations
    expect(page.get_by_text("Exabytes Help Desk API").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/tickets/").first).to_be_visible()
    assert errors == []
    assert requested
    assert all(url.startswith(live_server.url) for url in requested), requested
