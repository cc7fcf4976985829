import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from helpdesk.exceptions import ApplicationError, RateLimited
from tests.factories import TicketFactory
from tests.markers import postgresql_only
from tests.threads import meet_after, run_at_once
from tests.tickets.verification_helpers import (
    anonymous_change,
    deliver_outbox,
    html_part,
    link_token,
    verification_mail,
)
from tickets import services
from tickets.audit import audit_verify
from tickets.models import ActionLog, Notification, Ticket, Verification
from tickets.services import verification as verification_service
from tickets.tasks import verifications_expire as verifications_expire_task

S = Ticket.Status
API_VERIFY = "/api/v1/verify/"


@pytest.fixture
def awaiting(alice):
    """A ticket waiting for its requester to prove they read the email on record."""
    return TicketFactory(
        customer=alice, status=S.AWAITING_VERIFICATION, kind=Ticket.Kind.RESEND_PASSWORD
    )


def start(ticket, send_to="alice@example.test", purpose="requester"):
    verification = services.verification_start(ticket=ticket, purpose=purpose, send_to=send_to)
    notification = Notification.objects.get(idempotency_key=f"verify:{verification.pk}")
    return verification, link_token(notification)


@pytest.mark.django_db
def test_verification_start_keeps_only_the_hash_and_mails_a_site_url_link(awaiting, mailoutbox):
    # when
    verification, token = start(awaiting)

    # then
    assert len(token) >= 43
    assert verification.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not Verification.objects.filter(token_hash=token).exists()
    assert verification.expires_at == pytest.approx(
        timezone.now() + settings.VERIFICATION_TTL, abs=timedelta(seconds=5)
    )
    [message] = deliver_outbox()
    assert message.to == ["alice@example.test"]
    link = f"https://help.exabytes.example/verify/{token}/"
    assert link in message.body
    assert link in html_part(message)
    assert awaiting.reference in message.subject


@pytest.mark.django_db
def test_the_link_ignores_the_request_host(awaiting, client, mailoutbox):
    # given a request arriving with a forged Host header
    client.get("/", HTTP_HOST="evil.example", HTTP_X_FORWARDED_HOST="evil.example")

    # when
    _, token = start(awaiting)

    # then
    [message] = deliver_outbox()
    assert "evil.example" not in message.body
    assert f"https://help.exabytes.example/verify/{token}/" in message.body


@pytest.mark.django_db
def test_confirm_opens_the_ticket_and_audits(awaiting):
    # given
    verification, token = start(awaiting)

    # when
    ticket = services.verification_confirm(token=token, client_key="1.2.3.4", actor="anonymous")

    # then
    assert ticket.status == S.OPEN
    verification.refresh_from_db()
    assert verification.used_at is not None
    actions = list(ActionLog.objects.filter(ticket=awaiting).values_list("action", flat=True))
    assert "verification.confirmed" in actions
    event = ActionLog.objects.get(ticket=awaiting, action="ticket.status_changed")
    assert event.details["from"] == S.AWAITING_VERIFICATION
    assert event.details["to"] == S.OPEN


@pytest.mark.django_db
def test_a_used_token_is_refused_with_the_generic_message(awaiting):
    # given
    _, token = start(awaiting)
    services.verification_confirm(token=token, client_key="k", actor="anonymous")

    # when
    with pytest.raises(ApplicationError) as excinfo:
        services.verification_confirm(token=token, client_key="k", actor="anonymous")

    # then
    assert excinfo.value.message == services.VERIFICATION_INVALID
    assert excinfo.value.status_code == 400


@pytest.mark.django_db
def test_an_expired_token_is_refused_and_the_ticket_stays_unverified(awaiting):
    # given
    _, token = start(awaiting)

    # when
    with (
        time_machine.travel(timezone.now() + settings.VERIFICATION_TTL + timedelta(minutes=1)),
        pytest.raises(ApplicationError) as excinfo,
    ):
        services.verification_confirm(token=token, client_key="k", actor="anonymous")

    # then
    assert excinfo.value.message == services.VERIFICATION_INVALID
    awaiting.refresh_from_db()
    assert awaiting.status == S.AWAITING_VERIFICATION


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.upper(),
        lambda t: t + "x",
        lambda t: t[:20],
        lambda t: hashlib.sha256(t.encode()).hexdigest(),
        lambda t: "",
        lambda t: "../" + t,
        lambda t: t + "\x00",
    ],
)
def test_a_tampered_token_is_refused(awaiting, tamper):
    # given
    _, token = start(awaiting)

    # when
    with pytest.raises(ApplicationError) as excinfo:
        services.verification_confirm(token=tamper(token), client_key="k", actor="anonymous")

    # then
    assert excinfo.value.message == services.VERIFICATION_INVALID
    awaiting.refresh_from_db()
    assert awaiting.status == S.AWAITING_VERIFICATION


@pytest.mark.django_db
def test_a_token_moves_only_its_own_ticket(alice, bob):
    # given two tickets waiting, each with its own link
    mine = TicketFactory(customer=alice, status=S.AWAITING_VERIFICATION)
    other = TicketFactory(customer=bob, status=S.AWAITING_VERIFICATION)
    _, my_token = start(mine)
    _, other_token = start(other, send_to=bob.email)

    # when the other ticket's token is used
    confirmed = services.verification_confirm(token=other_token, client_key="k", actor="anonymous")

    # then only that ticket moved, and my token still works for mine alone
    mine.refresh_from_db()
    assert confirmed.pk == other.pk
    assert mine.status == S.AWAITING_VERIFICATION
    assert services.verification_confirm(token=my_token, client_key="k", actor="x").pk == mine.pk


@pytest.mark.django_db
def test_failed_tries_lock_every_verification_of_the_ticket(awaiting, settings):
    # given a used link and a second, still valid link for the same ticket
    settings.VERIFICATION_MAX_ATTEMPTS = 3
    _, used = start(awaiting)
    Verification.objects.filter(ticket=awaiting).update(used_at=timezone.now())
    fresh, token = start(awaiting)

    # when the used link is presented as many times as allowed
    for _ in range(3):
        with pytest.raises(ApplicationError):
            services.verification_confirm(token=used, client_key="k", actor="anonymous")

    # then even the valid link is refused, and the refusals are audited
    with pytest.raises(ApplicationError) as excinfo:
        services.verification_confirm(token=token, client_key="k", actor="anonymous")
    assert excinfo.value.message == services.VERIFICATION_INVALID
    awaiting.refresh_from_db()
    assert awaiting.status == S.AWAITING_VERIFICATION
    fresh.refresh_from_db()
    assert fresh.used_at is None
    reasons = [
        e.details["reason"]
        for e in ActionLog.objects.filter(ticket=awaiting, action="verification.refused")
    ]
    assert reasons == ["used", "used", "used", "locked"]


@pytest.mark.django_db
def test_a_requester_link_for_a_ticket_no_longer_waiting_is_refused(awaiting):
    # given staff rejected the ticket before the link was used
    _, token = start(awaiting)
    services.ticket_reject(ticket=awaiting, actor="staff:agent", reason="Spam.")

    # when / then
    with pytest.raises(ApplicationError):
        services.verification_confirm(token=token, client_key="k", actor="anonymous")
    awaiting.refresh_from_db()
    assert awaiting.status == S.REJECTED


@pytest.mark.django_db
def test_verification_is_rate_limited_per_client(awaiting, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "verify_per_client": (2, 3600)}
    for _ in range(2):
        with pytest.raises(ApplicationError):
            services.verification_confirm(token="x" * 43, client_key="9.9.9.9", actor="a")

    # when / then
    with pytest.raises(RateLimited):
        services.verification_confirm(token="x" * 43, client_key="9.9.9.9", actor="a")


# --- the portal page ---


@pytest.mark.django_db
def test_get_on_the_link_shows_a_button_and_changes_nothing(awaiting, client):
    # given
    verification, token = start(awaiting)
    events = ActionLog.objects.count()

    # when a mail scanner fetches the link twice
    first = client.get(f"/verify/{token}/")
    client.get(f"/verify/{token}/")

    # then
    assert first.status_code == 200
    assert b'method="post"' in first.content
    assert b"csrfmiddlewaretoken" in first.content
    assert "no-store" in first["Cache-Control"]
    awaiting.refresh_from_db()
    verification.refresh_from_db()
    assert awaiting.status == S.AWAITING_VERIFICATION
    assert verification.used_at is None
    assert verification.attempts == 0
    assert ActionLog.objects.count() == events


@pytest.mark.django_db
def test_post_on_the_link_confirms_and_shows_the_reference_and_status(awaiting, client):
    # given
    _, token = start(awaiting)

    # when
    response = client.post(f"/verify/{token}/", follow=True)

    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert awaiting.reference in content
    assert "Open" in content
    assert "What happens next" in content
    awaiting.refresh_from_db()
    assert awaiting.status == S.OPEN


@pytest.mark.django_db
def test_post_with_a_bad_link_says_the_link_is_unknown(client, awaiting):
    # when
    response = client.post("/verify/not-a-real-token-at-all-0123456789/")

    # then
    assert response.status_code == 400
    assert "We do not know this link" in response.content.decode()


@pytest.mark.django_db
def test_the_verify_page_post_needs_csrf(awaiting):
    # given
    _, token = start(awaiting)
    client = APIClient(enforce_csrf_checks=True)

    # when
    response = client.post(f"/verify/{token}/")

    # then
    assert response.status_code == 403
    awaiting.refresh_from_db()
    assert awaiting.status == S.AWAITING_VERIFICATION


# --- the API ---


@pytest.mark.django_db
def test_verify_api_answers_reference_and_status(awaiting, alice):
    # given a client with a session but no CSRF token: the API does not use the session
    _, token = start(awaiting)
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(alice.user)

    # when
    response = api.post(API_VERIFY, {"token": token}, format="json")

    # then
    assert response.status_code == 200
    assert response.json() == {"reference": awaiting.reference, "status": "open"}


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"token": "unknown-token-0123456789abcdef"}, {"token": "x"}])
def test_verify_api_refuses_unknown_tokens_with_400(body):
    # when
    response = APIClient().post(API_VERIFY, body, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == {"detail": services.VERIFICATION_INVALID}


@pytest.mark.django_db
def test_verify_api_refuses_used_and_expired_tokens_alike(awaiting, alice):
    # given
    _, used = start(awaiting)
    api = APIClient()
    api.post(API_VERIFY, {"token": used}, format="json")
    other = TicketFactory(customer=alice, status=S.AWAITING_VERIFICATION)
    _, expired = start(other)

    # when
    again = api.post(API_VERIFY, {"token": used}, format="json")
    with time_machine.travel(timezone.now() + settings.VERIFICATION_TTL + timedelta(seconds=1)):
        late = api.post(API_VERIFY, {"token": expired}, format="json")

    # then
    assert again.status_code == late.status_code == 400
    assert again.json() == late.json() == {"detail": services.VERIFICATION_INVALID}


@pytest.mark.django_db
def test_verify_api_without_a_token_is_a_field_error():
    # when
    response = APIClient().post(API_VERIFY, {}, format="json")

    # then
    assert response.status_code == 400
    assert "token" in response.json()


# --- expiry ---


@pytest.mark.django_db
def test_tickets_whose_links_expired_are_expired_in_batches(alice):
    # given
    stale = [TicketFactory(customer=alice, status=S.AWAITING_VERIFICATION) for _ in range(3)]
    for ticket in stale:
        start(ticket)
    never_sent = TicketFactory(customer=None, status=S.AWAITING_VERIFICATION)

    # when a day later, a first small batch and then the rest
    with time_machine.travel(timezone.now() + settings.VERIFICATION_TTL + timedelta(minutes=5)):
        fresh = TicketFactory(customer=alice, status=S.AWAITING_VERIFICATION)
        start(fresh)
        first = services.verifications_expire(batch_size=2)
        rest = verifications_expire_task()
        again = verifications_expire_task()

    # then
    assert (first, rest, again) == (2, 2, 0)
    for ticket in [*stale, never_sent]:
        ticket.refresh_from_db()
        assert ticket.status == S.EXPIRED
    fresh.refresh_from_db()
    assert fresh.status == S.AWAITING_VERIFICATION
    event = ActionLog.objects.filter(ticket=never_sent, action="ticket.status_changed").get()
    assert event.details["to"] == S.EXPIRED
    assert event.actor == "system"


@pytest.mark.django_db
def test_a_ticket_with_a_live_link_is_not_expired(alice):
    # given a link that is still valid
    ticket = TicketFactory(customer=alice, status=S.AWAITING_VERIFICATION)
    start(ticket)

    # when
    with time_machine.travel(timezone.now() + settings.VERIFICATION_TTL - timedelta(minutes=5)):
        count = services.verifications_expire()

    # then
    assert count == 0
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION


def test_the_expiry_sweep_runs_every_15_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["verifications-expire"]
    assert entry["task"] == "tickets.verifications_expire"
    assert entry["schedule"].minute == {0, 15, 30, 45}


@postgresql_only("two transactions at once, each on its own connection")
@pytest.mark.django_db(transaction=True)
def test_one_link_confirmed_twice_at_once_applies_the_change_once(alice, monkeypatch, settings):
    # given Alice's anonymous phone change, its link mailed to her, and two presses of the
    # confirm button (a double click, or two tabs) that both read the link as live
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    ticket = anonymous_change(alice.email, {"phone": "+60 12-999 0000"}, client_key="10.0.0.7")
    token = link_token(verification_mail(ticket))
    # (both hold the token's digest before either reads the link under its locks)
    meet_after(monkeypatch, verification_service, "token_hash_if_wellformed")
    answers: list[int] = []

    def press() -> None:
        answers.append(Client().post(f"/verify/{token}/").status_code)

    # when both run at once
    run_at_once(press, [(), ()])

    # then one confirms and the other is told the link was used; the change is applied once
    assert sorted(answers) == [303, 400]
    assert ActionLog.objects.filter(ticket=ticket, action="verification.confirmed").count() == 1
    assert ActionLog.objects.filter(ticket=ticket, action="customer.details_changed").count() == 1
    alice.refresh_from_db()
    assert alice.phone == "+60129990000"
    assert audit_verify().ok
