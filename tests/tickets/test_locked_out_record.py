"""A closed account's record changes no more than a frozen one's: not by any path.

Sign-in, replies and requests by session refuse an account that is frozen or closed; a change
request that reaches it another way (a link to the email on record, a staff approval of a
request made before the closure) must not write to the record either.
"""

import pytest

from accounts.models import Customer
from helpdesk.exceptions import TransitionNotAllowed
from tests.tickets.test_modify import anonymous_request, confirm
from tests.tickets.verification_helpers import owner_request
from tickets import services
from tickets.models import Ticket
from tickets.services.lifecycle import ACCOUNT_CLOSED

S = Ticket.Status

pytestmark = pytest.mark.django_db


def close_account(customer: Customer) -> None:
    Customer.objects.filter(pk=customer.pk).update(account_status=Customer.AccountStatus.CLOSED)


def test_a_link_to_a_closed_accounts_address_applies_no_change(alice, settings):
    # given Alice's account is closed, and low-risk changes apply once confirmed
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    close_account(alice)
    ticket = anonymous_request(changes={"phone": "+60 19-999 0000", "city": "Ipoh"})

    # when whoever reads the address on record confirms the link mailed there
    confirm(ticket)

    # then the record is as it was: the request waits for staff, who cannot apply it
    alice.refresh_from_db()
    assert (alice.phone, alice.city) == ("+60312345678", "Kuala Lumpur")
    assert not ticket.changes.filter(applied_at__isnull=False).exists()
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN


def test_a_supervisor_cannot_apply_a_change_to_an_account_closed_since(alice, supervisor):
    # given Alice asked for a new name while signed in, and her account was closed since
    ticket = owner_request(alice, {"full_name": "Alice Wong"})
    assert ticket.status == S.OPEN
    close_account(alice)

    # when a supervisor approves it
    with pytest.raises(TransitionNotAllowed) as refused:
        services.ticket_approve(ticket=ticket, actor=supervisor)

    # then it is refused, saying why, and the record is as it was
    assert refused.value.message == ACCOUNT_CLOSED
    alice.refresh_from_db()
    assert alice.full_name == "Alice Tan"
