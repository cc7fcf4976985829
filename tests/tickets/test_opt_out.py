"""Opt-out of mailings: preferences page, anonymous request, one-click unsubscribe."""

import re

import pytest
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Customer
from tests.factories import CustomerFactory
from tests.tickets.verification_helpers import (
    anonymous_lookups,
    deliver_outbox,
    html_part,
    link_token,
    owner_request,
    verification_mail,
)
from tickets import services
from tickets.models import ActionLog, Notification, Ticket
from tickets.services.anonymous import EMAIL_ON_RECORD_INVALID

pytestmark = pytest.mark.django_db

S = Ticket.Status
API_URL = "/api/v1/requests/opt-out/"
FORM_URL = "/requests/opt-out/"
PREFERENCES_URL = "/my/preferences/"
ONE_CLICK = "List-Unsubscribe=One-Click"


def opt_out_tickets(customer=None):
    tickets = Ticket.objects.filter(kind=Ticket.Kind.OPT_OUT)
    return tickets.filter(customer=customer) if customer is not None else tickets


def notifications(template, recipient=None):
    rows = Notification.objects.filter(template=template)
    return rows.filter(recipient=recipient) if recipient else rows


def preference_changes(customer):
    return [
        row.details
        for row in ActionLog.objects.filter(
            customer=customer, action="customer.mailing_preferences_changed"
        )
    ]


def one_click(token, client=None):
    client = client or Client(enforce_csrf_checks=True)
    return client.post(
        f"/unsubscribe/{token}/", ONE_CLICK, content_type="application/x-www-form-urlencoded"
    )


# --- preferences page ---


def test_preferences_page_turning_product_mailings_off_stops_them_and_confirms(alice_client, alice):
    # given Alice receives product mailings
    assert alice.product_mailings is True
    # when she unticks them on her preferences page
    response = alice_client.post(PREFERENCES_URL, {})
    # then they are off, an auto-resolved opt_out ticket records it, and she gets a confirmation
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.product_mailings is False
    ticket = opt_out_tickets(alice).get()
    assert ticket.status == S.RESOLVED
    assert ticket.channel == Ticket.Channel.PORTAL
    assert preference_changes(alice) == [
        {
            "how": "preferences",
            "changes": [{"list": "product_mailings", "old": True, "new": False}],
        }
    ]
    sent = deliver_outbox()
    assert [m.to for m in sent] == [["alice@example.test"]]
    assert "Product mailings" in sent[0].body
    assert "Product mailings" in html_part(sent[0])
    assert "https://help.exabytes.example/my/preferences/" in sent[0].body


def test_preferences_page_turning_product_mailings_back_on_is_audited_and_confirmed(
    alice_client, alice
):
    # given Alice opted out earlier
    Customer.objects.filter(pk=alice.pk).update(product_mailings=False)
    # when she ticks product mailings again
    response = alice_client.post(PREFERENCES_URL, {"product_mailings": "on"})
    # then they are on again, with an audit row and a confirmation, and no opt_out ticket
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert not opt_out_tickets(alice).exists()
    assert preference_changes(alice) == [
        {"how": "preferences", "changes": [{"list": "product_mailings", "old": False, "new": True}]}
    ]
    sent = deliver_outbox()
    assert [m.to for m in sent] == [["alice@example.test"]]
    assert "we will send you again" in sent[0].body
    assert "we will send you again" in html_part(sent[0])


def test_preferences_page_saving_the_same_choices_changes_nothing(alice_client, alice):
    # given Alice receives product mailings
    # when she saves the page with the box still ticked
    response = alice_client.post(PREFERENCES_URL, {"product_mailings": "on"}, follow=True)
    # then nothing is recorded or sent
    assert response.status_code == 200
    assert "Nothing changed" in response.content.decode()
    assert not opt_out_tickets().exists()
    assert not Notification.objects.exists()
    assert preference_changes(alice) == []


def test_preferences_page_shows_newsletters_only_to_resellers(client, alice, bob):
    # given Alice is not a reseller and Bob is
    # when each opens the preferences page
    client.force_login(alice.user)
    alice_page = client.get(PREFERENCES_URL).content.decode()
    client.force_login(bob.user)
    bob_page = client.get(PREFERENCES_URL).content.decode()
    # then only Bob sees the reseller newsletters
    assert 'name="product_mailings"' in alice_page
    assert 'name="reseller_newsletters"' not in alice_page
    assert 'name="reseller_newsletters"' in bob_page
    assert 'name="product_mailings"' in bob_page


def test_preferences_page_changes_both_reseller_lists_at_once(client, bob):
    # given Bob, a reseller, receives both mailings
    client.force_login(bob.user)
    # when he unticks both
    client.post(PREFERENCES_URL, {})
    # then both are off, recorded on one ticket, confirmed in one email
    bob.refresh_from_db()
    assert (bob.product_mailings, bob.reseller_newsletters) == (False, False)
    ticket = opt_out_tickets(bob).get()
    assert ticket.status == S.RESOLVED
    confirmation = notifications("opt_out_confirmed").get()
    assert confirmation.recipient == "bob@example.test"
    assert confirmation.context["lists"] == ["product_mailings", "reseller_newsletters"]


def test_a_preferences_page_opened_before_an_unsubscribe_does_not_undo_it(client, bob):
    # given Bob, a reseller receiving both mailings, opens his preferences page
    client.force_login(bob.user)
    page = client.get(PREFERENCES_URL).content.decode()
    shown = dict(re.findall(r'name="(shown_\w+)" value="(\w+)"', page))
    assert shown == {"shown_product_mailings": "True", "shown_reseller_newsletters": "True"}
    # and, before he saves it, the one-click link of a product mailing turns those off
    services.unsubscribe_by_token(
        token=services.unsubscribe_token(customer=bob, list_name="product_mailings")
    )

    # when he unticks the newsletters on the page he opened first and saves it
    client.post(PREFERENCES_URL, {"product_mailings": "on", **shown})

    # then the newsletters stop and the product mailings stay off: the page only showed them on
    bob.refresh_from_db()
    assert (bob.product_mailings, bob.reseller_newsletters) == (False, False)
    assert not notifications("opt_in_confirmed").exists()


def test_a_box_ticked_on_the_preferences_page_is_saved_whatever_it_showed_first(
    alice_client, alice
):
    # given Alice's product mailings were off when she opened the page
    Customer.objects.filter(pk=alice.pk).update(product_mailings=False)
    # when she ticks them and saves
    alice_client.post(
        PREFERENCES_URL, {"product_mailings": "on", "shown_product_mailings": "False"}
    )
    # then they are on again
    alice.refresh_from_db()
    assert alice.product_mailings is True


def test_preferences_page_ignores_newsletters_for_a_non_reseller(alice_client, alice):
    # given Alice is not a reseller
    # when a crafted form asks for reseller newsletters
    alice_client.post(PREFERENCES_URL, {"product_mailings": "on", "reseller_newsletters": "on"})
    # then she is not subscribed to them
    alice.refresh_from_db()
    assert alice.reseller_newsletters is False
    assert not Notification.objects.exists()


def test_preferences_page_is_a_404_for_staff_and_asks_anonymous_users_to_log_in(
    agent_client, client
):
    # given a staff member and an anonymous visitor
    # when each opens the preferences page
    staff = agent_client.get(PREFERENCES_URL)
    anonymous = Client().get(PREFERENCES_URL)
    # then staff get a 404 and the visitor is sent to the login page
    assert staff.status_code == 404
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous["Location"]


# --- opt_out_apply ---


def test_opt_out_apply_twice_records_both_tickets_but_confirms_once(alice):
    # given Alice receives product mailings
    # when she opts out twice
    first = services.opt_out_apply(
        customer=alice, lists=["product_mailings"], actor=alice, channel="portal", source="test"
    )
    second = services.opt_out_apply(
        customer=alice, lists=["product_mailings"], actor=alice, channel="portal", source="test"
    )
    # then both requests are recorded, but only the real change is confirmed and audited
    assert first.status == second.status == S.RESOLVED
    assert opt_out_tickets(alice).count() == 2
    assert notifications("opt_out_confirmed").count() == 1
    assert len(preference_changes(alice)) == 1


def test_opt_out_apply_of_newsletters_for_a_non_reseller_is_harmless(alice):
    # given Alice is not a reseller (newsletters are off)
    # when she asks to stop the newsletters
    ticket = services.opt_out_apply(
        customer=alice,
        lists=["reseller_newsletters"],
        actor=alice,
        channel="portal",
        source="test",
    )
    # then the request is recorded and nothing else changes
    alice.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert alice.product_mailings is True
    assert not Notification.objects.exists()


def test_opt_out_apply_refuses_an_unknown_list(alice):
    # given a list name that does not exist
    # when it is asked for
    with pytest.raises(ValidationError) as excinfo:
        services.opt_out_apply(
            customer=alice, lists=["is_staff"], actor=alice, channel="portal", source="test"
        )
    # then nothing is recorded
    assert "lists" in excinfo.value.message_dict
    assert not opt_out_tickets().exists()


# --- anonymous request (API and portal form) ---


def test_api_opt_out_for_the_email_on_record_applies_once_the_link_is_confirmed(alice):
    # given Alice's address on record
    # when someone asks the API to stop her product mailings
    response = APIClient().post(
        API_URL, {"email": "ALICE@example.test", "lists": ["product_mailings"]}, format="json"
    )
    # then a link goes to the address on record and nothing changes yet
    assert response.status_code == 202
    assert set(response.json()) == {"reference"}
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    assert ticket.status == S.AWAITING_VERIFICATION
    assert not notifications("verify_request").exists()  # the worker looks the address up
    assert anonymous_lookups() == ["link_sent"]
    assert ticket.anonymous_request.lists == ["product_mailings"]  # what confirming applies
    verify = notifications("verify_request").get()
    assert verify.recipient == "alice@example.test"
    alice.refresh_from_db()
    assert alice.product_mailings is True
    # when the link is confirmed
    services.verification_confirm(token=link_token(verify), client_key="1.2.3.4", actor="anonymous")
    # then the mailings stop, the ticket is resolved and the record address gets a confirmation
    alice.refresh_from_db()
    ticket.refresh_from_db()
    assert alice.product_mailings is False
    assert ticket.status == S.RESOLVED
    assert notifications("opt_out_confirmed", "alice@example.test").count() == 1


def test_api_opt_out_for_an_unknown_email_answers_the_same_and_sends_nothing(db):
    # given an address nobody has on record
    # when someone asks the API to stop its mailings
    response = APIClient().post(
        API_URL, {"email": "nobody@example.test", "lists": ["product_mailings"]}, format="json"
    )
    # then the answer looks the same and nothing is sent
    assert response.status_code == 202
    assert set(response.json()) == {"reference"}
    assert Ticket.objects.get(reference=response.json()["reference"]).customer is None
    assert not Notification.objects.exists()


def test_api_opt_out_refuses_an_unknown_list_with_a_400(db):
    # given a request naming a list that does not exist
    # when it is posted
    response = APIClient().post(
        API_URL, {"email": "a@example.test", "lists": ["everything"]}, format="json"
    )
    # then it is a 400 naming the field, and no ticket is made
    assert response.status_code == 400
    assert "lists" in response.json()
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("email", ["", "no-at-sign", "a\x07b@example.test", "a@" + "b" * 253])
def test_anonymous_opt_out_and_change_requests_refuse_the_same_addresses(db, email):
    # given an address that cannot be one on record
    # when an opt-out and a change of details name it
    with pytest.raises(ValidationError) as opt_out:
        services.request_opt_out(
            email=email,
            lists=["product_mailings"],
            client_key="1",
            actor="anonymous",
            channel="api",
        )
    with pytest.raises(ValidationError) as modify:
        services.request_modify(
            email=email,
            customer=None,
            changes={"city": "Ipoh"},
            note="",
            client_key="2",
            actor="anonymous",
        )

    # then both refuse it on the email field, and keep nothing
    assert opt_out.value.message_dict == {"email": [EMAIL_ON_RECORD_INVALID]}
    assert modify.value.message_dict == {"email": [EMAIL_ON_RECORD_INVALID]}
    assert not Ticket.objects.exists()


@pytest.mark.usefixtures("rate_window_start")
def test_api_opt_out_past_the_per_email_limit_is_coalesced_not_refused(alice):
    # given the per-email limit (5 links an hour) used up by requests from five clients
    api = APIClient()
    body = {"email": "alice@example.test", "lists": ["product_mailings"]}
    for index in range(5):
        api.post(API_URL, body, format="json", REMOTE_ADDR=f"10.0.0.{index}")
    anonymous_lookups()
    # when a sixth request comes, from yet another client
    response = api.post(API_URL, body, format="json", REMOTE_ADDR="10.0.0.99")
    # then it gets the same 202 (no 429 naming the address) and no sixth link is mailed
    assert response.status_code == 202 and "Retry-After" not in response
    assert anonymous_lookups() == ["coalesced"]
    assert notifications("verify_request", "alice@example.test").count() == 5
    sixth = Ticket.objects.get(reference=response.json()["reference"])
    assert sixth.anonymous_request.coalesced_with == opt_out_tickets(alice).first()


@pytest.mark.usefixtures("rate_window_start")
def test_api_opt_out_is_still_limited_per_client_with_retry_after(alice, settings):
    # given the per-client limit
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}
    api = APIClient()
    body = {"email": "nobody@example.test", "lists": ["product_mailings"]}
    statuses = [api.post(API_URL, body, format="json").status_code for _ in range(3)]
    # then the client, not the address, is refused, with Retry-After
    response = api.post(API_URL, body, format="json")
    assert statuses == [202, 202, 429]
    assert response.status_code == 429 and int(response["Retry-After"]) > 0


def test_portal_opt_out_form_shows_the_done_page_with_the_reference(client, alice):
    # given the anonymous opt-out form
    assert client.get(FORM_URL).status_code == 200
    # when Alice's address is given with product mailings
    response = client.post(
        FORM_URL, {"email": "alice@example.test", "lists": ["product_mailings"]}, follow=True
    )
    # then the done page shows the reference and a link went to the address on record
    assert response.status_code == 200
    anonymous_lookups()
    ticket = opt_out_tickets(alice).get()
    assert ticket.reference in response.content.decode()
    assert notifications("verify_request", "alice@example.test").exists()


def test_portal_opt_out_form_without_a_list_is_refused(client, alice):
    # given the anonymous opt-out form
    # when no list is chosen
    response = client.post(FORM_URL, {"email": "alice@example.test"})
    # then the form comes back with an error and nothing is recorded
    assert response.status_code == 400
    assert not Ticket.objects.exists()


# --- one-click unsubscribe ---


def test_one_click_post_without_cookies_or_csrf_token_unsubscribes(alice):
    # given the unsubscribe link of Alice's product mailings
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")
    # when a mail provider posts the RFC 8058 one-click body, with no cookie and no CSRF token
    response = one_click(token)
    # then Alice is unsubscribed, with an auto-resolved ticket and a confirmation on record
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.product_mailings is False
    ticket = opt_out_tickets(alice).get()
    assert ticket.status == S.RESOLVED
    assert ticket.channel == Ticket.Channel.EMAIL
    assert notifications("opt_out_confirmed", "alice@example.test").count() == 1


def test_one_click_twice_is_harmless(alice):
    # given Alice unsubscribed with one click
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")
    one_click(token)
    # when the same link is posted again
    response = one_click(token)
    # then it still answers 200, with no second ticket and no second confirmation
    assert response.status_code == 200
    assert "already unsubscribed" in response.content.decode()
    assert opt_out_tickets(alice).count() == 1
    assert notifications("opt_out_confirmed").count() == 1


def test_unsubscribe_link_get_shows_a_button_and_changes_nothing(client, alice):
    # given the unsubscribe link of Alice's product mailings
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")
    # when it is opened (as a mail scanner would)
    response = client.get(f"/unsubscribe/{token}/")
    # then a confirm button is shown and nothing changes
    assert response.status_code == 200
    assert f'action="/unsubscribe/{token}/"' in response.content.decode()
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert not Ticket.objects.exists()


def test_an_unsubscribe_link_signed_before_a_key_rotation_still_works(alice, settings):
    # given a link mailed while the old key was in use
    settings.SECRET_KEY = "old-key-" + "o" * 50
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")

    # when the key is rotated, with the old one kept as a fallback
    settings.SECRET_KEY = "new-key-" + "n" * 50
    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "o" * 50]

    # then the old link still opens and unsubscribes, and new links use the new key
    assert Client().get(f"/unsubscribe/{token}/").status_code == 200
    assert one_click(token).status_code == 200
    alice.refresh_from_db()
    assert alice.product_mailings is False
    fresh = services.unsubscribe_token(customer=alice, list_name="product_mailings")
    settings.SECRET_KEY_FALLBACKS = []
    assert services.unsubscribe_token_read(token=fresh)[0] == alice


def test_an_unsubscribe_link_signed_with_a_retired_key_is_refused(alice, settings):
    settings.SECRET_KEY = "old-key-" + "o" * 50
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")
    settings.SECRET_KEY = "new-key-" + "n" * 50
    settings.SECRET_KEY_FALLBACKS = []

    assert one_click(token).status_code == 400
    alice.refresh_from_db()
    assert alice.product_mailings is True


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda alice, bob: "not-a-token", id="garbage"),
        pytest.param(
            lambda alice, bob: signing.dumps(
                [alice.number, "product_mailings"], salt="another.purpose"
            ),
            id="other-salt",
        ),
        pytest.param(
            lambda alice, bob: signing.dumps(
                [alice.number, "product_mailings"], key="x" * 50, salt="tickets.unsubscribe"
            ),
            id="other-key",
        ),
    ],
)
def test_a_forged_unsubscribe_token_is_refused(alice, bob, forge):
    # given a token we did not sign
    token = forge(alice, bob)
    # when it is posted and opened
    posted = one_click(token)
    opened = Client().get(f"/unsubscribe/{token}/")
    # then both are refused and nothing changes
    assert posted.status_code == 400
    assert opened.status_code == 400
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert not Ticket.objects.exists()


def test_a_token_altered_to_another_customer_or_list_is_refused(alice, bob):
    # given Bob's own signed link
    bob_token = services.unsubscribe_token(customer=bob, list_name="reseller_newsletters")
    _payload, timestamp, signature = bob_token.split(":")
    # when its payload is swapped for Alice's customer number, or for another list
    other_customer = signing.b64_encode(
        f'["{alice.number}","reseller_newsletters"]'.encode()
    ).decode()
    other_list = signing.b64_encode(f'["{bob.number}","product_mailings"]'.encode()).decode()
    responses = [
        one_click(f"{other_customer}:{timestamp}:{signature}"),
        one_click(f"{other_list}:{timestamp}:{signature}"),
    ]
    # then both are refused and nobody's mailings change
    assert [r.status_code for r in responses] == [400, 400]
    bob.refresh_from_db()
    alice.refresh_from_db()
    assert (bob.product_mailings, bob.reseller_newsletters) == (True, True)
    assert alice.product_mailings is True
    assert not Ticket.objects.exists()


def test_an_unsubscribe_link_mailed_to_the_old_address_is_refused_after_an_email_change(
    alice, supervisor
):
    # given the unsubscribe link of a mailing Alice's old address received
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")

    # when her email changes (the old mailbox is no longer hers, maybe why it changed)
    ticket = owner_request(alice, {"email": "alice.new@example.test"})
    new_link = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=new_link, client_key="10.0.0.3", actor="anonymous")
    services.ticket_approve(ticket=ticket, actor=supervisor)

    # then whoever reads the old mailbox cannot change her preferences with it
    assert one_click(token).status_code == 400
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert not opt_out_tickets(alice).exists()
    # and a link of a mailing to her new address works
    assert one_click(services.unsubscribe_token(customer=alice, list_name="product_mailings"))
    alice.refresh_from_db()
    assert alice.product_mailings is False


def test_a_token_for_a_customer_who_no_longer_exists_is_refused(db):
    # given a link for a customer whose record is gone
    customer = CustomerFactory()
    token = services.unsubscribe_token(customer=customer, list_name="product_mailings")
    Customer.objects.filter(pk=customer.pk).delete()
    # when it is posted
    response = one_click(token)
    # then it is refused
    assert response.status_code == 400
    assert not Ticket.objects.exists()


def test_confirmation_goes_to_the_email_on_record_only(alice):
    # given Alice's unsubscribe link
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")
    # when it is used
    one_click(token)
    sent = deliver_outbox()
    # then the only email is the confirmation to her address on record
    assert [m.to for m in sent] == [["alice@example.test"]]
    assert len(mail.outbox) == 1
