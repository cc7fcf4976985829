"""Relaxed alignment without the Public Suffix List: the rule the inbound_auth docstring states."""

import pytest

from tickets.services.inbound_auth import domains_aligned

ALIGNED = {
    "the same domain": ("example.com", "a@example.com"),
    "the same domain, in other cases and with a final dot": ("Example.COM.", "a@example.com"),
    "a signer under the From domain": ("mail.example.com", "a@example.com"),
    "a signer above the From domain": ("example.com", "a@news.example.com"),
    "an envelope sender's address under the From domain": (
        "bounces@mail.example.com",
        "a@example.com",
    ),
    "a country's second level, a signer under an organization": ("mail.shop.co.uk", "a@shop.co.uk"),
    # The known limit: the From domain itself a public suffix (no one's address on record).
    "LIMIT: a signer under a From domain that is a suffix": (
        "evil.github.io",
        "a@github.io",
    ),
    "LIMIT: a signer under co.uk for From: a@co.uk": ("evil.co.uk", "a@co.uk"),
    # A suffix's own registry signing for a domain under it: only it holds that key.
    "the public suffix above the From domain": ("co.uk", "a@shop.co.uk"),
}

NOT_ALIGNED = {
    "another domain": ("attacker.test", "a@example.com"),
    "a domain that only ends like the From domain": ("notexample.com", "a@example.com"),
    "the From domain as the start of another": ("example.com.attacker.test", "a@example.com"),
    "sibling subdomains (aligned by the RFC, not without the list)": (
        "a.example.com",
        "b@c.example.com",
    ),
    "a sibling under a multi-tenant suffix": ("evil.github.io", "a@victim.github.io"),
    "a sibling under a country's second level": ("evil.co.uk", "a@victim.co.uk"),
    "a bare top-level domain above the From domain": ("com", "a@example.com"),
    "a From domain that is a bare top-level domain": ("x.com", "a@com"),
    "no signer": ("", "a@example.com"),
    "no From domain": ("example.com", ""),
}


@pytest.mark.parametrize(("signer", "author"), ALIGNED.values(), ids=ALIGNED.keys())
def test_aligned(signer, author):
    assert domains_aligned(signer, author)


@pytest.mark.parametrize(("signer", "author"), NOT_ALIGNED.values(), ids=NOT_ALIGNED.keys())
def test_not_aligned(signer, author):
    assert not domains_aligned(signer, author)
