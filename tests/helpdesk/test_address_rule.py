"""The one rule for email addresses: what every program reads as the same mailbox, and no other.

An address the ESP, a mail client or our own inbound parser reads otherwise than we store it
could take a secret to another mailbox: a quoted local part holding a second address, a
comment, an IP literal, a relay route, a blank or a control character.
"""

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from helpdesk.checks import ADDRESS_FIELDS, address_fields_use_the_rule
from helpdesk.validators import address_normalised, validate_address

# Each of these is taken by Django's EmailValidator, or by a lookup that compares canonically,
# yet reads as another mailbox (or as two) to some program on the way.
TRICKS = [
    '"victim@x.test,"@evil.example',  # a quoted local part holding another address
    '"victim@x.test"@evil.example',
    "victim@[192.0.2.1]",  # an IP literal
    "victim@[IPv6:2001:db8::1]",
    "victim(comment)@x.test",  # a comment
    "victim@x.test(evil.example)",
    "victim%evil.example@x.test",  # routed by some relays
    "evil.example!victim@x.test",
    "victim@x.test,attacker@evil.example",  # two addresses
    "victim@evil.example@x.test",
    "victim@x.test\nBcc: attacker@evil.example",  # a header injected
    "vict im@x.test",  # a blank
    "victim@x.test\u200b",  # an invisible character IDNA drops
    "v\u0456ctim@x.test",  # a Cyrillic i in the local part
    "victim\uff20x.test",  # a full-width @
    "victim@x.test.",  # a final dot
    "victim..x@x.test",
    ".victim@x.test",
    "victim@localhost",  # no top-level domain
    "victim@192.0.2.1",
    "victim@x.test:25",
    "a" * 65 + "@x.test",  # past RFC 5321's 64 for the local part
    "victim@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".test",  # > 254
]


@pytest.mark.parametrize("address", TRICKS)
def test_an_address_read_otherwise_by_another_program_is_refused(address):
    with pytest.raises(ValidationError) as refused:
        address_normalised(address)
    assert refused.value.code == "invalid_address"
    with pytest.raises(ValidationError):
        validate_address(address)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("alice@example.test", "alice@example.test"),
        ("  Alice.Tan+hd@Example.TEST ", "Alice.Tan+hd@example.test"),
        ("o'brien@example.test", "o'brien@example.test"),
        ("siti@münchen.de", "siti@xn--mnchen-3ya.de"),
        ("ali@\uff45\uff58ample.test", "ali@example.test"),  # full-width letters
    ],
)
def test_a_plain_address_is_taken_and_stored_in_one_form(typed, stored):
    assert address_normalised(typed) == stored
    validate_address(stored)


def test_a_field_validator_refuses_surrounding_blanks_it_would_store():
    with pytest.raises(ValidationError):
        validate_address(" alice@example.test")


def test_every_address_field_of_the_models_holds_the_rule():
    # The fields the check holds, each validated by the rule; and the check says so when not
    assert set(ADDRESS_FIELDS) == {"accounts.Customer.email", "tickets.Ticket.contact_email"}
    for name in ADDRESS_FIELDS:
        label, model, field = name.split(".")
        assert validate_address in apps.get_model(label, model)._meta.get_field(field).validators
    assert address_fields_use_the_rule() == []


def test_the_check_names_an_address_field_without_the_rule(monkeypatch):
    field = apps.get_model("tickets", "Ticket")._meta.get_field("contact_email")
    monkeypatch.setattr(field, "validators", [])
    [error] = address_fields_use_the_rule()
    assert error.id == "helpdesk.E003" and "tickets.Ticket.contact_email" in error.msg
