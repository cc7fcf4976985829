import base64
import json
import re
from datetime import timedelta

import pytest
import time_machine
from anymail.exceptions import AnymailInsecureWebhookWarning
from django.core import mail
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from domains.models import Domain
from tests.tickets.resend_helpers import (
    API_URL,
    TYPED,
    actions,
    mails_to,
    send_outbox,
    tags_of,
)
from tickets import services
from tickets.audit import audit_verify
from tickets.models import ActionLog, Notification, Ticket

pytestmark = pytest.mark.django_db

S = Ticket.Status
HOOK = "/anymail/postmark/tracking/"
SECRET = "hookuser:hookpass"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def postmark_bounce(notification, bounce_type="HardBounce", with_metadata=True):
    payload = {
        "RecordType": "Bounce",
        "Type": bounce_type,
        "TypeCode": 1,
        "ID": 4323372036854775807,
        "MessageID": notification.esp_message_id,
        "Tag": "password-resend-notice",
        "Email": notification.recipient,
        "From": "support@exabytes.example",
        "BouncedAt": "2026-01-05T10:11:12Z",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Inactive": True,
        "CanActivate": True,
        "Subject": "A password reset for alice-shop.test was sent to this address",
        "ServerID": 23,
        "MessageStream": "outbound",
    }
    if with_metadata:
        payload["Metadata"] = {"notification": str(notification.uuid), "ticket": "x"}
    return payload


def postmark_delivery(notification):
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": notification.esp_message_id,
        "Recipient": notification.recipient,
        "Tag": "password-resend-notice",
        "DeliveredAt": "2026-01-05T10:11:12Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"notification": str(notification.uuid)},
    }


def post(client, payload, auth=AUTH):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client.post(HOOK, body, content_type="application/json", **auth)


def test_a_hard_bounce_of_the_notice_refers_the_ticket_and_marks_the_address(client, notice):
    # when Postmark reports a hard bounce of our notice
    response = post(client, postmark_bounce(notice))
    send_outbox()

    # then the address on record is dead and the ticket referred for staff; the typed address
    # hears nothing of the bounce (its acknowledgement already gave the route)
    assert response.status_code == 200
    notice.refresh_from_db()
    assert notice.status == "bounced"
    domain = Domain.objects.get(name="alice-shop.test")
    assert domain.registrant_email_status == "bouncing"
    ticket = notice.ticket
    ticket.refresh_from_db()
    assert ticket.status == S.REFERRED
    assert "domain.registrant_email_bouncing" in actions(ticket)
    assert ticket.resend.outcome == "referred"
    assert [tags_of(m) for m in mails_to(TYPED)] == [["password-resend-received"]]


def _status_page(client, path):
    """The status page as its reader sees it, without the per-response CSRF token."""
    response = client.get(path)
    assert response.status_code == 200
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_a_bounce_of_the_notice_leaves_the_typed_addresss_status_page_as_it_was(client, notice):
    # given the status page of the resend, as the address typed on the form reads it once its
    # reset went out: resolved, as it would be for a domain that is not ours
    [received] = mails_to(TYPED)
    path = re.search(r"https?://[^/\s]+(/track/[^/\s]+/)", received.body).group(1)
    before = _status_page(client, path)
    ticket = Ticket.objects.get(pk=notice.ticket_id)

    # when our notice to the registration address bounces, minutes later
    with time_machine.travel(timezone.now() + timedelta(minutes=7)):
        post(client, postmark_bounce(notice))
        after = _status_page(client, path)

    # then the ticket is referred for staff, and the page reads exactly as before: a "Last
    # update" that moved after "Done" would tell whoever typed any domain name that it is ours
    # and that its registration address is dead, a domain open to takeover
    ticket.refresh_from_db()
    assert ticket.status == S.REFERRED
    assert after.splitlines() == before.splitlines()


def test_a_bounce_of_the_notice_moves_the_owners_etag_with_the_status_they_are_shown(
    client, fake_opensrs, alice_shop, alice_client
):
    # given a resend of her own domain that Alice asked for from her address, resolved, and
    # her API client polling it
    response = APIClient().post(
        API_URL, {"domain": "alice-shop.test", "contact_email": "alice@example.test"}, format="json"
    )
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    services.password_resend_process(ticket_id=ticket.pk)
    send_outbox()
    notice = Notification.objects.get(ticket=ticket, template="password_resend_notice")
    detail = f"/api/v1/tickets/{ticket.reference}/"
    before = alice_client.get(detail)
    assert before.json()["status"] == S.RESOLVED

    # when our notice to the registration address bounces
    post(client, postmark_bounce(notice))

    # then the owner is shown the referral, and her ETag moved with it
    after = alice_client.get(detail, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.json()["status"] == S.REFERRED
    assert after["ETag"] != before["ETag"]


@pytest.mark.parametrize("field", ["Description", "Details", "MessageID"])
def test_a_bounce_holding_a_lone_surrogate_is_still_recorded(client, notice, field):
    # given a bounce whose words (the remote mail server's, or its message id) hold an unpaired
    # UTF-16 surrogate, escaped in the JSON (\udc80) but held by no UTF-8 text column
    bounce = postmark_bounce(notice)
    bounce[field] = f"{bounce[field]}MARK"
    body = json.dumps(bounce).replace("MARK", "\\udc80")

    # when Postmark posts it
    response = post(client, body)

    # then the bounce counts, as one without the character would
    assert response.status_code == 200
    notice.refresh_from_db()
    assert notice.status == "bounced"
    assert Domain.objects.get(name="alice-shop.test").registrant_email_status == "bouncing"
    assert audit_verify().ok


def test_a_repeated_bounce_changes_nothing(client, notice):
    post(client, postmark_bounce(notice))
    send_outbox()
    rows = ActionLog.objects.count()
    notifications = Notification.objects.count()

    response = post(client, postmark_bounce(notice))

    assert response.status_code == 200
    assert ActionLog.objects.count() == rows
    assert Notification.objects.count() == notifications


def test_a_bounce_also_refers_the_other_resolved_tickets_of_the_domain(client, notice):
    # given an earlier resend for the same domain, resolved
    other = Ticket.objects.create(
        kind=Ticket.Kind.RESEND_PASSWORD,
        subject="Password resend for alice-shop.test",
        domain=notice.ticket.domain,
        requested_domain="alice-shop.test",
        contact_email="other@typed.test",
        status=S.RESOLVED,
    )

    post(client, postmark_bounce(notice))

    other.refresh_from_db()
    assert other.status == S.REFERRED
    assert not Notification.objects.filter(ticket=other).exists()


@pytest.mark.parametrize("bounce_type", ["SoftBounce", "Transient", "DnsError"])
def test_a_soft_bounce_is_not_final(client, notice, bounce_type):
    response = post(client, postmark_bounce(notice, bounce_type=bounce_type))

    assert response.status_code == 200
    notice.refresh_from_db()
    assert notice.status == "sent"
    notice.ticket.refresh_from_db()
    assert notice.ticket.status == S.RESOLVED
    assert Domain.objects.get(name="alice-shop.test").registrant_email_status == "valid"


def test_a_bad_email_address_rejection_is_final(client, notice):
    post(client, postmark_bounce(notice, bounce_type="BadEmailAddress"))

    notice.refresh_from_db()
    assert notice.status == "bounced"


def test_a_bounce_without_metadata_is_matched_by_the_esp_message_id(client, notice):
    post(client, postmark_bounce(notice, with_metadata=False))

    notice.refresh_from_db()
    assert notice.status == "bounced"


def test_a_delivery_marks_the_notification_delivered_once(client, notice):
    assert post(client, postmark_delivery(notice)).status_code == 200
    assert post(client, postmark_delivery(notice)).status_code == 200

    notice.refresh_from_db()
    assert notice.status == "delivered"
    assert ActionLog.objects.filter(action="notification.delivered").count() == 1


def test_a_delivery_after_a_bounce_does_not_undo_it(client, notice):
    post(client, postmark_bounce(notice))
    post(client, postmark_delivery(notice))

    notice.refresh_from_db()
    assert notice.status == "bounced"


def test_an_event_for_an_unknown_message_is_accepted_and_ignored(client, notice):
    payload = postmark_bounce(notice, with_metadata=False)
    payload["MessageID"] = "00000000-0000-0000-0000-000000000000"
    rows = ActionLog.objects.count()

    assert post(client, payload).status_code == 200
    assert ActionLog.objects.count() == rows


def test_an_event_naming_another_recipient_is_ignored(client, notice):
    payload = postmark_bounce(notice)
    payload["Email"] = "someone-else@example.test"

    post(client, payload)

    notice.refresh_from_db()
    assert notice.status == "sent"


def test_a_bounce_of_an_ordinary_email_only_marks_that_email(client, alice):
    ticket = services.request_general(
        subject="Hello", body="hi", contact_email=alice.email, actor=alice
    )
    send_outbox()
    received = Notification.objects.get(ticket=ticket)

    post(client, postmark_bounce(received))

    received.refresh_from_db()
    assert received.status == "bounced"
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"hookuser:wrong").decode()},
        {"HTTP_AUTHORIZATION": "Bearer hookpass"},
    ],
)
def test_a_webhook_without_the_secret_is_refused(client, notice, auth):
    response = post(client, postmark_bounce(notice), auth=auth)

    assert response.status_code == 400
    notice.refresh_from_db()
    assert notice.status == "sent"


def test_webhooks_refuse_everything_when_no_secret_is_configured(client, settings, notice):
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}

    with pytest.warns(AnymailInsecureWebhookWarning):
        response = post(client, postmark_bounce(notice), auth={})

    assert response.status_code == 400
    notice.refresh_from_db()
    assert notice.status == "sent"


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', "", "\xff"])
def test_a_malformed_payload_is_a_400_not_a_500(client, body):
    response = post(client, body)

    assert response.status_code == 400


def test_the_receiver_is_connected_through_the_app_config():
    from anymail.signals import tracking

    keys = [entry[0][0] for entry in tracking.receivers]
    assert "tickets.inbound.on_tracking" in keys


# --- sends the worker did not live to record -------------------------------------------------


@pytest.fixture
def handed_over_unrecorded(alice, settings):
    """An email the ESP accepted from a worker that was killed before it recorded the send."""
    from django.utils import timezone

    from tests.factories import TicketFactory
    from tickets import emails

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    ticket = TicketFactory(customer=alice, subject="Renewal")
    with transaction.atomic():
        notification = services.notification_queue(
            ticket=ticket, template="ticket_received", recipient=alice.email, context={}
        )
    # what notification_send does up to the hand-over: claim the row, give it to the ESP
    long_ago = timezone.now() - settings.NOTIFICATION_SENDING_STALE_AFTER - timedelta(minutes=1)
    Notification.objects.filter(pk=notification.pk).update(
        status="sending", claimed_at=long_ago, attempts=1
    )
    emails.build_message(notification).send()
    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    return notification


def postmark_open(notification):
    return {
        "RecordType": "Open",
        "MessageStream": "outbound",
        "FirstOpen": True,
        "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "Recipient": notification.recipient,
        "ReceivedAt": "2026-01-05T10:11:12Z",
        "Tag": "",
        "UserAgent": "Mozilla/5.0",
        "Metadata": {"notification": str(notification.uuid)},
    }


def sent_audit_rows(notification):
    return ActionLog.objects.filter(
        action="notification.sent", details__notification=str(notification.uuid)
    )


def test_a_delivery_event_records_a_send_the_worker_died_before_recording(
    client, handed_over_unrecorded
):
    row = handed_over_unrecorded

    response = post(client, postmark_delivery(row))

    # then the send is recorded once from the ESP's word, and the sweep does not send it again
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.status == "delivered" and row.sent_at is not None
    assert row.esp_message_id == postmark_delivery(row)["MessageID"]
    (sent,) = sent_audit_rows(row)
    assert sent.details["recorded_from"] == "Postmark delivered"
    assert actions(row.ticket)[-1] == "notification.delivered"
    services.notifications_requeue_due()
    assert send_outbox() == []
    assert len(mail.outbox) == 1
    assert audit_verify().ok


def test_any_later_event_proves_acceptance_too(client, handed_over_unrecorded):
    row = handed_over_unrecorded

    post(client, postmark_open(row))

    row.refresh_from_db()
    assert row.status == "sent"
    (sent,) = sent_audit_rows(row)
    assert sent.details["recorded_from"] == "Postmark opened"
    services.notifications_requeue_due()
    assert send_outbox() == []
    assert len(mail.outbox) == 1


def test_without_an_event_the_sweep_sends_an_unrecorded_email_again(handed_over_unrecorded):
    # no word from the ESP: sent again rather than lost (at least once), with the same Message-ID
    row = handed_over_unrecorded

    services.notifications_requeue_due()

    assert send_outbox() == ["sent"]
    assert len(mail.outbox) == 2
    assert mail.outbox[0].extra_headers["Message-ID"] == mail.outbox[1].extra_headers["Message-ID"]
    assert sent_audit_rows(row).count() == 1


def test_an_event_for_a_row_handed_back_to_the_outbox_stops_its_second_send(
    client, handed_over_unrecorded
):
    row = handed_over_unrecorded
    services.notifications_requeue_due()  # the stale claim goes back to pending
    assert Notification.objects.get(pk=row.pk).status == "pending"

    post(client, postmark_delivery(row))

    assert send_outbox() == []
    assert services.notification_send(notification_id=row.pk) == "skipped"
    assert len(mail.outbox) == 1


def test_an_event_before_the_esp_answers_is_recorded_once(client, alice, settings):
    # The ESP's webhook can overtake its API answer: the worker then finds the send recorded.
    from anymail.signals import post_send

    from tests.factories import TicketFactory

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    ticket = TicketFactory(customer=alice, subject="Renewal")
    with transaction.atomic():
        notification = services.notification_queue(
            ticket=ticket, template="ticket_received", recipient=alice.email, context={}
        )

    def webhook_first(sender, message, status, esp_name, **kwargs):
        post(client, postmark_delivery(Notification.objects.get(pk=notification.pk)))

    post_send.connect(webhook_first, weak=False)
    try:
        assert services.notification_send(notification_id=notification.pk) == "sent"
    finally:
        post_send.disconnect(webhook_first)

    notification.refresh_from_db()
    assert notification.status == "delivered"
    assert sent_audit_rows(notification).count() == 1
    assert len(mail.outbox) == 1
    assert audit_verify().ok


def test_an_event_naming_another_recipient_records_nothing(client, handed_over_unrecorded):
    # A misrouted or forged event must not stop a send that may never have reached its owner.
    row = handed_over_unrecorded
    payload = {**postmark_delivery(row), "Recipient": "someone.else@example.test"}

    post(client, payload)

    row.refresh_from_db()
    assert row.status == "sending"
    assert not sent_audit_rows(row).exists()
    services.notifications_requeue_due()
    assert send_outbox() == ["sent"]
    assert mail.outbox[-1].to == [row.recipient]


def test_a_repeated_event_for_a_recorded_send_changes_nothing(client, handed_over_unrecorded):
    row = handed_over_unrecorded
    post(client, postmark_delivery(row))
    rows = ActionLog.objects.count()

    response = post(client, postmark_delivery(row))

    assert response.status_code == 200
    assert ActionLog.objects.count() == rows
    assert sent_audit_rows(row).count() == 1


def test_a_bounce_of_an_unrecorded_send_is_a_bounce_and_is_not_sent_again(
    client, handed_over_unrecorded
):
    row = handed_over_unrecorded

    post(client, postmark_bounce(row))

    row.refresh_from_db()
    assert row.status == "bounced"
    services.notifications_requeue_due()
    assert send_outbox() == []
    assert len(mail.outbox) == 1
