"""A live verification link of a frozen or closed account says so; other links say nothing of it.

Confirming a link that offers registration changes is refused once the account is frozen or
closed (test_registration_change). The holder of such a live link proved they read the mail
it went to: the page tells them the account is locked, in the words the status page uses.
Whoever holds an unknown or expired link learns nothing of the account.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Customer
from tests.tickets.test_registration_change import (  # noqa: F401 - bob_domains: a fixture
    LOCKED_OUT,
    bob_domains,
    changes_of,
    email_change,
)
from tests.tickets.verification_helpers import link_token, verification_mail
from tickets.models import Ticket, Verification

# bob_domains: the domains the request offers to change at OpenSRS.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("bob_domains")]

LOCKED = "This account is locked"
UNKNOWN = "We do not know this link"


def _locked_out_link(bob, status):
    """An anonymous email change offering Bob's domains, its link, and Bob's account locked."""
    ticket = email_change(None)
    token = link_token(verification_mail(ticket))
    Customer.objects.filter(pk=bob.pk).update(account_status=status)
    return ticket, token


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_live_link_of_a_locked_account_says_the_account_is_locked(bob, client, status, refusal):
    # given a live link of Bob's request, his account frozen or closed since
    ticket, token = _locked_out_link(bob, status)

    # when its holder opens it, and confirms it all the same
    page = client.get(f"/verify/{token}/")
    confirmed = client.post(f"/verify/{token}/", {"registration": ["bob-reseller.test:owner"]})

    # then both say the account is locked and why, as the status page does, and offer the next
    # step (a closed account's holder writes to us; a frozen one's follows the request); no
    # button confirms anything, and nothing was confirmed
    for response in (page, confirmed):
        body = response.content.decode()
        assert response.status_code == 409
        assert LOCKED in body and refusal in body
        assert UNKNOWN not in body
        assert 'name="registration"' not in body
        if status == Customer.AccountStatus.CLOSED:
            assert 'href="/requests/new/"' in body
        else:
            assert 'href="/track/"' in body
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.AWAITING_VERIFICATION
    assert not any(change.chosen_at for change in changes_of(ticket).values())


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_an_unknown_or_expired_link_says_nothing_of_a_locked_account(bob, client, status, refusal):
    # given Bob's account locked, and a link of his request that has expired
    ticket, token = _locked_out_link(bob, status)
    Verification.objects.filter(ticket=ticket).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    # when someone opens it, or confirms a token that is not one of ours
    expired = client.get(f"/verify/{token}/")
    unknown = client.post(f"/verify/{token[:-4]}abcd/", {})

    # then they read what any such link reads, and nothing of the account
    assert expired.status_code == 410
    assert "This link has expired" in expired.content.decode()
    assert unknown.status_code in (400, 404)
    assert UNKNOWN in unknown.content.decode()
    for response in (expired, unknown):
        body = response.content.decode()
        assert LOCKED not in body and refusal not in body
