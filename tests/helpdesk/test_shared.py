import pytest
from django.test import RequestFactory

from helpdesk.exceptions import RateLimited
from helpdesk.ratelimit import client_ip, rate_limit_hit
from tickets.redaction import REDACTED, redact_card_numbers


def test_rate_limit_allows_up_to_the_limit_then_refuses(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "resend_per_domain": (3, 900)}
    for _ in range(3):
        rate_limit_hit(scope="resend_per_domain", key="alice-shop.test")

    with pytest.raises(RateLimited) as info:
        rate_limit_hit(scope="resend_per_domain", key="ALICE-SHOP.test")

    assert 1 <= info.value.retry_after <= 900
    rate_limit_hit(scope="resend_per_domain", key="bob-reseller.test")  # other targets unaffected


def test_forwarded_for_is_ignored_without_a_trusted_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4")

    assert client_ip(request) == "10.0.0.5"


def test_forwarded_for_is_read_from_the_trusted_hop(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9"
    )

    assert client_ip(request) == "203.0.113.9"


@pytest.mark.parametrize(
    "text",
    [
        "my card 4111 1111 1111 1111 thanks",
        "4111-1111-1111-1111",
        "5500005555555559",
        "x378282246310005y",
    ],
)
def test_card_numbers_are_redacted(text):
    clean, found = redact_card_numbers(text)

    assert found
    assert REDACTED in clean
    assert "1111 1111" not in clean
    assert "5555555559" not in clean


@pytest.mark.parametrize("text", ["call +60 12-345 6789", "order 1234567890123", "HD-7K3M9Q2X"])
def test_other_numbers_are_kept(text):
    assert redact_card_numbers(text) == (text, False)
