"""No change to a customer's record without its verified owner, whatever path the ticket takes."""

import random

import pytest
from django.core.cache import cache
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tests.tickets.test_modify import anonymous_request, confirm
from tests.tickets.verification_helpers import owner_request
from tickets import services
from tickets.audit import audit_verify
from tickets.models import ActionLog, Notification, Ticket

pytestmark = pytest.mark.django_db

S = Ticket.Status
HOOK = "/anymail/postmark/inbound/"
PHONE = "+60 12-345 6789"


def anonymous_modify(changes=None):
    return anonymous_request(changes=changes or {"phone": PHONE, "city": "Penang"})


def record(customer):
    customer.refresh_from_db()
    return {field: getattr(customer, field) for field in services.MODIFY_FIELDS}


# --- the bypass that was found: resolve -> reopen -> approve ---


def test_resolve_then_reopen_puts_an_unverified_request_back_to_awaiting_verification(
    alice, agent, supervisor
):
    # given: a change nobody verified, resolved by an agent
    before = record(alice)
    ticket = anonymous_modify()
    services.ticket_resolve(ticket=ticket, actor=agent)

    # when
    reopened = services.ticket_reopen(ticket=ticket, actor=agent)

    # then
    assert reopened.status == S.AWAITING_VERIFICATION
    with pytest.raises(TransitionNotAllowed):
        services.ticket_approve(ticket=reopened, actor=supervisor)
    assert record(alice) == before
    row = ActionLog.objects.filter(ticket=ticket, action="ticket.status_changed").last()
    assert row.details["to"] == S.AWAITING_VERIFICATION
    assert row.details["asked_for"] == S.OPEN


def test_the_staff_page_reopen_and_approve_cannot_apply_an_unverified_change(
    client, alice, supervisor
):
    # given
    before = record(alice)
    ticket = anonymous_modify()
    client.force_login(supervisor)
    client.post(f"/staff/tickets/{ticket.reference}/resolve/", {"version": ticket.version})
    ticket.refresh_from_db()
    client.post(f"/staff/tickets/{ticket.reference}/reopen/", {"version": ticket.version})
    ticket.refresh_from_db()

    # when
    response = client.post(
        f"/staff/tickets/{ticket.reference}/approve/", {"version": ticket.version}
    )

    # then
    assert response.status_code == 409
    assert ticket.status == S.AWAITING_VERIFICATION
    assert record(alice) == before


def test_the_api_reopen_and_approve_cannot_apply_an_unverified_change(alice, supervisor):
    from rest_framework.test import APIClient

    # given
    before = record(alice)
    ticket = anonymous_modify()
    api = APIClient()
    api.force_authenticate(supervisor)
    base = f"/api/v1/tickets/{ticket.reference}"
    assert api.post(f"{base}/resolve/", {}, format="json").status_code == 200
    services.ticket_reopen(ticket=ticket, actor=supervisor)

    # when
    response = api.post(f"{base}/approve/", {}, format="json")

    # then
    assert api.get(f"{base}/").json()["status"] == S.AWAITING_VERIFICATION
    assert response.status_code == 409
    assert "not confirmed" in response.json()["detail"]
    assert record(alice) == before


def test_staff_cannot_move_an_unverified_request_to_open(alice, agent):
    ticket = anonymous_modify()

    with pytest.raises(TransitionNotAllowed, match="not confirmed"):
        services.ticket_transition(ticket=ticket, to=S.OPEN, actor=agent)

    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION


def test_a_forged_inbound_reply_cannot_open_an_unverified_request(client, settings, alice, agent):
    # given: the unverified change was resolved; a reply "from" Alice quotes its reference
    from tests.tickets.test_inbound import AUTH, SECRET, payload

    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    before = record(alice)
    ticket = anonymous_modify()
    services.ticket_resolve(ticket=ticket, actor=agent)

    # when
    response = client.post(
        HOOK,
        payload(
            sender="alice@example.test",
            subject=f"Re: [{ticket.reference}] Change of personal information",
            text="Please go ahead.",
            message_id="forged-1@attacker.test",
        ),
        content_type="application/json",
        **AUTH,
    )

    # then
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION
    assert ticket.verified_at is None
    assert record(alice) == before


def test_the_owner_can_still_verify_a_request_that_went_back_to_awaiting_verification(alice, agent):
    # given
    ticket = anonymous_modify()
    services.ticket_resolve(ticket=ticket, actor=agent)
    services.ticket_reopen(ticket=ticket, actor=agent)

    # when
    confirmed = confirm(ticket)

    # then: verified now, and the low-risk fields applied by policy
    assert confirmed.verified_by == Ticket.VerifiedBy.EMAIL_LINK
    assert confirmed.verification.sent_to == "alice@example.test"
    assert record(alice)["city"] == "Penang"


# --- verification is a recorded fact ---


def test_a_confirmed_link_records_who_verified_and_when(alice):
    ticket = anonymous_modify(changes={"full_name": "Alice Tan Mei Ling"})

    confirmed = confirm(ticket)

    assert confirmed.verified_at is not None
    assert confirmed.verified_by == Ticket.VerifiedBy.EMAIL_LINK
    assert confirmed.verification.used_at == confirmed.verified_at


def test_the_owners_session_is_recorded_as_the_verification(alice):
    ticket = owner_request(alice, {"full_name": "Alice Tan Mei Ling"})

    assert ticket.verified_by == Ticket.VerifiedBy.SESSION
    assert ticket.verified_at is not None
    created = ActionLog.objects.get(ticket=ticket, action="ticket.created")
    assert created.details["verified_by"] == "session"


def test_the_apply_step_itself_refuses_an_unverified_request(alice):
    # A path that reaches the apply step without the approval checks is refused there too.
    from tickets.services.modify_approval import modify_changes_apply, modify_pending

    ticket = anonymous_modify()
    before = record(alice)

    with pytest.raises(TransitionNotAllowed), transaction.atomic():
        modify_changes_apply(
            ticket, Customer.objects.get(pk=alice.pk), modify_pending(ticket), actor="x", how="x"
        )

    assert record(alice) == before


def test_the_approval_predicate_gives_the_page_and_the_service_the_same_reason(
    client, alice, supervisor, agent
):
    # given: an unverified request somebody put back to open before this rule existed
    ticket = anonymous_modify(changes={"full_name": "Mallory"})
    Ticket.objects.filter(pk=ticket.pk).update(status=S.OPEN)
    ticket.refresh_from_db()

    # when
    approval = services.modify_approval(ticket, supervisor)
    client.force_login(supervisor)
    page = client.get(f"/staff/tickets/{ticket.reference}/")

    # then
    assert approval.possible and not approval.allowed
    assert page.status_code == 200
    assert approval.refusal.message in page.content.decode().replace("&#x27;", "'")
    with pytest.raises(ApplicationError) as refused:
        services.ticket_approve(ticket=ticket, actor=supervisor)
    assert refused.value.message == approval.refusal.message
    assert record(alice)["full_name"] == "Alice Tan"


# --- contact follows the record ---


def test_after_an_email_change_replies_go_to_the_new_address(alice, agent, supervisor):
    # given: an open general ticket from Alice, and her verified email change
    other = services.request_general(
        subject="Website slow",
        body="Since Monday.",
        contact_email="alice@example.test",
        actor=alice,
        customer=alice,
    )
    change = owner_request(alice, {"email": "alice.new@example.test"})
    confirm(change, template="verify_new_email")

    # when
    services.ticket_approve(ticket=change, actor=supervisor)
    services.ticket_reply_add(
        ticket=other,
        body="We are looking at it.",
        actor=agent,
        author="staff",
        channel=Ticket.Channel.STAFF,
        author_user=agent,
    )

    # then
    other.refresh_from_db()
    assert other.contact_email == "alice.new@example.test"
    reply = Notification.objects.get(ticket=other, template="ticket_reply")
    assert reply.recipient == "alice.new@example.test"
    assert ActionLog.objects.filter(ticket=other, action="ticket.contact_changed").exists()
    assert audit_verify().ok


def test_the_staff_page_says_when_the_contact_address_is_not_the_email_on_record(
    client, alice, agent
):
    ticket = services.request_general(
        subject="Invoice",
        body="A question.",
        contact_email="someone-else@example.test",
        actor="anonymous",
        customer=alice,
    )
    client.force_login(agent)

    page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    assert "not the email on record" in page


# --- property: random paths never change a record without a verified owner ---

ACTIONS = (
    "resolve",
    "reopen",
    "approve_agent",
    "approve_supervisor",
    "reply_inbound",
    "reply_staff",
    "close",
    "reject",
    "open",
    "confirm",
)


def _attempt(action, ticket, agent, supervisor):
    actor = supervisor if action.endswith("supervisor") else agent
    calls = {
        "resolve": lambda: services.ticket_resolve(ticket=ticket, actor=actor),
        "reopen": lambda: services.ticket_reopen(ticket=ticket, actor=actor),
        "approve_agent": lambda: services.ticket_approve(ticket=ticket, actor=agent),
        "approve_supervisor": lambda: services.ticket_approve(ticket=ticket, actor=supervisor),
        "reply_inbound": lambda: services.ticket_reply_add(
            ticket=ticket,
            body="Please apply it.",
            actor="inbound",
            author="customer",
            channel=Ticket.Channel.EMAIL,
        ),
        "reply_staff": lambda: services.ticket_reply_add(
            ticket=ticket, body="Noted.", actor=agent, author="staff", channel="staff"
        ),
        "close": lambda: services.ticket_close(ticket=ticket, actor=actor),
        "reject": lambda: services.ticket_reject(ticket=ticket, actor=actor, reason="No."),
        "open": lambda: services.ticket_transition(ticket=ticket, to=S.OPEN, actor=actor),
    }
    try:
        with transaction.atomic():
            calls[action]()
    except ApplicationError:
        pass


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=12), seed=st.integers(0, 9))
def test_no_customer_field_changes_without_a_verified_request_and_its_audit_row(
    alice, agent, supervisor, settings, steps, seed
):
    # given: one request its owner may verify along the way, one nobody ever verifies
    cache.clear()  # the rate limits count every example's requests otherwise
    # The examples share the database: links of earlier examples would coalesce these.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_email": (10**6, 3600)}
    rng = random.Random(seed)
    changes = rng.choice(
        [{"phone": PHONE}, {"full_name": "Mallory"}, {"city": "Ipoh", "full_name": "Mallory"}]
    )
    with transaction.atomic():
        verifiable = anonymous_modify(changes=changes)
        never = anonymous_modify(changes={"full_name": "Eve Attacker", "city": "Nowhere"})
    before = record(alice)
    changed_rows = ActionLog.objects.filter(action="customer.details_changed").count()

    # when
    for step in steps:
        ticket = rng.choice([verifiable, never])
        if step == "confirm":
            if ticket is verifiable:
                try:
                    with transaction.atomic():
                        confirm(verifiable)
                except ApplicationError:
                    pass
            continue
        _attempt(step, ticket, agent, supervisor)

    # then
    after = record(alice)
    verifiable.refresh_from_db()
    never.refresh_from_db()
    assert never.verified_at is None
    assert after["full_name"] != "Eve Attacker" and after["city"] != "Nowhere"
    if after != before:
        assert verifiable.verified_at is not None
        applied = ActionLog.objects.filter(
            action="customer.details_changed", ticket=verifiable
        ).count()
        assert applied == ActionLog.objects.filter(action="customer.details_changed").count() - (
            changed_rows
        )
        assert applied >= 1
    # cleanup for the next example: Hypothesis reuses the function-scoped fixtures
    Customer.objects.filter(pk=alice.pk).update(**before)
