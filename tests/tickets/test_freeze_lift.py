"""A lift names the freeze it was shown: one opened before a newer freeze lifts nothing."""

import re

import pytest
from django.conf import settings
from django.test import Client
from django.utils.html import escape

from accounts.models import Customer
from accounts.roles import SUPERVISORS
from accounts.services import staff_user_ensure
from helpdesk.exceptions import StaleVersion
from tests.factories import freeze_shown
from tests.tickets.test_freeze import email_change_applied, freeze_token
from tickets.models import ActionLog
from tickets.services.freeze import FREEZE_CHANGED, NOT_FROZEN, account_unfreeze
from tickets.staff.common import VERSION_MISSING

pytestmark = pytest.mark.django_db

SUSPENDED = Customer.AccountStatus.SUSPENDED


def frozen_by_its_owner(client, alice, supervisor):
    """An email change applied, then "this wasn't me" from the old address."""
    ticket = email_change_applied(alice, supervisor)
    assert client.post(f"/not-me/{freeze_token(ticket)}/").status_code == 303
    alice.refresh_from_db()
    assert alice.account_status == SUSPENDED


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def lift_form(page: str) -> dict[str, str]:
    """The hidden fields of the "Lift the freeze" form on a customer page."""
    form = re.search(r'<form[^>]*/unfreeze/".*?</form>', page, re.S)
    assert form is not None
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group())
    return {name: value for name, value in fields if name != "csrfmiddlewaretoken"}


@pytest.fixture
def other_supervisor(db):
    return staff_user_ensure(username="siti", password="x-pass-123", role=SUPERVISORS)


def test_a_lift_opened_before_a_newer_freeze_lifts_nothing(
    client, alice, supervisor, other_supervisor
):
    # given: Alice's account frozen, and supervisor A opens its page
    frozen_by_its_owner(client, alice, supervisor)
    page = f"/staff/customers/{alice.number}/"
    a, b = signed_in(supervisor), signed_in(other_supervisor)
    shown_to_a = lift_form(a.get(page).content.decode())

    # and: B lifts that freeze, and a new takeover report freezes the account again
    lifted = b.post(
        f"{page}unfreeze/", {**lift_form(b.get(page).content.decode()), "reason": "Video call."}
    )
    assert lifted.status_code == 302
    frozen_by_its_owner(client, alice, supervisor)

    # when: A submits the form opened for the first freeze
    response = a.post(f"{page}unfreeze/", {**shown_to_a, "reason": "Checked her passport."})

    # then: the new freeze stands, nothing is recorded, and A is told why
    assert response.status_code == 409
    assert escape(FREEZE_CHANGED) in response.content.decode()
    alice.refresh_from_db()
    assert alice.account_status == SUSPENDED
    lifts = ActionLog.objects.filter(action="account.unfrozen", customer=alice)
    assert [row.details["reason"] for row in lifts] == ["Video call."]
    # and the page A is shown again carries the new freeze, for A to read before lifting it
    assert lift_form(response.content.decode()) == {"freeze_version": "2"}


def test_the_lift_names_the_freeze_each_freeze_raises(client, alice, supervisor):
    # given: two freezes, one lifted between them
    frozen_by_its_owner(client, alice, supervisor)
    first = freeze_shown(alice)
    account_unfreeze(customer=alice, freeze_version=first, actor=supervisor, reason="Called her.")
    frozen_by_its_owner(client, alice, supervisor)

    # when / then: the first freeze's marker lifts nothing; the second's lifts the freeze
    with pytest.raises(StaleVersion) as refused:
        account_unfreeze(
            customer=alice, freeze_version=first, actor=supervisor, reason="Checked her ID."
        )
    assert refused.value.message == FREEZE_CHANGED
    alice.refresh_from_db()
    assert alice.account_status == SUSPENDED
    second = freeze_shown(alice)
    assert second == first + 1
    account_unfreeze(customer=alice, freeze_version=second, actor=supervisor, reason="ID seen.")
    alice.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.ACTIVE
    frozen = ActionLog.objects.filter(action="account.frozen", customer=alice)
    lifts = ActionLog.objects.filter(action="account.unfrozen", customer=alice)
    assert [row.details["freeze_version"] for row in frozen] == [first, second]
    assert [row.details["freeze_version"] for row in lifts] == [first, second]


def test_a_lift_of_a_freeze_already_lifted_says_so_and_changes_nothing(
    client, alice, supervisor, other_supervisor
):
    # given: both supervisors opened the page; B lifted the freeze
    frozen_by_its_owner(client, alice, supervisor)
    page = f"/staff/customers/{alice.number}/"
    a, b = signed_in(supervisor), signed_in(other_supervisor)
    shown = lift_form(a.get(page).content.decode())
    assert b.post(f"{page}unfreeze/", {**shown, "reason": "Video call."}).status_code == 302

    # when: A submits too
    response = a.post(f"{page}unfreeze/", {**shown, "reason": "Passport."})

    # then
    assert response.status_code == 400
    assert escape(NOT_FROZEN) in response.content.decode()
    assert ActionLog.objects.filter(action="account.unfrozen").count() == 1


@pytest.mark.parametrize("marker", [None, "", "two", "1.0"])
def test_a_lift_form_without_its_freeze_is_refused(client, alice, supervisor, marker):
    # given
    frozen_by_its_owner(client, alice, supervisor)
    data = {"reason": "Checked her ID."}
    if marker is not None:
        data["freeze_version"] = marker

    # when
    response = signed_in(supervisor).post(f"/staff/customers/{alice.number}/unfreeze/", data)

    # then
    assert response.status_code == 400
    assert escape(str(VERSION_MISSING)) in response.content.decode()
    alice.refresh_from_db()
    assert alice.account_status == SUSPENDED
    assert not ActionLog.objects.filter(action="account.unfrozen").exists()


def test_the_refusal_reads_in_malay(client, alice, supervisor, other_supervisor):
    # given: A's form is for a freeze lifted and followed by another
    frozen_by_its_owner(client, alice, supervisor)
    page = f"/staff/customers/{alice.number}/"
    stale = lift_form(signed_in(supervisor).get(page).content.decode())
    account_unfreeze(
        customer=alice, freeze_version=freeze_shown(alice), actor=supervisor, reason="Call."
    )
    frozen_by_its_owner(client, alice, supervisor)

    # when
    a = signed_in(other_supervisor)
    a.cookies[settings.LANGUAGE_COOKIE_NAME] = "ms"
    response = a.post(f"{page}unfreeze/", {**stale, "reason": "Pasport."})

    # then
    assert response.status_code == 409
    body = response.content.decode()
    assert 'lang="ms"' in body
    assert escape(FREEZE_CHANGED) not in body
    assert "Akaun ini dibekukan semula selepas pembekuan yang ditunjukkan kepada anda" in body
