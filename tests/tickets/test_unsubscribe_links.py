"""Unsubscribe links are bound to the subscription they were sent for and age out."""

import datetime as dt

import pytest
import time_machine
from django.core import signing

from tickets import services

pytestmark = pytest.mark.django_db


def _link(customer) -> str:
    token = services.unsubscribe_token(customer=customer, list_name="product_mailings")
    return f"/unsubscribe/{token}/"


def test_re_subscribing_invalidates_the_old_links(client, alice):
    # given a link from a mailing, used once
    old = _link(alice)
    assert client.post(old).status_code == 303
    alice.refresh_from_db()
    assert alice.product_mailings is False
    # when Alice subscribes again
    services.preferences_update(
        customer=alice, product_mailings=True, reseller_newsletters=False, actor=alice
    )
    # then the old link no longer unsubscribes her, and a new one does
    assert client.get(old).status_code == 400
    assert client.post(old).status_code == 400
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert client.post(_link(alice)).status_code == 303
    alice.refresh_from_db()
    assert alice.product_mailings is False


def test_a_link_older_than_a_year_shows_the_preferences_page_instead(client, alice):
    with time_machine.travel(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), tick=False):
        link = _link(alice)
    with time_machine.travel(dt.datetime(2026, 1, 3, tzinfo=dt.UTC), tick=False):
        get = client.get(link)
        post = client.post(link)

    assert get.status_code == post.status_code == 302
    assert get["Location"] == "/my/preferences/"
    alice.refresh_from_db()
    assert alice.product_mailings is True


def test_a_link_eleven_months_old_still_works(client, alice):
    with time_machine.travel(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), tick=False):
        link = _link(alice)
    with time_machine.travel(dt.datetime(2025, 12, 1, tzinfo=dt.UTC), tick=False):
        assert client.post(link).status_code == 303

    alice.refresh_from_db()
    assert alice.product_mailings is False


def test_a_link_from_before_versions_is_read_as_the_first_subscription(client, alice):
    token = signing.dumps([alice.number, "product_mailings"], salt="tickets.unsubscribe")

    assert client.post(f"/unsubscribe/{token}/").status_code == 303
