"""Fuzzed portal forms: whatever a client posts, the answer is never a 5xx."""

import pytest
from django.test import Client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db

# Reproducible runs of a fixed size; the database is the test's, rolled back after it.
FUZZ_SETTINGS = hypothesis_settings(
    max_examples=25, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)  # fmt: skip
ANONYMOUS_FORMS = {
    "/requests/new/": ["subject", "message", "email"],
    "/requests/password/": ["domain", "contact_email"],
    "/requests/modify/": [
        "email_on_record", "full_name", "email", "phone", "address_line1", "address_line2",
        "city", "state", "postcode", "country", "note",
    ],
    "/requests/opt-out/": ["email", "lists"],
    "/accounts/login/": ["username", "password"],
    "/accounts/password-reset/": ["email"],
}  # fmt: skip

# Text a browser could send, and text it would not: control characters, NUL, surrogates
# escaped, right-to-left marks, very long values, HTML and template syntax.
values = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a@b",
            "alice@example.test",
            "https://www.alice-shop.test/",
            "{{ 7|add:7 }}",
            "<script>x</script>",
            "\u202e\u200b",
            "x" * 20_000,
            "HD-AAAAAAAA",
            "product_mailings",
        ]
    ),
)


def _form_data(fields: list[str]):
    known = st.fixed_dictionaries({}, optional=dict.fromkeys(fields, values))
    extra = st.dictionaries(st.text(min_size=1, max_size=20), values, max_size=3)
    repeated = st.lists(values, max_size=3)
    return st.tuples(known, extra, repeated)


def _fuzz(client: Client, path: str, fields: list[str]) -> set[int]:
    statuses: set[int] = set()

    @given(data=_form_data(fields))
    @FUZZ_SETTINGS
    def run(data):
        known, extra, repeated = data
        body = {**extra, **known}
        if repeated and fields:
            body[fields[0]] = repeated  # the same field sent more than once
        response = client.post(path, body, REMOTE_ADDR="10.44.0.1")
        statuses.add(response.status_code)
        assert response.status_code < 500, (path, body)

    run()
    return statuses


@pytest.fixture
def no_limits(settings):
    # The limiter answers 429 quickly; the fuzz is for what lies behind it.
    settings.RATE_LIMITS = dict.fromkeys(settings.RATE_LIMITS, (10**6, 60))


@pytest.mark.parametrize("path", sorted(ANONYMOUS_FORMS))
def test_fuzzed_anonymous_portal_forms_never_get_a_5xx(client, alice, no_limits, path):
    statuses = _fuzz(client, path, ANONYMOUS_FORMS[path])

    assert statuses and max(statuses) < 500


def test_fuzzed_customer_forms_never_get_a_5xx(alice_client, alice, no_limits):
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    forms = {
        "/my/preferences/": ["product_mailings", "reseller_newsletters"],
        f"/my/tickets/{ticket.reference}/reply/": ["body"],
        f"/my/tickets/{ticket.reference}/close/": ["version"],
        "/requests/modify/": ["full_name", "email", "phone", "country", "note"],
    }
    for path, fields in forms.items():
        _fuzz(alice_client, path, fields)
