"""The owner sees what they confirm: the verification email and page list the changes."""

import json

import pytest

from tests.tickets.verification_helpers import (
    anonymous_lookups,
    deliver_outbox,
    html_part,
    link_token,
    verification_mail,
)
from tickets import services
from tickets.models import ActionLog, Ticket, Verification
from tickets.selectors.verification import (
    mask_email,
    mask_field_value,
    verification_link_state,
    verification_summary,
)

S = Ticket.Status
CHANGES = {
    "phone": "+60 12-345 6789",
    "email": "alice.new@example.org",
    "address_line1": "7 Lorong Maarof",
    "city": "Petaling Jaya",
}


def anonymous_request(changes=None):
    ticket = services.request_modify(
        email="alice@example.test",
        customer=None,
        changes=changes or CHANGES,
        note="",
        client_key="10.0.0.1",
        actor="anonymous",
        channel=Ticket.Channel.PORTAL,
    )
    anonymous_lookups()  # what the worker does next
    ticket.refresh_from_db()
    return ticket


# --- the summary ---


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("email", "alice@example.test", "a***@example.test"),
        ("phone", "+60312345678", "***678"),
        ("full_name", "Alice  Tan", "A*** T***"),
        ("address_line1", "12 Jalan Ampang", "1*** J*** A***"),
        ("address_line2", "", ""),
        ("city", "Kuala Lumpur", "Kuala Lumpur"),
        ("postcode", "50450", "50450"),
        ("country", "MY", "MY"),
    ],
)
def test_old_values_are_masked_where_personal(field, value, shown):
    assert mask_field_value(field, value) == shown


def test_mask_email_of_nothing_is_nothing():
    assert mask_email("") == ""


@pytest.mark.django_db
def test_the_summary_lists_each_pending_change_and_is_plain_json(alice, settings):
    # given
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    ticket = anonymous_request()

    # when
    summary = verification_summary(ticket=ticket)

    # then
    assert json.loads(json.dumps(summary)) == summary
    assert summary["reference"] == ticket.reference
    assert summary["kind"] == "modify_info"
    by_field = {change["field"]: change for change in summary["changes"]}
    assert by_field["phone"] == {
        "field": "phone",
        "label": "Phone",
        "old": "***678",
        "new": "+60123456789",
        "next": "at_once",
    }
    assert by_field["email"]["old"] == "a***@example.test"
    assert by_field["email"]["new"] == "alice.new@example.org"
    assert by_field["email"]["next"] == "supervisor"
    assert by_field["address_line1"]["old"] == "1*** J*** A***"
    assert by_field["city"]["old"] == "Kuala Lumpur"
    assert summary["needs_supervisor"] is True
    assert summary["new_email"] is True


@pytest.mark.django_db
def test_without_the_low_risk_policy_every_change_waits_for_staff(alice, settings):
    settings.MODIFY_AUTO_APPLY_LOW_RISK = False
    ticket = anonymous_request({"phone": "+60 12-345 6789"})

    summary = verification_summary(ticket=ticket)

    assert [change["next"] for change in summary["changes"]] == ["staff"]
    assert summary["at_once"] is False


@pytest.mark.django_db
def test_a_new_email_link_summary_names_only_the_reference(alice):
    ticket = anonymous_request()

    summary = verification_summary(ticket=ticket, purpose=Verification.Purpose.NEW_EMAIL)

    assert summary == {
        "reference": ticket.reference,
        "kind": "modify_info",
        "purpose": "new_email",
    }


@pytest.mark.django_db
def test_an_opt_out_summary_names_the_lists(alice):
    ticket = services.request_opt_out(
        email="alice@example.test",
        lists=["reseller_newsletters"],
        client_key="10.0.0.1",
        actor="anonymous",
        channel=Ticket.Channel.PORTAL,
    )

    summary = verification_summary(ticket=ticket)

    assert summary["lists"] == ["Reseller newsletters"]
    assert "changes" not in summary


# --- the email ---


@pytest.mark.django_db
def test_the_verification_email_lists_reference_fields_and_masked_old_values(alice, mailoutbox):
    # when
    ticket = anonymous_request()

    # then
    [message] = deliver_outbox()
    assert message.to == ["alice@example.test"]
    for part in (message.body, html_part(message)):
        assert ticket.reference in part
        for label, new in [
            ("Phone", "+60123456789"),
            ("Email address", "alice.new@example.org"),
            ("Address line 1", "7 Lorong Maarof"),
            ("City", "Petaling Jaya"),
        ]:
            assert label in part
            assert new in part
        assert "***678" in part
        assert "a***@example.test" in part
        assert "1*** J*** A***" in part
        assert "+60312345678" not in part
        assert "alice@example.test" not in part
        assert "12 Jalan Ampang" not in part
        assert "changed as soon as you confirm." in part
        assert "changed once a supervisor approves it." in part
        assert "We will also send a link to the new email address" in part


@pytest.mark.django_db
def test_the_html_part_escapes_the_new_values(alice, mailoutbox):
    # when
    anonymous_request({"address_line1": "<b>1</b> Jalan"})

    # then
    [message] = deliver_outbox()
    assert "&lt;b&gt;1&lt;/b&gt; Jalan" in html_part(message)
    assert "<b>1</b> Jalan" not in html_part(message)
    assert "<b>1</b> Jalan" in message.body


@pytest.mark.django_db
def test_the_new_email_link_says_what_happens_next_and_nothing_of_the_record(alice, mailoutbox):
    # given the owner confirmed a request that changes the email address
    ticket = anonymous_request()
    token = link_token(verification_mail(ticket))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")

    # when
    sent = deliver_outbox()

    # then
    [message] = [m for m in sent if m.to == ["alice.new@example.org"]]
    for part in (message.body, html_part(message)):
        assert ticket.reference in part
        assert "waits for a supervisor" in part
        assert "Petaling Jaya" not in part
        assert "***678" not in part


# --- the page ---


@pytest.mark.django_db
def test_get_on_the_link_shows_the_changes_and_consumes_nothing(alice, client):
    # given
    ticket = anonymous_request()
    token = link_token(verification_mail(ticket))
    events = ActionLog.objects.count()

    # when
    response = client.get(f"/verify/{token}/")

    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert ticket.reference in content
    for shown in ("+60123456789", "alice.new@example.org", "7 Lorong Maarof", "Petaling Jaya"):
        assert shown in content
    assert "***678" in content
    assert "a***@example.test" in content
    assert "+60312345678" not in content
    assert "What happens next" in content
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION
    verification = Verification.objects.get(ticket=ticket, purpose="requester")
    assert verification.used_at is None
    assert verification.attempts == 0
    assert ActionLog.objects.count() == events

    # and the link still confirms
    response = client.post(f"/verify/{token}/")
    assert response.status_code == 303
    ticket.refresh_from_db()
    assert ticket.status != S.AWAITING_VERIFICATION


@pytest.mark.django_db
def test_an_unknown_token_says_so_before_any_button_and_shows_no_reference(alice, client):
    # given
    ticket = anonymous_request()

    # when
    response = client.get("/verify/not-a-real-token-at-all-0123456789/")

    # then
    assert response.status_code == 404
    content = response.content.decode()
    assert "We do not know this link" in content
    assert ticket.reference not in content
    assert "+60123456789" not in content
    assert 'method="post"' not in content.split("<main", 1)[1]


@pytest.mark.django_db
def test_a_used_or_expired_token_says_which_before_any_button(alice, client):
    # given a used link
    ticket = anonymous_request()
    token = link_token(verification_mail(ticket))
    client.post(f"/verify/{token}/")

    # when
    response = client.get(f"/verify/{token}/")

    # then it says it was used, with no button and no reference, and offers /track/
    content = response.content.decode()
    assert response.status_code == 410
    assert "This link was already used" in content
    assert ticket.reference not in content
    assert 'method="post"' not in content.split("<main", 1)[1]
    assert 'href="/track/"' in content
    assert verification_link_state(token=token)[0] == "used"

    # and an expired one says it expired and offers the same request again
    other = anonymous_request({"city": "Ipoh"})
    other_token = link_token(verification_mail(other))
    Verification.objects.filter(ticket=other).update(expires_at="2000-01-01T00:00:00Z")
    expired = client.get(f"/verify/{other_token}/")
    content = expired.content.decode()
    assert expired.status_code == 410
    assert "This link has expired" in content
    assert other.reference not in content
    assert 'method="post"' not in content.split("<main", 1)[1]
    assert 'href="/requests/modify/"' in content


@pytest.mark.django_db
def test_a_new_email_link_page_shows_the_reference_but_not_the_record(alice, client):
    # given
    ticket = anonymous_request()
    services.verification_confirm(
        token=link_token(verification_mail(ticket)), client_key="10.0.0.3", actor="anonymous"
    )
    token = link_token(verification_mail(ticket, "verify_new_email"))

    # when
    response = client.get(f"/verify/{token}/")

    # then
    content = response.content.decode()
    assert ticket.reference in content
    assert "Petaling Jaya" not in content
    assert "***678" not in content


@pytest.mark.django_db
def test_a_link_whose_request_moved_on_says_there_is_nothing_left_to_confirm(alice, client):
    # given a live link whose request staff rejected meanwhile
    ticket = anonymous_request()
    token = link_token(verification_mail(ticket))
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.REJECTED)

    # when the owner opens it
    response = client.get(f"/verify/{token}/")

    # then the page says so, names the status, and has no confirm button
    content = response.content.decode()
    assert response.status_code == 410
    assert "Nothing left to confirm" in content
    assert "Rejected" in content
    assert 'method="post"' not in content.split("<main", 1)[1]


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_a_link_locked_by_failed_tries_says_so(alice, client, settings):
    settings.VERIFICATION_MAX_ATTEMPTS = 1
    ticket = anonymous_request()
    token = link_token(verification_mail(ticket))
    Verification.objects.filter(ticket=ticket).update(attempts=1)
    response = client.get(f"/verify/{token}/")
    assert response.status_code == 429
    assert "This link is locked" in response.content.decode()


@pytest.mark.django_db
def test_the_password_request_form_takes_a_domain_to_prefill(client):
    response = client.get("/requests/password/?domain=alice-shop.test")
    assert 'value="alice-shop.test"' in response.content.decode()
