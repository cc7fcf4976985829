"""Input a person types as they usually write it is cleaned up, not refused."""

import pytest
from django.core.exceptions import ValidationError

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
