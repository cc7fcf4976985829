"""Unsubscribe links are bound to the subscription they were sent for and age out."""

import datetime as dt
import threading

import pytest
import time_machine
from django.core import signing
from django.test import Client

from accounts.models import Customer
from tests.markers import postgresql_only
from tests.threads import meet_after, run_at_once
from tickets import services
from tickets.models import Notification, Ticket
from tickets.services import opt_out


def _link(customer) -> str:
    token = services.unsubscribe_token(customer=customer, list_name="product_mailings")
    return f"/unsubscribe/{token}/"


@pytest.mark.django_db
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


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_a_link_eleven_months_old_still_works(client, alice):
    with time_machine.travel(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), tick=False):
        link = _link(alice)
    with time_machine.travel(dt.datetime(2025, 12, 1, tzinfo=dt.UTC), tick=False):
        assert client.post(link).status_code == 303

    alice.refresh_from_db()
    assert alice.product_mailings is False


@pytest.mark.django_db
def test_a_link_from_before_versions_is_read_as_the_first_subscription(client, alice):
    token = signing.dumps([alice.number, "product_mailings"], salt="tickets.unsubscribe")

    assert client.post(f"/unsubscribe/{token}/").status_code == 303


@postgresql_only("two transactions at once, each on its own connection")
@pytest.mark.django_db(transaction=True)
def test_an_old_link_clicked_while_she_subscribes_again_does_not_undo_it(alice, monkeypatch):
    # given a used link, and its click read (still the current subscription) just before Alice's
    # new subscription commits, and locking her record only after it did
    old = _link(alice)
    services.preferences_update(
        customer=alice, product_mailings=False, reseller_newsletters=False, actor=alice
    )
    read, subscribed = threading.Event(), threading.Event()
    token_read = opt_out.unsubscribe_token_read

    def read_then_wait(**kwargs):
        found = token_read(**kwargs)
        read.set()
        subscribed.wait(5)
        return found

    monkeypatch.setattr(opt_out, "unsubscribe_token_read", read_then_wait)
    answers: list[int] = []

    def click() -> None:
        answers.append(Client().post(old).status_code)

    def subscribe() -> None:
        read.wait(5)
        services.preferences_update(
            customer=Customer.objects.get(pk=alice.pk),
            product_mailings=True,
            reseller_newsletters=False,
            actor=alice,
        )
        subscribed.set()

    # when both run at once
    run_at_once(lambda f: f(), [(click,), (subscribe,)])

    # then the link, ended by the new subscription, is refused and she stays subscribed
    assert answers == [400]
    alice.refresh_from_db()
    assert alice.product_mailings is True


@postgresql_only("two transactions at once, each on its own connection")
@pytest.mark.django_db(transaction=True)
def test_one_link_posted_twice_at_once_stops_the_mailing_once(alice, monkeypatch):
    # given a mailing's link, posted at the same moment by the mail provider's one-click and by
    # Alice's own click, both having read it before either locks her record
    link = _link(alice)
    meet_after(monkeypatch, opt_out, "unsubscribe_token_read")
    answers: list[int] = []

    def click() -> None:
        answers.append(Client().post(link, {"List-Unsubscribe": "One-Click"}).status_code)

    # when both run at once
    run_at_once(click, [(), ()])

    # then both are answered, and one opt-out is recorded and confirmed, once
    assert answers == [200, 200]
    alice.refresh_from_db()
    assert alice.product_mailings is False
    assert Ticket.objects.filter(customer=alice, kind=Ticket.Kind.OPT_OUT).count() == 1
    assert Notification.objects.filter(template="opt_out_confirmed").count() == 1
