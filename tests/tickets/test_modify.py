import logging
import threading

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tests.factories import TicketFactory, api_key_for
from tests.pages import comparable
from tests.threads import meet_after, run_at_once
from tests.tickets.verification_helpers import (
    anonymous_change,
    anonymous_lookups,
    deliver_outbox,
    html_part,
    link_token,
    owner_request,
    verification_mail,
)
from tickets import services
from tickets.models import (
    ActionLog,
    AnonymousRequest,
    FieldChange,
    Message,
    Notification,
    Ticket,
    Verification,
)
from tickets.redaction import CARD_NOTICE, luhn_valid
from tickets.services import anonymous

S = Ticket.Status
API = "/api/v1/requests/modify/"
CARD = "4111 1111 1111 1111"
CARD_DIGITS = "4111111111111111"
# Look-alikes of alice@example.test: full-width letters, and a Cyrillic "a" in the domain.
FULLWIDTH_ALICE = "\uff41\uff4c\uff49\uff43\uff45@example.test"
CYRILLIC_A_DOMAIN = "alice@ex\u0430mple.test"


def anonymous_request(email="alice@example.test", changes=None, note=""):
    ticket = services.request_modify(
        email=email,
        customer=None,
        changes=changes or {"phone": "+60 12-345 6789"},
        note=note,
        client_key="10.0.0.1",
        actor="anonymous",
        channel=Ticket.Channel.API,
    )
    anonymous_lookups()  # what the worker does next
    ticket.refresh_from_db()
    return ticket


def confirm(ticket, template="verify_request"):
    token = link_token(verification_mail(ticket, template))
    return services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")


# --- anonymous requests ---


@pytest.mark.django_db
@pytest.mark.parametrize(
    "typed",
    ["alice@example.test", "ALICE@example.test", " Alice@Example.TEST "],
)
def test_the_link_goes_only_to_the_email_on_record_never_to_the_typed_one(alice, typed, mailoutbox):
    # when
    ticket = anonymous_request(email=typed)

    # then
    assert ticket.status == S.AWAITING_VERIFICATION
    assert ticket.customer == alice
    assert ticket.contact_email == "alice@example.test"
    [verification] = Verification.objects.filter(ticket=ticket, purpose="requester")
    assert verification.sent_to == "alice@example.test"
    sent = deliver_outbox()
    assert [m.to for m in sent] == [["alice@example.test"]]
    assert Notification.objects.filter(ticket=ticket).values_list("recipient", flat=True).get() == (
        "alice@example.test"
    )
    change = FieldChange.objects.get(ticket=ticket)
    assert (change.field, change.old_value, change.new_value) == (
        "phone",
        "+60312345678",
        "+60123456789",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["nobody@example.test", "alice@example.tes"])
def test_an_unknown_email_gets_the_same_answer_and_nothing_is_sent(alice, typed, mailoutbox):
    # given
    api = APIClient()

    # when
    known = api.post(API, {"email": alice.email, "changes": {"city": "Ipoh"}}, format="json")
    unknown = api.post(API, {"email": typed, "changes": {"city": "Ipoh"}}, format="json")

    # then
    assert known.status_code == unknown.status_code == 202
    assert set(known.json()) == set(unknown.json()) == {"reference", "status"}
    assert known.json()["status"] == unknown.json()["status"] == "awaiting_verification"
    assert anonymous_lookups() == ["link_sent", "no_record"]  # the worker's half
    ticket = Ticket.objects.get(reference=unknown.json()["reference"])
    assert ticket.anonymous_request.email == ""  # nothing typed is kept
    assert ticket.customer is None
    assert ticket.contact_email == ""
    assert not ticket.verifications.exists()
    assert not ticket.notifications.exists()
    assert not ticket.changes.exists()
    assert [m.to for m in deliver_outbox()] == [[alice.email]]


@pytest.mark.django_db
@pytest.mark.parametrize("typed", [FULLWIDTH_ALICE, CYRILLIC_A_DOMAIN])
def test_a_look_alike_of_an_address_is_refused_as_no_plain_address(alice, typed):
    # when a look-alike of Alice's address is typed as the email on record
    response = APIClient().post(API, {"email": typed, "changes": {"city": "Ipoh"}}, format="json")

    # then it is refused by its form alone (the one rule for addresses), as it would be for
    # any address: nothing is made, and nothing says whether it resembles one on record
    assert response.status_code == 400 and "email" in response.json()
    assert not Ticket.objects.exists() and not AnonymousRequest.objects.exists()


@pytest.mark.django_db
def test_the_done_page_reads_the_same_whether_or_not_the_email_is_on_record(alice, client):
    # when
    pages = [
        client.post("/requests/modify/", {"email_on_record": email, "city": "Ipoh"}, follow=True)
        for email in (alice.email, "nobody@example.test")
    ]

    # then
    assert [p.status_code for p in pages] == [200, 200]
    bodies = [comparable(p.content.decode()) for p in pages]
    assert bodies[0] == bodies[1]
    assert "What happens next" in bodies[0]


@pytest.mark.django_db
def test_nothing_moves_an_unverified_ticket_forward(alice, supervisor):
    # given
    ticket = anonymous_request(changes={"full_name": "Alice Wong"})

    # when / then
    with pytest.raises(TransitionNotAllowed):
        services.ticket_approve(ticket=ticket, actor=supervisor)
    alice.refresh_from_db()
    assert alice.full_name == "Alice Tan"


@pytest.mark.django_db
def test_after_verification_low_risk_fields_apply_and_the_name_waits(alice, supervisor, settings):
    # given
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    ticket = anonymous_request(changes={"full_name": "Alice Wong", "city": "Ipoh"})

    # when
    confirm(ticket)

    # then
    alice.refresh_from_db()
    ticket.refresh_from_db()
    assert (alice.city, alice.full_name) == ("Ipoh", "Alice Tan")
    assert ticket.status == S.OPEN
    # and a supervisor applies the name
    services.ticket_approve(ticket=ticket, actor=supervisor)
    alice.refresh_from_db()
    ticket.refresh_from_db()
    assert alice.full_name == "Alice Wong"
    assert ticket.status == S.RESOLVED


# --- logged-in owners ---


@pytest.mark.django_db
def test_a_logged_in_phone_change_applies_at_once_when_policy_allows(alice, settings, mailoutbox):
    # given
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True

    # when
    ticket = owner_request(alice, {"phone": "012-345 6789"})

    # then
    alice.refresh_from_db()
    assert alice.phone == "+60123456789"
    assert ticket.status == S.RESOLVED
    assert FieldChange.objects.get(ticket=ticket).applied_at is not None
    event = ActionLog.objects.get(ticket=ticket, action="customer.details_changed")
    assert event.details["changes"] == [
        {"field": "phone", "old": "+60312345678", "new": "+60123456789"}
    ]
    assert not Verification.objects.filter(ticket=ticket).exists()
    [message] = deliver_outbox()
    assert message.to == [alice.email]
    assert "+60123456789" in message.body
    assert "+60123456789" in html_part(message)


@pytest.mark.django_db
def test_a_logged_in_phone_change_waits_for_staff_when_policy_does_not_allow(
    alice, agent, settings
):
    # given
    settings.MODIFY_AUTO_APPLY_LOW_RISK = False

    # when
    ticket = owner_request(alice, {"phone": "+60 12 345 6789"})

    # then
    alice.refresh_from_db()
    assert alice.phone == "+60312345678"
    assert ticket.status == S.OPEN
    # and an agent may approve a low-risk change
    services.ticket_approve(ticket=ticket, actor=agent)
    alice.refresh_from_db()
    assert alice.phone == "+60123456789"


@pytest.mark.django_db
def test_a_name_change_waits_for_a_supervisor_and_an_agent_is_refused(alice, agent, supervisor):
    # given
    ticket = owner_request(alice, {"full_name": "Alice  Wong "})
    assert ticket.status == S.OPEN

    # when an agent tries
    with pytest.raises(ApplicationError) as excinfo:
        services.ticket_approve(ticket=ticket, actor=agent)

    # then it is a clear 403 and nothing changed
    assert excinfo.value.status_code == 403
    assert excinfo.value.message == services.MODIFY_NEEDS_SUPERVISOR
    alice.refresh_from_db()
    assert alice.full_name == "Alice Tan"
    # and a supervisor applies it
    services.modify_approve(ticket=ticket, actor=supervisor, expected_version=ticket.version)
    alice.refresh_from_db()
    assert alice.full_name == "Alice Wong"


@pytest.mark.django_db
def test_customers_and_strings_cannot_approve(alice):
    ticket = owner_request(alice, {"full_name": "Alice Wong"})
    for actor in (alice, "system", alice.user):
        with pytest.raises(ApplicationError) as excinfo:
            services.ticket_approve(ticket=ticket, actor=actor)
        assert excinfo.value.status_code == 403


@pytest.mark.django_db
def test_an_email_change_needs_the_new_address_and_a_supervisor(
    alice, agent, supervisor, mailoutbox
):
    # given a logged-in request to change the email address
    ticket = owner_request(alice, {"email": "Alice.New@Example.NET"})
    new = "Alice.New@example.net"
    link = verification_mail(ticket, "verify_new_email")
    assert link.recipient == new
    sent = deliver_outbox()
    assert [m.to for m in sent] == [[new]]
    assert "Alice Tan" not in sent[0].body

    # when a supervisor approves before the new address confirmed
    with pytest.raises(TransitionNotAllowed) as excinfo:
        services.ticket_approve(ticket=ticket, actor=supervisor)
    assert excinfo.value.message == services.MODIFY_NEW_EMAIL_UNCONFIRMED

    # when the new address confirms, and an agent then tries
    confirm(ticket, "verify_new_email")
    with pytest.raises(ApplicationError) as excinfo:
        services.ticket_approve(ticket=ticket, actor=agent)
    assert excinfo.value.status_code == 403

    # when a supervisor approves
    services.ticket_approve(ticket=ticket, actor=supervisor)

    # then the record, the login and both addresses are told
    alice.refresh_from_db()
    assert alice.email == new
    assert alice.user.username == new and alice.user.email == new
    assert authenticate(username=new, password="alice-demo-pass") == alice.user
    notices = {m.to[0]: m for m in deliver_outbox()}
    assert set(notices) == {"alice@example.test", new}
    old_notice = notices["alice@example.test"]
    assert "If this wasn't you" in old_notice.body
    assert "reply to this email" in old_notice.body
    assert "support@exabytes.example" in html_part(old_notice)
    assert "now the email address on record" in notices[new].body
    templates = set(Notification.objects.filter(ticket=ticket).values_list("template", flat=True))
    assert {"email_changed_old", "email_changed_new"} <= templates
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert ticket.contact_email == new


@pytest.mark.django_db
def test_a_new_email_on_an_idn_domain_is_kept_in_its_idna_2008_form(alice):
    ticket = owner_request(alice, {"email": "alice@Faß.de"})

    change = ticket.changes.get()
    assert change.new_value == "alice@xn--fa-hia.de"  # not alice@fass.de


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["alice@p\u0430ypal.test", "alice@xn--zz.test"])
def test_a_new_email_on_a_look_alike_or_broken_domain_is_a_400(alice, email):
    client = APIClient()
    client.force_login(alice.user)

    response = client.post(API, {"changes": {"email": email}}, format="json")

    assert response.status_code == 400
    assert "email" in str(response.json())
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_an_anonymous_email_change_mails_the_new_address_only_after_verification(alice):
    # when
    ticket = anonymous_request(changes={"email": "new@example.net"})

    # then nothing goes to the new address before the owner confirmed
    recipients = list(
        Notification.objects.filter(ticket=ticket).values_list("recipient", flat=True)
    )
    assert recipients == [alice.email]
    confirm(ticket)
    assert verification_mail(ticket, "verify_new_email").recipient == "new@example.net"


@pytest.mark.django_db
def test_approval_is_refused_when_the_record_changed_meanwhile(alice, supervisor):
    # given a pending name change, and the record edited since
    ticket = owner_request(alice, {"full_name": "Alice Wong", "city": "Ipoh"})
    Customer.objects.filter(pk=alice.pk).update(full_name="Alice T.")

    # when
    with pytest.raises(services.ModifyConflict) as excinfo:
        services.ticket_approve(ticket=ticket, actor=supervisor)

    # then
    assert excinfo.value.status_code == 409
    assert "full_name" in excinfo.value.message
    assert excinfo.value.extra == {"fields": ["full_name"]}
    alice.refresh_from_db()
    assert alice.full_name == "Alice T."
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN


@pytest.mark.django_db
def test_rejecting_mails_the_reason_to_the_email_on_record(alice, agent, mailoutbox):
    # given a request typed with a look-alike address
    ticket = anonymous_request(email="ALICE@EXAMPLE.TEST", changes={"full_name": "Mallory"})
    confirm(ticket)
    deliver_outbox()

    # when
    services.ticket_reject(ticket=ticket, actor=agent, reason="We could not match the name.")

    # then
    [message] = deliver_outbox()
    assert message.to == ["alice@example.test"]
    assert "We could not match the name." in message.body


@pytest.mark.django_db
def test_there_is_nothing_to_approve_on_other_kinds(alice, supervisor):
    ticket = TicketFactory(customer=alice, kind=Ticket.Kind.GENERAL, status=S.OPEN)
    with pytest.raises(TransitionNotAllowed) as excinfo:
        services.ticket_approve(ticket=ticket, actor=supervisor)
    assert excinfo.value.message == services.NOTHING_TO_APPROVE


@pytest.mark.django_db(transaction=True)
def test_two_staff_approving_at_once_apply_the_change_once(alice, supervisor):
    # given
    ticket = owner_request(alice, {"full_name": "Alice Wong"})
    other = type(supervisor).objects.create(username="supervisor2", is_staff=True)
    other.groups.set(supervisor.groups.all())
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(actor) -> None:
        close_old_connections()
        barrier.wait()
        try:
            services.ticket_approve(ticket=ticket, actor=actor)
            outcomes.append("applied")
        except TransitionNotAllowed:
            outcomes.append("refused")
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=approve, args=(who,)) for who in (supervisor, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    # then
    assert sorted(outcomes) == ["applied", "refused"]
    assert ActionLog.objects.filter(ticket=ticket, action="customer.details_changed").count() == 1
    assert Notification.objects.filter(ticket=ticket, template="details_changed").count() == 1
    alice.refresh_from_db()
    assert alice.full_name == "Alice Wong"


# --- validation ---


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "typed", "stored"),
    [
        ("phone", "03-2345 6789", "+60323456789"),
        ("phone", "+65 6123 4567", "+6561234567"),
        ("country", "Malaysia", "MY"),
        ("country", "my", "MY"),
        ("country", "SGP", "SG"),
        ("email", "  Bob.New@EXAMPLE.Org ", "Bob.New@example.org"),
        ("full_name", "  Alice   Wong ", "Alice Wong"),
        ("address_line2", "  Level 3 ", "Level 3"),
    ],
)
def test_values_are_normalised_as_the_record_stores_them(alice, field, typed, stored):
    Customer.objects.filter(pk=alice.pk).update(country="TH")
    ticket = anonymous_request(changes={field: typed})
    assert FieldChange.objects.get(ticket=ticket).new_value == stored


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("phone", "12"),
        ("phone", "call me"),
        ("country", "Atlantis"),
        ("email", "not-an-email"),
        ("email", "a@b@c"),
        ("full_name", "   "),
        ("postcode", "1" * 21),
        ("city", "Ipoh\x00"),
        # read backwards on the staff pages: "Alice" shown as a name it is not
        ("full_name", "Ali\u202eecila"),
        ("full_name", "Alice \u2067Tan\u2069"),
        ("address_line1", "1 Jalan\u2028Ampang"),
        ("city", "\ufeffIpoh"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(alice, field, typed):
    with pytest.raises(ValidationError) as excinfo:
        anonymous_request(changes={field: typed})
    [error] = excinfo.value.error_dict["changes"]
    assert error.code == field
    assert error.messages[0].startswith(f"{field}: ")
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_a_name_keeps_the_joiners_its_script_needs(alice):
    # Tamil and Persian names, and emoji, are written with zero-width (non-)joiners.
    ticket = anonymous_request(changes={"full_name": "\u0b95\u0bcd\u200d\u0bb7 Tan"})
    assert FieldChange.objects.get(ticket=ticket).new_value == "\u0b95\u0bcd\u200d\u0bb7 Tan"


@pytest.mark.django_db
def test_values_equal_to_the_record_are_dropped(alice):
    ticket = owner_request(alice, {"city": "Kuala Lumpur", "state": "Selangor"})
    assert list(ticket.changes.values_list("field", flat=True)) == ["state"]


@pytest.mark.django_db
def test_an_owner_asking_for_what_is_already_held_gets_a_400(alice):
    with pytest.raises(ValidationError) as excinfo:
        owner_request(alice, {"city": " Kuala Lumpur ", "country": "Malaysia"})
    assert excinfo.value.message_dict == {"changes": [services.MODIFY_SAME_VALUES]}


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_past_the_per_address_limit_requests_are_coalesced_never_refused(alice, settings):
    # given two links already mailed to Alice within the hour
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_email": (2, 3600)}
    anonymous_request(email="alice@example.test", changes={"city": "Ipoh"})
    second = anonymous_request(email="ALICE@example.test")

    # when a third request names her address
    third = anonymous_request(email="Alice@Example.test")

    # then it is accepted like any other (no 429 naming the address), mails no third link,
    # and is joined to the last request that mailed one
    assert third.status == S.AWAITING_VERIFICATION
    assert not third.verifications.exists() and not third.notifications.exists()
    assert third.anonymous_request.outcome == "coalesced"
    assert third.anonymous_request.coalesced_with == second
    assert Notification.objects.filter(template="verify_request").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_lookups_at_once_never_mail_past_the_per_address_limit(alice, settings, monkeypatch):
    # given room for one more link to Alice this hour, and two requests naming her not yet
    # looked up
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_email": (1, 3600)}
    tickets = [
        anonymous_change(
            "alice@example.test", {"city": city}, client_key=f"10.0.0.{n}", look_up=False
        )
        for n, city in enumerate(("Ipoh", "Klang"), start=1)
    ]
    # each worker, once it has counted the links already mailed, waits (up to a moment) for
    # the other to have counted too: both count before either mails, unless they queue
    meet_after(monkeypatch, anonymous, "anonymous_request_coalesce_with")
    outcomes: list[str] = []

    def look_up(ticket) -> None:
        outcomes.append(services.anonymous_request_process(ticket_id=ticket.pk))

    # when two workers look them up at the same moment
    run_at_once(look_up, [(t,) for t in tickets])

    # then one link is mailed and the other request is joined to it
    assert sorted(outcomes) == ["coalesced", "link_sent"]
    assert Notification.objects.filter(template="verify_request").count() == 1


# --- card numbers and escaping ---


@pytest.mark.django_db
def test_a_card_number_never_reaches_the_database_the_mail_or_the_logs(
    alice, supervisor, caplog, mailoutbox
):
    # given
    caplog.set_level(logging.DEBUG)
    api = APIClient()

    # when
    response = api.post(
        API,
        {
            "email": alice.email,
            "changes": {"address_line1": f"Unit 3, card {CARD}", "full_name": "Alice Wong"},
            "note": f"My card is {CARD} and also {CARD_DIGITS}",
        },
        format="json",
    )
    anonymous_lookups()
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    confirm(ticket)
    alice.refresh_from_db()
    assert alice.address_line1 == "12 Jalan Ampang"  # a redacted value is not applied by policy
    services.ticket_approve(ticket=ticket, actor=supervisor)
    sent = deliver_outbox()

    # then the requester is told
    assert response.status_code == 202
    assert response.json() == {
        "reference": ticket.reference,
        "status": "awaiting_verification",
        "detail": CARD_NOTICE,
    }
    # and no row, email or log line holds the number
    stored = [
        *Ticket.objects.values_list("subject", "contact_email"),
        *Message.objects.values_list("body", flat=True),
        *FieldChange.objects.values_list("old_value", "new_value"),
        *ActionLog.objects.values_list("details", flat=True),
        *Notification.objects.values_list("context", "recipient"),
        *AnonymousRequest.objects.values_list("changes", "note"),
        *Customer.objects.values_list(*services.MODIFY_FIELDS),
    ]
    text = repr(stored) + "".join(m.body + html_part(m) + m.subject for m in sent) + caplog.text
    assert sent and Message.objects.filter(ticket=ticket).exists()
    for needle in (CARD, CARD_DIGITS, "4111-1111"):
        assert needle not in text
    assert "[card number removed]" in Message.objects.get(ticket=ticket).body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+62 812-3456-7899", "+6281234567899"),  # Indonesian mobile
        ("+86 139 1234 5610", "+8613912345610"),  # Chinese mobile
        ("+49 30 12345 6711", "+4930123456711"),  # Berlin
    ],
)
def test_a_long_phone_number_that_passes_luhn_is_kept_not_taken_for_a_card(alice, typed, stored):
    assert luhn_valid(stored.removeprefix("+"))

    ticket = anonymous_request(changes={"phone": typed})

    assert FieldChange.objects.get(ticket=ticket).new_value == stored
    assert not services.modify_input_has_card(changes={"phone": typed}, note="")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "typed",
    [
        CARD,
        CARD_DIGITS,
        "+" + CARD_DIGITS,
        "3782 822463 10005",
        # With a +, these read as possible Indonesian and German numbers by their lengths.
        "+6225 9058 2133 9112",  # UnionPay
        "+4925 1920 1834 4308",  # Visa
    ],
)
def test_a_card_number_typed_as_a_phone_number_is_still_removed(alice, typed):
    assert services.modify_input_has_card(changes={"phone": typed}, note="")

    with pytest.raises(ValidationError) as excinfo:
        anonymous_request(changes={"phone": typed})

    assert excinfo.value.error_dict["changes"][0].code == "phone"
    assert typed.replace(" ", "") not in repr(
        [*AnonymousRequest.objects.values_list("changes", flat=True), *FieldChange.objects.all()]
    )


@pytest.mark.django_db
def test_the_portal_shows_the_card_notice(alice_client, alice):
    form = {f: getattr(alice, f) for f in services.MODIFY_FIELDS}
    response = alice_client.post(
        "/requests/modify/", {**form, "city": "Ipoh", "note": CARD}, follow=True
    )
    assert response.status_code == 200
    assert "we removed what looked like a card number" in response.content.decode()
    assert CARD not in response.content.decode()


@pytest.mark.django_db
def test_markup_in_values_is_escaped_in_the_html_part(alice, settings, mailoutbox):
    # given
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    evil = '<script>alert("x")</script><b>Jalan</b>'

    # when
    owner_request(alice, {"address_line1": evil})
    [message] = deliver_outbox()

    # then
    html = html_part(message)
    assert "<script>" not in html
    assert "<b>Jalan</b>" not in html
    assert "&lt;script&gt;" in html
    assert evil in message.body


# --- the API ---


@pytest.mark.django_db
def test_an_unknown_field_is_a_400_naming_it(alice):
    response = APIClient().post(
        API,
        {"email": alice.email, "changes": {"phone": "0123456789", "is_reseller": "true"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"changes": ["Unknown field: is_reseller"]}
    assert not Ticket.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"email": "alice@example.test", "changes": {}}, "changes"),
        ({"email": "alice@example.test"}, "changes"),
        ({"email": "alice@example.test", "changes": ["phone"]}, "changes"),
        ({"changes": {"phone": "0123456789"}}, "email"),
        ({"email": "nope", "changes": {"phone": "0123456789"}}, "email"),
        ({"email": "alice@example.test", "changes": {"phone": "x"}}, "changes"),
    ],
)
def test_bad_requests_are_400_field_errors(alice, body, key):
    response = APIClient().post(API, body, format="json")
    assert response.status_code == 400
    assert key in response.json()


@pytest.mark.django_db
def test_an_invalid_value_names_the_field_in_the_api(alice):
    response = APIClient().post(
        API, {"email": alice.email, "changes": {"phone": "12"}}, format="json"
    )
    assert response.status_code == 400
    [message] = response.json()["changes"]
    assert message.startswith("phone: ")


@pytest.mark.django_db
def test_a_logged_in_customer_may_omit_the_email(alice, settings):
    # given a token login and a change staff must review
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")

    # when
    response = api.post(API, {"changes": {"full_name": "Alice Wong"}}, format="json")

    # then
    assert response.status_code == 202
    ticket = Ticket.objects.get(customer=alice)
    assert response.json() == {"reference": ticket.reference, "status": "open"}
    assert not Verification.objects.filter(ticket=ticket).exists()


@pytest.mark.django_db
def test_a_session_request_needs_csrf(alice):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(alice.user)
    response = api.post(API, {"changes": {"city": "Ipoh"}}, format="json")
    assert response.status_code == 403
    assert not Ticket.objects.exists()


# --- the portal page ---


@pytest.mark.django_db
def test_an_anonymous_visitor_is_asked_for_the_email_on_record(client):
    response = client.get("/requests/modify/")
    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="email_on_record"' in content
    assert "csrfmiddlewaretoken" in content


@pytest.mark.django_db
def test_a_logged_in_customer_sees_their_details_prefilled(alice_client):
    response = alice_client.get("/requests/modify/")
    content = response.content.decode()
    assert 'name="email_on_record"' not in content
    assert 'value="Alice Tan"' in content
    assert 'value="+60312345678"' in content
    assert 'value="12 Jalan Ampang"' in content


@pytest.mark.django_db
def test_errors_show_inline_and_keep_the_input(client, alice):
    response = client.post(
        "/requests/modify/",
        {"email_on_record": "alice@example.test", "phone": "not a phone", "city": "<b>Ipoh</b>"},
    )
    content = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid phone number" in content
    assert 'value="not a phone"' in content
    assert 'value="&lt;b&gt;Ipoh&lt;/b&gt;"' in content
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_a_logged_in_portal_request_applies_the_phone(alice_client, alice, settings):
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    form = {f: getattr(alice, f) for f in services.MODIFY_FIELDS}
    form["phone"] = "012 345 6789"

    response = alice_client.post("/requests/modify/", form, follow=True)

    assert response.status_code == 200
    ticket = Ticket.objects.get(customer=alice)
    assert ticket.reference in response.content.decode()
    alice.refresh_from_db()
    assert alice.phone == "+60123456789"
    assert ticket.status == S.RESOLVED


@pytest.mark.django_db
def test_the_worker_finding_the_record_of_an_anonymous_request_is_on_its_audit_trail(alice):
    # given a change asked for without logging in, giving Alice's email on record
    ticket = anonymous_change(alice.email, {"city": "Ipoh"}, client_key="10.0.0.5", look_up=False)
    version = ticket.version

    # when the worker looks the address up
    assert anonymous_lookups() == ["link_sent"]

    # then the ticket became Alice's by a row of its own, and a page read before is stale
    ticket.refresh_from_db()
    assert (ticket.customer, ticket.contact_email) == (alice, alice.email)
    assert ticket.version > version
    row = ActionLog.objects.get(ticket=ticket, action="ticket.owner_found")
    assert (row.actor, row.customer, row.details) == ("worker", alice, {"customer": alice.number})
    naming_alice = ActionLog.objects.filter(ticket=ticket, customer=alice)
    assert naming_alice.earliest("sequence") == row
