"""A live verification link of a frozen or closed account confirms nothing, whatever it asks.

Not only a link offering registration changes (test_verify_locked_out): a change applied at
once, one left for staff, a new address. The page, the form and the API say the account is
locked, and the link stays unused.
"""

import pytest
from django.utils.html import escape

from accounts.models import Customer
from tests.factories import freeze_shown
from tests.tickets.test_account_locked_out import LOCKED_OUT
from tests.tickets.verification_helpers import (
    anonymous_change,
    link_token,
    owner_request,
    verification_mail,
)
from tickets import services
from tickets.models import ActionLog, FieldChange, Ticket, Verification
from tickets.services.freeze import account_unfreeze
from tickets.services.lifecycle import AccountLockedOut

pytestmark = pytest.mark.django_db

S = Ticket.Status
NEW = "alice.new@example.net"


def _locked(customer: Customer, status: str) -> None:
    Customer.objects.filter(pk=customer.pk).update(account_status=status)


def _locked_out_link(customer: Customer, changes: dict[str, str], status: str):
    """A change asked for without signing in, its link to the email on record, and the
    account `status` since: (ticket, token)."""
    ticket = anonymous_change(customer.email, changes, client_key="10.0.0.7")
    token = link_token(verification_mail(ticket))
    _locked(customer, status)
    return ticket, token


def _unconfirmed(ticket: Ticket) -> None:
    """Nothing of the ticket moved: still waiting, no field applied, the link still unused."""
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION and ticket.verified_at is None
    assert not FieldChange.objects.filter(ticket=ticket, applied_at__isnull=False).exists()
    digest = Verification.objects.get(ticket=ticket, purpose="requester")
    assert digest.used_at is None and digest.attempts == 0


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_locked_out_accounts_link_of_a_change_applied_at_once_confirms_nothing(
    client, alice, status, refusal
):
    # given a change of phone asked for without signing in (no registration change offered:
    # confirming would apply it at once), its link mailed to the email on record, and the
    # account frozen or closed since
    ticket, token = _locked_out_link(alice, {"phone": "+60 12-999 0000"}, status)
    logged = ActionLog.objects.count()

    # when the page is opened, the form posted and the API called
    page = client.get(f"/verify/{token}/")
    posted = client.post(f"/verify/{token}/")
    api = client.post("/api/v1/verify/", {"token": token}, content_type="application/json")

    # then each says the account is locked, and nothing is confirmed or applied
    assert page.status_code == posted.status_code == api.status_code == 409
    for response in (page, posted):
        shown = response.content.decode()
        assert "This account is locked" in shown and escape(refusal) in shown
        assert "Nothing was confirmed with this link." in shown
    assert api.json()["detail"] == refusal
    _unconfirmed(ticket)
    alice.refresh_from_db()
    assert alice.phone != "+60129990000"
    assert ActionLog.objects.count() == logged
    with pytest.raises(AccountLockedOut) as confirmed:
        services.verification_confirm(token=token, client_key="10.0.0.1", actor="anonymous")
    assert confirmed.value.message == refusal


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_locked_out_accounts_link_of_a_change_left_for_staff_confirms_nothing(
    client, alice, status, refusal
):
    # given a change of name (a supervisor's to approve) asked for without signing in
    ticket, token = _locked_out_link(alice, {"full_name": "Alicia Tan"}, status)

    # when its link is confirmed
    posted = client.post(f"/verify/{token}/")

    # then it is refused, and no verified request waits for staff
    assert posted.status_code == 409
    assert escape(refusal) in posted.content.decode()
    _unconfirmed(ticket)


def test_a_frozen_accounts_link_confirms_once_the_freeze_is_lifted(client, alice, supervisor):
    # given a link refused while the account was frozen
    frozen = Customer.AccountStatus.SUSPENDED
    ticket, token = _locked_out_link(alice, {"phone": "+60 12-999 0000"}, frozen)
    assert client.post(f"/verify/{token}/").status_code == 409

    # when a supervisor lifts the freeze, then the same link confirms the request
    account_unfreeze(
        customer=alice,
        freeze_version=freeze_shown(alice),
        actor=supervisor,
        reason="ID checked by video.",
    )
    assert client.post(f"/verify/{token}/").status_code == 303
    ticket.refresh_from_db()
    assert ticket.verified_by == Ticket.VerifiedBy.EMAIL_LINK


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_locked_out_accounts_new_address_confirms_nothing(client, alice, status, refusal):
    # given Alice's own request for a new email address, its link mailed to the new address
    ticket = owner_request(alice, {"email": NEW})
    token = link_token(verification_mail(ticket, "verify_new_email"))
    _locked(alice, status)

    # when the new address confirms
    api = client.post("/api/v1/verify/", {"token": token}, content_type="application/json")

    # then it is refused, and the new address stays unconfirmed
    assert api.status_code == 409 and api.json()["detail"] == refusal
    link = Verification.objects.get(ticket=ticket, purpose="new_email")
    assert link.used_at is None
    assert not ActionLog.objects.filter(ticket=ticket, action="verification.confirmed").exists()
