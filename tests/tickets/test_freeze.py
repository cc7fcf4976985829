"""'This wasn't me': the old address of an email change undoes it and freezes the account."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY, authenticate
from django.utils import timezone

from accounts.models import ApiToken, Customer
from accounts.services import api_token_issue
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tests.factories import api_key_for, freeze_shown, staff_reply
from tests.tickets.verification_helpers import (
    anonymous_change,
    deliver_outbox,
    link_token,
    owner_request,
    password_reset_lookups,
    verification_mail,
)
from tickets import services
from tickets.audit import audit_verify
from tickets.models import ActionLog, Message, Notification, Ticket, Verification
from tickets.services import freeze as services_freeze
from tickets.services import status_link
from tickets.services.freeze import account_unfreeze

pytestmark = pytest.mark.django_db

S = Ticket.Status
NEW_EMAIL = "alice.new@example.test"
TYPED = "payments@elsewhere.test"


def email_change_applied(alice, supervisor):
    ticket = owner_request(alice, {"email": NEW_EMAIL, "city": "Penang"})
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
    return services.ticket_approve(ticket=ticket, actor=supervisor)


def freeze_token(ticket):
    return link_token(Notification.objects.get(ticket=ticket, template="email_changed_old"))


def test_the_old_address_is_mailed_a_freeze_link_valid_14_days(alice, supervisor):
    # when
    ticket = email_change_applied(alice, supervisor)

    # then
    notice = Notification.objects.get(ticket=ticket, template="email_changed_old")
    assert notice.recipient == "alice@example.test"
    assert notice.context["link"].startswith("https://help.exabytes.example/not-me/")
    link = Verification.objects.get(ticket=ticket, purpose=Verification.Purpose.NOT_ME)
    assert link.sent_to == "alice@example.test"
    assert timedelta(days=13) < link.expires_at - timezone.now() <= timedelta(days=14)
    sent = [m for m in deliver_outbox() if "/not-me/" in m.body]
    assert [m.to for m in sent] == [["alice@example.test"]]


def test_the_freeze_link_reverts_the_change_and_revokes_sessions_and_tokens(
    client, alice, supervisor
):
    # given: Alice is logged in elsewhere and has an API token; her email was changed
    other_browser = client.__class__()
    other_browser.force_login(alice.user)
    keys = [api_key_for(alice.user), api_key_for(alice.user, name="second")]
    ticket = email_change_applied(alice, supervisor)
    alice.refresh_from_db()
    assert alice.email == NEW_EMAIL
    token = freeze_token(ticket)

    # when: GET explains and changes nothing; POST freezes
    page = client.get(f"/not-me/{token}/")
    alice.refresh_from_db()
    assert alice.email == NEW_EMAIL
    response = client.post(f"/not-me/{token}/", follow=True)

    # then
    assert page.status_code == 200 and ticket.reference in page.content.decode()
    assert response.status_code == 200
    alice.refresh_from_db()
    alice.user.refresh_from_db()
    assert alice.email == "alice@example.test"
    assert alice.city == "Kuala Lumpur"
    assert alice.user.username == "alice@example.test"
    assert alice.account_status == Customer.AccountStatus.SUSPENDED
    assert not ApiToken.objects.filter(user=alice.user).exists()
    for key in keys:
        assert (
            client.__class__(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/tickets/").status_code
            == 401
        )
    assert other_browser.get("/my/").status_code == 302  # signed out
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert ticket.priority == Ticket.Priority.URGENT
    assert ticket.assignee is None
    note = Message.objects.get(ticket=ticket, internal=True, author="system")
    assert "not theirs" in note.body
    assert ActionLog.objects.filter(
        ticket=ticket, action="ticket.note_added", details__message=note.pk
    ).exists()
    told = set(
        Notification.objects.filter(ticket=ticket, template="account_frozen").values_list(
            "recipient", flat=True
        )
    )
    assert told == {"alice@example.test", NEW_EMAIL}
    assert ActionLog.objects.filter(ticket=ticket, action="account.frozen").exists()
    assert audit_verify().ok


def test_a_used_expired_or_unknown_freeze_link_changes_nothing(client, alice, supervisor):
    # given
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    assert client.post(f"/not-me/{token}/").status_code == 303

    # when: used again, and an unknown one
    again = client.post(f"/not-me/{token}/")
    unknown = client.post("/not-me/" + "x" * 43 + "/")

    # then
    assert again.status_code == 400 and unknown.status_code == 400
    assert again.content.decode().count("not valid") == unknown.content.decode().count("not valid")
    assert ActionLog.objects.filter(action="account.frozen").count() == 1


def test_an_expired_freeze_link_is_refused(client, alice, supervisor):
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    Verification.objects.filter(purpose=Verification.Purpose.NOT_ME).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = client.post(f"/not-me/{token}/", follow=True)

    assert response.status_code == 400
    alice.refresh_from_db()
    assert alice.email == NEW_EMAIL


def test_a_freeze_link_cannot_be_used_as_a_verification_link(alice, supervisor):
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    services.ticket_reopen(ticket=ticket, actor=supervisor)

    with pytest.raises(ApplicationError):
        services.verification_confirm(token=token, client_key="10.0.0.9", actor="anonymous")


def test_a_frozen_account_takes_no_change_until_a_supervisor_lifts_the_freeze(
    client, alice, supervisor, agent
):
    # given: frozen, and a change asked for since by the email on record (its login is refused)
    ticket = email_change_applied(alice, supervisor)
    client.post(f"/not-me/{freeze_token(ticket)}/")
    alice.refresh_from_db()
    change = anonymous_change(alice.email, {"full_name": "Alice Lee"}, client_key="10.0.0.4")
    confirm = link_token(verification_mail(change, "verify_request"))

    # when / then: nothing is confirmed or applies while frozen
    with pytest.raises(TransitionNotAllowed, match="frozen"):
        services.verification_confirm(token=confirm, client_key="10.0.0.4", actor="anonymous")
    with pytest.raises(TransitionNotAllowed):
        services.ticket_approve(ticket=change, actor=supervisor)
    with pytest.raises(ApplicationError):
        account_unfreeze(
            customer=alice, freeze_version=freeze_shown(alice), actor=agent, reason="Called her."
        )

    # when: a supervisor lifts it, and the same link confirms the change
    account_unfreeze(
        customer=alice,
        freeze_version=freeze_shown(alice),
        actor=supervisor,
        reason="Checked ID on a call.",
    )
    services.verification_confirm(token=confirm, client_key="10.0.0.4", actor="anonymous")
    services.ticket_approve(ticket=change, actor=supervisor)

    # then
    alice.refresh_from_db()
    assert alice.full_name == "Alice Lee"
    assert ActionLog.objects.filter(action="account.unfrozen", customer=alice).exists()


def test_a_supervisor_lifts_the_freeze_from_the_customer_page(client, alice, supervisor, agent):
    # given
    ticket = email_change_applied(alice, supervisor)
    client.post(f"/not-me/{freeze_token(ticket)}/")
    alice.refresh_from_db()
    page = f"/staff/customers/{alice.number}/"

    # when: an agent sees the freeze and cannot lift it; a supervisor can
    client.force_login(agent)
    shown = client.get(page).content.decode()
    refused = client.post(f"{page}unfreeze/", {"reason": "Called her.", "freeze_version": 1})
    alice.refresh_from_db()
    still_frozen = alice.account_status
    client.force_login(supervisor)
    shown_to_supervisor = client.get(page).content.decode()
    lifted = client.post(
        f"{page}unfreeze/", {"reason": "Checked her ID on a video call.", "freeze_version": 1}
    )

    # then
    assert 'id="account-frozen"' in shown and "Lift the freeze" not in shown
    assert refused.status_code == 403  # as every other role refusal
    assert "Only a supervisor can lift a freeze." in refused.content.decode()
    assert still_frozen == Customer.AccountStatus.SUSPENDED
    assert '<input type="hidden" name="freeze_version" value="1">' in shown_to_supervisor
    assert lifted.status_code == 302
    alice.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.ACTIVE


def test_a_link_sent_to_the_old_address_is_refused_once_the_email_changed(alice, supervisor):
    # given: a request whose link went to Alice's address before it changed
    pending = anonymous_change(
        "alice@example.test", {"address_line1": "1 Evil Street"}, client_key="10.0.0.8"
    )
    stale_token = link_token(verification_mail(pending))
    email_change_applied(alice, supervisor)

    # when
    with pytest.raises(ApplicationError):
        services.verification_confirm(token=stale_token, client_key="10.0.0.8", actor="anonymous")

    # then
    alice.refresh_from_db()
    pending.refresh_from_db()
    assert alice.address_line1 == "12 Jalan Ampang"
    assert pending.verified_at is None


def test_a_freeze_rejects_the_accounts_other_change_requests_and_leaves_a_usable_reset(
    client, alice, supervisor
):
    # given: the new address's holder files another change before the owner reacts
    ticket = email_change_applied(alice, supervisor)
    alice.refresh_from_db()
    other = owner_request(alice, {"full_name": "Mallory"})

    # when
    client.post(f"/not-me/{freeze_token(ticket)}/")

    # then
    other.refresh_from_db()
    alice.user.refresh_from_db()
    assert other.status == S.REJECTED
    assert alice.user.has_usable_password()  # the reset form mails only usable logins
    assert not alice.user.check_password("alice-demo-pass")


def open_question(alice):
    """An open general question of Alice's, written to the address on record."""
    return services.ticket_create(
        kind=Ticket.Kind.GENERAL,
        subject="Invoice",
        actor=alice,
        customer=alice,
        contact_email=alice.email,
        body="Where is my invoice?",
        status=S.OPEN,
    )


def test_the_freeze_takes_back_the_tickets_and_status_links_the_new_address_was_given(
    client, alice, supervisor, agent
):
    # given Alice's open question, whose replies followed her record to the new address, and a
    # status link for it that the new address holds
    question = open_question(alice)
    ticket = email_change_applied(alice, supervisor)
    question.refresh_from_db()
    assert question.contact_email == NEW_EMAIL
    link = services.status_link_issue(ticket=question, send_to=NEW_EMAIL)
    status_path = link.removeprefix("https://help.exabytes.example")
    assert client.get(status_path).status_code == 200

    # when the old address says it was not them
    assert client.post(f"/not-me/{freeze_token(ticket)}/").status_code == 303

    # then the question writes to the address on record again, and the new address's link to it
    # has expired: it neither opens nor answers the question
    question.refresh_from_db()
    assert question.contact_email == "alice@example.test"
    assert client.get(status_path).status_code == 410
    reply = client.post(f"{status_path}reply/", {"body": "It was me after all."})
    assert reply.status_code == 410
    assert not question.messages.filter(body__contains="after all").exists()
    staff_reply(question, agent, "Here it is.")
    assert Notification.objects.get(ticket=question, template="ticket_reply").recipient == (
        "alice@example.test"
    )
    assert audit_verify().ok


def test_the_freeze_ends_the_unsubscribe_links_mailed_to_the_address_it_takes_back(
    client, alice, supervisor
):
    # given a mailing's unsubscribe link that went to the new address while the change stood
    ticket = email_change_applied(alice, supervisor)
    alice.refresh_from_db()
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")

    # when the old address says it was not them
    assert client.post(f"/not-me/{freeze_token(ticket)}/").status_code == 303

    # then whoever holds the new address cannot turn Alice's mailings off with it
    assert client.post(f"/unsubscribe/{token}/").status_code == 400
    alice.refresh_from_db()
    assert alice.product_mailings is True


def test_an_email_change_ends_the_old_addresss_status_link_to_a_ticket_that_follows_the_record(
    client, alice, supervisor, agent
):
    # given Alice's open question, and the status link to it mailed to her address on record
    question = open_question(alice)
    link = services.status_link_issue(ticket=question, send_to=alice.email)
    status_path = link.removeprefix("https://help.exabytes.example")
    assert client.get(status_path).status_code == 200

    # when her email changes (the old mailbox may be the very reason) and the question's replies
    # follow the record to the new address
    email_change_applied(alice, supervisor)
    question.refresh_from_db()
    assert question.contact_email == NEW_EMAIL
    staff_reply(question, agent, "Your invoice is attached.")

    # then the old mailbox's link neither reads the question nor answers it as Alice
    page = client.get(status_path)
    assert page.status_code == 404
    assert "Your invoice is attached." not in page.content.decode()
    assert client.post(f"{status_path}reply/", {"body": "Old mailbox here."}).status_code == 404
    assert not question.messages.filter(body__contains="Old mailbox").exists()
    # and a link mailed to the new address works
    new_link = services.status_link_issue(ticket=question, send_to=NEW_EMAIL)
    assert client.get(new_link.removeprefix("https://help.exabytes.example")).status_code == 200


@pytest.mark.parametrize("finished", ["resolve", "close"])
def test_an_email_change_ends_the_old_addresss_links_to_a_finished_ticket_too(
    client, alice, supervisor, agent, finished
):
    # given Alice's question, answered and resolved (or closed), whose resolution email carried
    # a status link to her address on record
    question = open_question(alice)
    link = services.status_link_issue(ticket=question, send_to=alice.email)
    status_path = link.removeprefix("https://help.exabytes.example")
    services.ticket_resolve(ticket=question, actor=agent)
    if finished == "close":
        services.ticket_close(ticket=question, actor=agent)

    # when her email changes (the old mailbox may be the very reason it does)
    email_change_applied(alice, supervisor)

    # then the old mailbox's link neither reads the question nor answers it as Alice (a reply
    # would reopen it, and the staff's answer would be mailed to the old address)
    question.refresh_from_db()
    assert question.contact_email == NEW_EMAIL
    assert client.get(status_path).status_code == 404
    assert client.post(f"{status_path}reply/", {"body": "Old mailbox here."}).status_code == 404
    assert not question.messages.filter(body__contains="Old mailbox").exists()
    # and asking /track/ for a new link with the old address mails it nothing
    sent = status_link.status_link_send(
        reference=question.reference, email="alice@example.test", request_id="old-mailbox"
    )
    assert sent == "no_match"
    assert audit_verify().ok


# --- a frozen (or closed) account has no way in until a supervisor lifts the freeze ---

THIRD_EMAIL = "third@example.test"


def _post_json(client, path, data):
    return client.post(path, data, content_type="application/json")


def _second_email_change_applied(alice, supervisor):
    """A -> B, then B -> C: whoever holds B makes the second change."""
    first = email_change_applied(alice, supervisor)
    alice.refresh_from_db()
    second = owner_request(alice, {"email": THIRD_EMAIL})
    token = link_token(verification_mail(second, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
    services.ticket_approve(ticket=second, actor=supervisor)
    return first


def _frozen_after_two_email_changes(client, alice, supervisor):
    """A -> B, then B -> C, then A's freeze link."""
    first = _second_email_change_applied(alice, supervisor)
    assert client.post(f"/not-me/{freeze_token(first)}/").status_code == 303
    alice.refresh_from_db()
    alice.user.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.SUSPENDED


def test_the_freeze_takes_back_every_address_of_a_chain_of_email_changes(client, alice, supervisor):
    # given A -> B -> C, an open question of Alice's that followed her record to C, and status
    # links for it mailed to B and to C
    question = open_question(alice)
    first = _second_email_change_applied(alice, supervisor)
    question.refresh_from_db()
    assert question.contact_email == THIRD_EMAIL
    paths = [
        services.status_link_issue(ticket=question, send_to=address).removeprefix(
            "https://help.exabytes.example"
        )
        for address in (NEW_EMAIL, THIRD_EMAIL)
    ]

    # when A says the first change was not theirs
    assert client.post(f"/not-me/{freeze_token(first)}/").status_code == 303

    # then the account and its login are back at A, B's and C's links are dead, and the
    # question writes to A again
    alice.refresh_from_db()
    alice.user.refresh_from_db()
    question.refresh_from_db()
    assert alice.email == alice.user.email == "alice@example.test"
    assert [client.get(path).status_code for path in paths] == [410, 410]
    assert question.contact_email == "alice@example.test"
    frozen = ActionLog.objects.get(action="account.frozen")
    assert frozen.details["reverted"] == [
        {"field": "email", "old": THIRD_EMAIL, "new": "alice@example.test"},
        {"field": "city", "old": "Penang", "new": "Kuala Lumpur"},
    ]
    assert frozen.details["status_links_ended"] == 2
    assert audit_verify().ok

    # and once the freeze is lifted, a password reset reaches A, never C
    account_unfreeze(
        customer=alice,
        freeze_version=freeze_shown(alice),
        actor=supervisor,
        reason="Called the number on file",
    )
    for address in (THIRD_EMAIL, "alice@example.test"):
        client.post("/accounts/password-reset/", {"email": address})
    password_reset_lookups()
    sent = Notification.objects.filter(template="password_reset").values_list(
        "recipient", flat=True
    )
    assert list(sent) == ["alice@example.test"]


def test_a_freeze_after_a_second_email_change_leaves_no_way_back_in(client, alice, supervisor):
    # given
    _frozen_after_two_email_changes(client, alice, supervisor)

    # when: the address the attacker holds asks for a password reset, as does an unknown one
    frozen = client.post("/accounts/password-reset/", {"email": THIRD_EMAIL})
    unknown = client.post("/accounts/password-reset/", {"email": "nobody@example.test"})
    password_reset_lookups()

    # then: no link is mailed, and the answer is the one an unknown address gets
    sent = Notification.objects.filter(template="password_reset").values_list(
        "recipient", flat=True
    )
    assert THIRD_EMAIL not in sent
    assert (frozen.status_code, frozen["Location"]) == (unknown.status_code, unknown["Location"])


def test_a_frozen_login_signs_in_nowhere_until_the_freeze_is_lifted(client, alice, supervisor):
    # given: frozen, and its password known to whoever holds it (set after the freeze)
    _frozen_after_two_email_changes(client, alice, supervisor)
    alice.user.set_password("known-pass-4821")
    alice.user.save()
    login = {"username": alice.user.get_username(), "password": "known-pass-4821"}
    wrong = {"username": alice.user.get_username(), "password": "wrong-pass-4821"}

    # when / then: refused as a wrong password is, on the portal, on the API and by authenticate()
    refused = client.post("/accounts/login/", login, REMOTE_ADDR="10.2.0.1")
    mistyped = client.post("/accounts/login/", wrong, REMOTE_ADDR="10.2.0.2")
    assert refused.status_code == mistyped.status_code == 200
    assert refused.context["form"].errors == mistyped.context["form"].errors
    assert SESSION_KEY not in client.session
    api_refused = _post_json(client.__class__(), "/api/v1/auth/token/", login)
    api_mistyped = _post_json(client.__class__(), "/api/v1/auth/token/", wrong)
    assert api_refused.status_code == api_mistyped.status_code == 401
    assert api_refused.json() == api_mistyped.json()
    assert authenticate(**login) is None
    assert not ApiToken.objects.filter(user=alice.user).exists()

    # when: a supervisor lifts the freeze
    account_unfreeze(
        customer=alice,
        freeze_version=freeze_shown(alice),
        actor=supervisor,
        reason="Checked ID on a video call.",
    )

    # then: both work again
    assert client.post("/accounts/login/", login, REMOTE_ADDR="10.2.0.1").status_code == 302
    assert client.session[SESSION_KEY] == str(alice.user.pk)
    assert _post_json(client.__class__(), "/api/v1/auth/token/", login).status_code == 200


@pytest.mark.parametrize(
    "status", [Customer.AccountStatus.SUSPENDED, Customer.AccountStatus.CLOSED]
)
def test_a_session_or_token_of_a_login_whose_account_is_then_locked_out_no_longer_works(
    alice, alice_client, status
):
    # given: signed in, and an API token, while the account was active
    key = api_key_for(alice.user)
    token_client = alice_client.__class__(HTTP_AUTHORIZATION=f"Token {key}")
    assert alice_client.get("/my/").status_code == 200
    assert token_client.get("/api/v1/tickets/").status_code == 200

    # when: the account is suspended or closed, its password, sessions and tokens untouched
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    # then: the session is signed out, the token refused, and no new token is issued
    assert alice_client.get("/my/").status_code == 302
    assert token_client.get("/api/v1/tickets/").status_code == 401
    with pytest.raises(ApplicationError):
        api_token_issue(user=alice.user)


def test_a_reset_link_mailed_before_the_freeze_no_longer_works(client, alice, supervisor):
    # given: the address that took the account over holds a reset link
    ticket = email_change_applied(alice, supervisor)
    client.post("/accounts/password-reset/", {"email": NEW_EMAIL})
    password_reset_lookups()
    link = Notification.objects.get(template="password_reset", recipient=NEW_EMAIL).context["link"]
    path = link.removeprefix("https://help.exabytes.example")

    # when: the owner freezes the account
    client.post(f"/not-me/{freeze_token(ticket)}/")

    # then: the link is refused (the password it was made for is gone)
    page = client.get(path, follow=True)
    assert page.context["validlink"] is False


def test_staff_logins_sign_in_as_before(client, agent):
    response = client.post("/accounts/login/", {"username": "agent", "password": "agent-demo-pass"})
    assert response.status_code == 302
    assert (
        _post_json(
            client.__class__(),
            "/api/v1/auth/token/",
            {"username": "agent", "password": "agent-demo-pass"},
        ).status_code
        == 200
    )


def test_mail_to_the_reported_address_queued_before_the_freeze_is_not_sent(
    client, alice, supervisor, agent
):
    # given an applied email change, and a staff reply to the new address still in the outbox
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    deliver_outbox()
    staff_reply(ticket, agent, "Anything else we can do?")

    # when the old address says "this wasn't me" before the worker sends the reply
    assert client.post(f"/not-me/{token}/").status_code == 303
    sent = [m for m in deliver_outbox() if m.to == [NEW_EMAIL]]

    # then the reply is not mailed there (the freeze took the address back from the ticket,
    # and whoever reported it may hold it), nor is a link to the ticket made for it
    assert not any("Anything else we can do?" in m.body for m in sent)
    reply = Notification.objects.get(ticket=ticket, template="ticket_reply", recipient=NEW_EMAIL)
    assert reply.status == Notification.Status.FAILED
    live = Verification.objects.filter(
        ticket__customer=alice,
        purpose=Verification.Purpose.STATUS,
        sent_to__iexact=NEW_EMAIL,
        expires_at__gt=timezone.now(),
    )
    assert not live.exists()


def test_a_status_page_reply_that_crosses_the_freeze_is_refused(
    alice, supervisor, agent, monkeypatch
):
    # given an applied email change, and a status link mailed to the new address before the freeze
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    staff_reply(ticket, agent, "Anything else we can do?")
    [reply] = [m for m in deliver_outbox() if m.to == [NEW_EMAIL] and "/track/" in m.body]
    status_token = re.search(r"/track/([^/\s]+)/", reply.body).group(1)
    # and the old address says "this wasn't me" just after the reply's link was looked at
    find = status_link.status_link_find

    def find_then_freeze(**kwargs):
        found = find(**kwargs)
        services_freeze.account_freeze(token=token, client_key="10.0.0.9", actor="anonymous")
        return found

    monkeypatch.setattr(status_link, "status_link_find", find_then_freeze)

    # when the holder of the new address replies from the status page
    with pytest.raises(status_link.StatusLinkInvalid):
        services.status_reply_add(token=status_token, body="I am Alice", client_key="10.0.0.8")

    # then nothing of theirs reached the ticket
    assert not Message.objects.filter(ticket=ticket, body="I am Alice").exists()


def test_a_session_request_that_crosses_the_freeze_makes_no_change_request(
    alice, supervisor, monkeypatch
):
    # given an applied email change, and a session of the new address's holder on the portal
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    # and the old address says "this wasn't me" while a request of that session is in flight
    # (past the sign-in check, before it reads the record)
    services_freeze.account_freeze(token=token, client_key="10.0.0.9", actor="anonymous")
    in_flight = Customer.objects.get(pk=alice.pk)
    in_flight.account_status = Customer.AccountStatus.ACTIVE  # as that request loaded it

    # when that request asks to change the record
    with pytest.raises(ApplicationError):
        owner_request(in_flight, {"phone": "+60312349999"})

    # then no request verified by that session waits for staff after the freeze
    by_session = Ticket.objects.filter(customer=alice, verified_by=Ticket.VerifiedBy.SESSION)
    assert list(by_session.values_list("pk", flat=True)) == [ticket.pk]


def test_the_freeze_records_who_held_the_ticket_it_takes_from_them(alice, supervisor, agent):
    # given an email change an agent held until it was applied
    ticket = owner_request(alice, {"email": NEW_EMAIL})
    services.ticket_assign(ticket=ticket, assignee=agent, actor=supervisor)
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
    services.ticket_approve(ticket=ticket, actor=supervisor)

    # when the old address says "this wasn't me"
    held = services_freeze.account_freeze(
        token=freeze_token(ticket), client_key="10.0.0.9", actor="anonymous"
    )

    # then the ticket is nobody's, and the trail says whose it was
    assert held.pk == ticket.pk and held.assignee is None
    row = ActionLog.objects.get(ticket=ticket, action="ticket.priority_changed")
    assert row.details["assignee_was"] == agent.get_username()
    assert audit_verify().ok


def test_while_frozen_a_status_link_goes_only_to_the_accounts_email_on_record(
    client, alice, supervisor
):
    # given an applied email change, and a question asked from the account since, with another
    # address typed in for the answers (whoever held the account then chose it)
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    question = services.request_general(
        subject="Transfer",
        body="Where do I send it?",
        contact_email=TYPED,
        actor=alice,
        customer=alice,
    )
    assert client.post(f"/not-me/{token}/").status_code == 303
    deliver_outbox()

    # when that address asks /track/ for a link to the question, then nothing is mailed to it;
    # the email on record gets one
    assert (
        status_link.status_link_send(reference=question.reference, email=TYPED, request_id="typed")
        == "no_match"
    )
    assert (
        status_link.status_link_send(
            reference=question.reference, email="alice@example.test", request_id="owner"
        )
        == "sent"
    )
    assert not [m for m in deliver_outbox() if m.to == [TYPED]]


def test_the_freeze_takes_the_reported_address_back_from_the_accounts_finished_tickets_too(
    client, alice, supervisor, agent
):
    # given Alice's question, whose replies followed her record to the new address, resolved
    # before the old address said "this wasn't me"
    question = open_question(alice)
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    services.ticket_resolve(ticket=question, actor=agent)

    # when the old address freezes the account, and a supervisor lifts the freeze later
    assert client.post(f"/not-me/{token}/").status_code == 303
    account_unfreeze(
        customer=alice,
        freeze_version=freeze_shown(alice),
        actor=supervisor,
        reason="ID checked at the counter",
    )

    # then the question writes to the email on record, and the new address gets nothing of it
    question.refresh_from_db()
    assert question.contact_email == "alice@example.test"
    assert ActionLog.objects.filter(ticket=question, action="ticket.contact_changed").exists()
    assert (
        status_link.status_link_send(
            reference=question.reference, email=NEW_EMAIL, request_id="after-unfreeze"
        )
        == "no_match"
    )
    assert audit_verify().ok
