import pytest
from django.core.exceptions import ValidationError

from accounts.selectors import email_canonical
from domains.models import Domain
from domains.validators import (
    DOMAIN_MIXED_SCRIPTS,
    domain_display,
    label_scripts_mixed,
    normalize_domain_name,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # IDNA 2008 keeps the sharp s (and the final sigma, ZWJ where allowed): another domain
        ("faß.de", "xn--fa-hia.de"),
        ("FASS.de", "fass.de"),
        ("Faß.DE.", "xn--fa-hia.de"),
        ("βόλος.gr", "xn--nxasmm1c.gr"),  # final sigma kept (IDNA 2003: xn--nxasmq6b)
        ("ＢÜＣＨＥＲ.test", "xn--bcher-kva.test"),  # full-width letters are mapped (UTS 46)
        ("bücher.test", "xn--bcher-kva.test"),
        ("XN--BCHER-KVA.test", "xn--bcher-kva.test"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("münchen-2.de", "xn--mnchen-2-65a.de"),
    ],
)
def test_names_are_normalised_by_idna_2008(raw, expected):
    assert normalize_domain_name(raw) == expected


@pytest.mark.parametrize("name", ["faß.de", "bücher.test", "例え.jp", "βόλος.gr", "日本語の例.jp"])
def test_a_unicode_name_round_trips_through_punycode(name):
    ascii_name = normalize_domain_name(name)

    assert ascii_name.isascii()
    assert domain_display(ascii_name) == name
    assert normalize_domain_name(domain_display(ascii_name)) == ascii_name
    assert Domain(name=ascii_name).unicode_name == name


@pytest.mark.parametrize(
    "name",
    [
        "p\u0430ypal.com",  # a Cyrillic a among Latin letters
        "xn--pypal-4ve.com",  # the same, typed in its ASCII form
        "\u0430\u0440\u0440l\u0435.com",  # Cyrillic and Latin mixed again
        "g\u03bf\u03bfgle.com",  # Greek omicrons
    ],
)
def test_a_label_mixing_scripts_is_refused(name):
    with pytest.raises(ValidationError) as caught:
        normalize_domain_name(name)

    assert caught.value.messages == [DOMAIN_MIXED_SCRIPTS]


@pytest.mark.parametrize(
    ("label", "mixed"),
    [
        ("bücher", False),
        ("москва", False),
        ("日本語の例", False),  # Han and Hiragana, as Japanese is written
        ("abc例え", False),  # Latin with Japanese is allowed too
        ("한국어漢字", False),  # Hangul with Han
        ("a-1", False),
        ("москва-ru", True),
        ("ελλάδα-gr", True),
        ("한국어の", True),  # Hangul with Hiragana
    ],
)
def test_which_script_mixtures_pass(label, mixed):
    assert label_scripts_mixed(label) is mixed


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("xn--zz.de", "not a valid internationalised domain name"),  # a bad A-label
        ("bü_b.com", "not a valid internationalised domain name"),
        ("a_b.com", "Enter a domain name such as example.com."),
        ("a\u200db.com", "not a valid internationalised domain name"),  # a joiner out of context
        ("bü..b", "not a valid internationalised domain name"),
        ("a..b", "Enter a domain name such as example.com."),
        ("localhost", "Enter a domain name such as example.com."),
        ("", "Enter a domain name such as example.com."),
    ],
)
def test_a_bad_name_is_refused_with_a_reason(raw, fragment):
    with pytest.raises(ValidationError) as caught:
        normalize_domain_name(raw)

    assert fragment in caught.value.messages[0]


def test_email_comparison_keeps_the_sharp_s_domain_apart():
    assert email_canonical("Mike@FAß.de") == "mike@xn--fa-hia.de"
    assert email_canonical("mike@xn--fa-hia.de") == "mike@xn--fa-hia.de"
    assert email_canonical("mike@fass.de") != email_canonical("mike@faß.de")
    assert email_canonical("MIKE@Example.TEST") == "mike@example.test"
