"""Input a person types as they usually write it is cleaned up, not refused."""

import pytest
from django.core.exceptions import ValidationError

from tests.tickets.resend_helpers import API_URL, PORTAL_URL
from tickets import services
from tickets.models import FieldChange, Ticket

pytestmark = pytest.mark.django_db


def owner_phone_request(customer, phone):
    return services.request_modify(
        email=None,
        customer=customer,
        changes={"phone": phone},
        note="",
        client_key="10.0.0.1",
        actor=customer,
        channel=Ticket.Channel.PORTAL,
    )


# --- phone numbers ---


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+60 3-1234 5678", "+60312345678"),  # the example our own error message gives
        ("03-1234 5678", "+60312345678"),
        ("(03) 2345 6789", "+60323456789"),
        ("+60 12-345 6789", "+60123456789"),
        ("+1 202 555 0143", "+12025550143"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_a_phone_number_written_the_usual_way_is_accepted(bob, settings, typed, stored):
    settings.MODIFY_AUTO_APPLY_LOW_RISK = False
    ticket = owner_phone_request(bob, typed)

    assert FieldChange.objects.get(ticket=ticket, field="phone").new_value == stored


@pytest.mark.parametrize(
    "typed",
    ["1234", "+60 3", "0000000000", "call me", "+999 1234 5678", "6" * 25, "+60 3-1234 5678 x"],
)
def test_a_phone_number_that_cannot_be_one_is_refused(alice, typed):
    with pytest.raises(ValidationError) as info:
        owner_phone_request(alice, typed)

    assert "+60 3-1234 5678" in str(info.value)


# --- domain names ---


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://www.alice-shop.test/", "www.alice-shop.test"),
        ("http://alice-shop.test/login?x=1#top", "alice-shop.test"),
        ("https://admin@alice-shop.test:8443/", "alice-shop.test"),
        ("alice-shop.test/", "alice-shop.test"),
        ("alice-shop.test.", "alice-shop.test"),
    ],
)
def test_a_url_typed_for_a_domain_is_cleaned_up_by_the_api(client, fake_opensrs, typed, stored):
    response = client.post(API_URL, {"domain": typed}, content_type="application/json")

    assert response.status_code == 202
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    assert ticket.requested_domain == stored


def test_www_of_a_registered_domain_resets_the_registered_one(client, fake_opensrs, alice_shop):
    # given alice-shop.test is registered with us, www.alice-shop.test is not a registration
    response = client.post(
        API_URL, {"domain": "https://www.alice-shop.test/"}, content_type="application/json"
    )
    ticket = Ticket.objects.get(reference=response.json()["reference"])

    # when the worker handles it
    outcome = services.password_resend_process(ticket_id=ticket.pk)

    # then the reset goes out for the registered name
    assert outcome == "sent"
    sent = [c for c in fake_opensrs.calls if c["action"] == "SEND_PASSWORD"]
    assert [c["attributes"]["domain_name"] for c in sent] == ["alice-shop.test"]
    ticket.refresh_from_db()
    assert ticket.requested_domain == "alice-shop.test"


def test_www_of_a_domain_nobody_registered_with_us_is_an_unknown_domain(client, fake_opensrs):
    response = client.post(API_URL, {"domain": "www.nobody.test"}, content_type="application/json")
    ticket = Ticket.objects.get(reference=response.json()["reference"])

    services.password_resend_process(ticket_id=ticket.pk)

    assert not [c for c in fake_opensrs.calls if c["action"] == "SEND_PASSWORD"]


def test_the_form_offers_the_domain_name_in_a_typed_url_then_sends_it(client, fake_opensrs):
    # when a URL is typed
    first = client.post(
        PORTAL_URL, {"domain": "https://www.alice-shop.test/", "contact_email": "me@typed.test"}
    )
    # then the form asks "did you mean" with the bare name filled in, and nothing is sent yet
    body = first.content.decode()
    assert first.status_code == 200
    assert "Did you mean <strong>alice-shop.test</strong>?" in body
    assert 'value="alice-shop.test"' in body
    assert 'value="me@typed.test"' in body
    assert not Ticket.objects.exists()
    # when the suggestion is sent
    client.post(PORTAL_URL, {"domain": "alice-shop.test", "contact_email": "me@typed.test"})
    # then the request is made for it
    assert Ticket.objects.get().requested_domain == "alice-shop.test"
