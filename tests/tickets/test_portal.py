"""The customer web portal: home, general help, my tickets, language, headers."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape

from accounts.models import Customer
from tests.factories import DomainFactory, TicketFactory, staff_reply
from tickets.models import ActionLog, FieldChange, Message, Notification, Ticket
from tickets.redaction import CARD_NOTICE, REDACTED
from tickets.views.my_tickets import TICKET_CHANGED

S = Ticket.Status
CARD = "4111 1111 1111 1111"
REQUEST_NAMES = (
    "portal:request-modify",
    "portal:request-password",
    "portal:request-opt-out",
    "portal:request-general",
)


def _reverse_all(names):
    found = {}
    for name in names:
        try:
            found[name] = reverse(name)
        except NoReverseMatch:
            found[name] = None
    return found


@pytest.fixture
def alice_ticket(alice):
    ticket = TicketFactory(customer=alice, subject="My website is slow", status=S.OPEN)
    Message.objects.create(
        ticket=ticket, author="customer", body="It takes ten seconds to load.", channel="portal"
    )
    Message.objects.create(
        ticket=ticket, author="staff", body="We are looking at it.", channel="staff"
    )
    Message.objects.create(
        ticket=ticket,
        author="staff",
        body="Internal: customer is on the old plan",
        channel="staff",
        internal=True,
    )
    return ticket


# --- home ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_home_links_the_three_requests_and_general_help(client):
    # given every request page other engineers and this one provide
    urls = _reverse_all(REQUEST_NAMES)

    # when an anonymous visitor opens the home page
    response = client.get("/")

    # then all four requests are linked, each with what happens next
    assert response.status_code == 200
    body = response.content.decode()
    assert None not in urls.values(), f"missing URL names: {urls}"
    for url in urls.values():
        assert f'href="{url}"' in body
    assert body.count('class="next"') == 4
    assert "Change my details" in body
    assert "Resend my domain password" in body


@pytest.mark.django_db
def test_home_offers_login_to_anonymous_and_my_tickets_to_customers(client, alice):
    anonymous = client.get("/").content.decode()
    assert reverse("accounts:login") in anonymous
    assert reverse("portal:my-tickets") not in anonymous

    client.force_login(alice.user)
    customer = client.get("/").content.decode()
    assert reverse("portal:my-tickets") in customer
    assert reverse("accounts:logout") in customer
    assert 'action="/i18n/setlang/"' in customer


@pytest.mark.django_db
def test_every_page_carries_the_security_headers(client):
    response = client.get("/")

    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_pages_have_no_inline_script_or_style(client, alice_ticket):
    client.force_login(alice_ticket.customer.user)
    for url in ("/", "/requests/new/", "/my/", f"/my/tickets/{alice_ticket.reference}/"):
        body = client.get(url).content.decode()
        assert "style=" not in body, url
        assert "<script>" not in body and "<style" not in body, url
        assert 'class="skip" href="#main"' in body


# --- general help ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_general_help_logs_a_ticket_and_shows_the_reference(client):
    # when an anonymous visitor asks for help
    response = client.post(
        "/requests/new/",
        {"subject": "DNS question", "message": "How do I add an MX record?", "email": "x@y.test"},
        follow=True,
    )

    # then the ticket exists, the answer names its reference, and the receipt is queued
    assert response.status_code == 200
    ticket = Ticket.objects.get(subject="DNS question")
    assert ticket.kind == Ticket.Kind.GENERAL
    assert ticket.contact_email == "x@y.test"
    assert ticket.reference in response.content.decode()
    assert "What happens next" in response.content.decode()
    assert Notification.objects.filter(ticket=ticket, template="ticket_received").exists()


@pytest.mark.django_db
def test_general_help_does_the_same_queries_for_an_address_on_record_or_not(client, alice):
    """Whether an address is a customer's must not show in the time the request takes."""

    def queries(email: str) -> int:
        body = {"subject": "DNS question", "message": "How do I add an MX record?", "email": email}
        with CaptureQueriesContext(connection) as made:
            assert client.post("/requests/new/", body).status_code == 303
        return len(made.captured_queries)

    queries("warm-up@example.test")  # the session's first save

    # when / then: Alice's address, linked to her account, costs not one query more
    assert queries("alice@example.test") == queries("nobody@example.test")


@pytest.mark.django_db
def test_general_help_with_bad_input_keeps_the_input_and_shows_the_error(client):
    response = client.post(
        "/requests/new/",
        {"subject": "Keep this subject", "message": "and this message", "email": "not-an-email"},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert 'value="Keep this subject"' in body
    assert "and this message</textarea>" in body
    assert 'class="errorlist"' in body
    assert 'aria-invalid="true"' in body
    assert 'aria-describedby="id_email_helptext id_email_error"' in body
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_general_help_redacts_card_numbers_and_says_so(client):
    response = client.post(
        "/requests/new/",
        {
            "subject": "Billing",
            "message": f"My card is {CARD}, please charge it",
            "email": "x@y.test",
        },
        follow=True,
    )

    assert response.status_code == 200
    message = Message.objects.get(ticket__subject="Billing")
    assert CARD not in message.body
    assert REDACTED in message.body
    assert CARD_NOTICE in response.content.decode()


@pytest.mark.django_db
def test_general_help_for_a_customer_needs_no_email(alice_client, alice):
    page = alice_client.get("/requests/new/").content.decode()
    assert f'value="{alice.email}"' in page

    response = alice_client.post(
        "/requests/new/",
        {"subject": "Hosting", "message": "Upgrade please", "email": ""},
        follow=True,
    )

    assert response.status_code == 200
    ticket = Ticket.objects.get(subject="Hosting")
    assert ticket.customer == alice
    assert ticket.contact_email == alice.email
    assert reverse("portal:my-ticket", args=[ticket.reference]) in response.content.decode()


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_general_help_is_rate_limited_per_client(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}
    data = {"subject": "Again", "message": "hello", "email": "x@y.test"}

    statuses = [client.post("/requests/new/", data).status_code for _ in range(3)]

    assert statuses == [303, 303, 429]
    assert Ticket.objects.count() == 2


# --- my tickets ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_my_tickets_needs_a_login(client):
    response = client.get("/my/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_my_tickets_lists_only_the_customers_own_tickets(client, alice_ticket, bob):
    bob_ticket = TicketFactory(customer=bob, subject="Bob's renewal")

    client.force_login(alice_ticket.customer.user)
    body = client.get("/my/").content.decode()

    assert alice_ticket.reference in body
    assert "badge badge-open" in body
    assert bob_ticket.reference not in body


@pytest.mark.django_db
def test_my_tickets_includes_requests_sent_logged_out_from_the_email_on_record(client, alice, bob):
    # given a reset of her domain Alice asked for logged out, in another case (on no account),
    # and ones that are not hers
    logged_out = TicketFactory(
        customer=None,
        contact_email="ALICE@example.test",
        subject="Out",
        kind=Ticket.Kind.RESEND_PASSWORD,
        domain=DomainFactory(customer=alice),
    )
    strangers = TicketFactory(customer=None, contact_email="carol@example.test")
    # another customer's ticket stays theirs, whatever contact address was typed on it
    bobs_with_alices_address = TicketFactory(customer=bob, contact_email="alice@example.test")
    client.force_login(alice.user)

    # when she opens My requests and the request itself
    body = client.get("/my/").content.decode()
    page = client.get(f"/my/tickets/{logged_out.reference}/")

    # then the logged-out request is hers; the others are not listed or readable
    assert logged_out.reference in body
    assert page.status_code == 200
    assert strangers.reference not in body
    assert bobs_with_alices_address.reference not in body
    assert client.get(f"/my/tickets/{bobs_with_alices_address.reference}/").status_code == 404


@pytest.mark.django_db
def test_my_tickets_query_count_with_logged_out_requests(client, alice, django_assert_num_queries):
    domain = DomainFactory(customer=alice)
    for _ in range(5):
        TicketFactory(
            customer=None,
            contact_email=alice.email,
            kind=Ticket.Kind.RESEND_PASSWORD,
            domain=domain,
        )
    client.force_login(alice.user)
    # session, user with its customer record, count, page of tickets
    with django_assert_num_queries(4):
        assert client.get("/my/").status_code == 200


@pytest.mark.django_db
def test_the_account_menu_links_preferences_for_customers_only(client, alice, agent):
    assert reverse("portal:preferences") not in client.get("/").content.decode()
    client.force_login(alice.user)
    assert f'href="{reverse("portal:preferences")}"' in client.get("/").content.decode()
    client.force_login(agent)
    assert reverse("portal:preferences") not in client.get("/").content.decode()


@pytest.mark.django_db
def test_staff_get_404_on_my_pages(agent_client, alice_ticket):
    assert agent_client.get("/my/").status_code == 404
    assert agent_client.get(f"/my/tickets/{alice_ticket.reference}/").status_code == 404


@pytest.mark.django_db
def test_my_ticket_shows_the_conversation_without_internal_notes(client, alice_ticket):
    client.force_login(alice_ticket.customer.user)

    response = client.get(f"/my/tickets/{alice_ticket.reference}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "It takes ten seconds to load." in body
    assert "We are looking at it." in body
    assert "customer is on the old plan" not in body


@pytest.mark.django_db
def test_my_ticket_escapes_what_customers_wrote(client, alice):
    ticket = TicketFactory(customer=alice, subject="<script>alert(1)</script>")
    client.force_login(alice.user)

    body = client.get(f"/my/tickets/{ticket.reference}/").content.decode()

    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


@pytest.mark.django_db
def test_another_customers_ticket_is_404(client, alice_ticket, bob):
    client.force_login(bob.user)
    url = f"/my/tickets/{alice_ticket.reference}/"

    assert client.get(url).status_code == 404
    assert client.post(url + "reply/", {"body": "let me in"}).status_code == 404
    assert client.post(url + "close/", {"version": 1}).status_code == 404
    assert not alice_ticket.messages.filter(body="let me in").exists()


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_login_from_a_ticket(client, alice_ticket):
    response = client.get(f"/my/tickets/{alice_ticket.reference}/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_my_ticket_shows_the_requested_changes(client, alice):
    ticket = TicketFactory(customer=alice, kind=Ticket.Kind.MODIFY_INFO, subject="Details")
    FieldChange.objects.create(
        ticket=ticket, field="phone", old_value="+60312345678", new_value="+60199999999"
    )
    client.force_login(alice.user)

    body = client.get(f"/my/tickets/{ticket.reference}/").content.decode()

    assert "Requested changes" in body
    assert "+60199999999" in body
    assert "Phone" in body


@pytest.mark.django_db
def test_customer_reply_is_added_and_reopens_a_waiting_ticket(client, alice):
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER)
    client.force_login(alice.user)

    response = client.post(f"/my/tickets/{ticket.reference}/reply/", {"body": "Here it is"})

    assert response.status_code == 302
    message = ticket.messages.get(body="Here it is")
    assert message.author == "customer"
    assert message.channel == "portal"
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert "Your reply was added." in client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_an_empty_reply_shows_the_error(client, alice_ticket):
    client.force_login(alice_ticket.customer.user)

    response = client.post(f"/my/tickets/{alice_ticket.reference}/reply/", {"body": "  "})

    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()


@pytest.mark.django_db
def test_a_reply_with_a_card_number_is_redacted(client, alice_ticket):
    client.force_login(alice_ticket.customer.user)

    response = client.post(
        f"/my/tickets/{alice_ticket.reference}/reply/", {"body": f"card {CARD}"}, follow=True
    )

    assert alice_ticket.messages.filter(body=f"card {REDACTED}").exists()
    assert CARD_NOTICE in response.content.decode()


@pytest.mark.django_db
def test_a_reply_to_a_closed_ticket_is_refused(client, alice):
    ticket = TicketFactory(customer=alice, status=S.CLOSED)
    client.force_login(alice.user)

    page = client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    response = client.post(f"/my/tickets/{ticket.reference}/reply/", {"body": "hi"}, follow=True)

    assert "Send reply" not in page
    assert not ticket.messages.exists()
    assert "This ticket is closed; please open a new request." in response.content.decode()


@pytest.mark.django_db
def test_customer_closes_a_resolved_ticket(client, alice):
    ticket = TicketFactory(customer=alice, status=S.RESOLVED)
    client.force_login(alice.user)
    assert "Close this ticket" in client.get(f"/my/tickets/{ticket.reference}/").content.decode()

    response = client.post(f"/my/tickets/{ticket.reference}/close/", {"version": ticket.version})

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == S.CLOSED
    assert ActionLog.objects.filter(ticket=ticket, action="ticket.status_changed").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("posted", [{}, {"version": ""}, {"version": "latest"}])
def test_a_close_without_the_version_the_page_showed_is_refused(client, alice, agent, posted):
    # given Alice's resolved ticket, on which an agent has just replied
    ticket = TicketFactory(customer=alice, status=S.RESOLVED)
    staff_reply(ticket, agent, "One more thing: your DNS needs a new record.")
    ticket.refresh_from_db()
    status, version = ticket.status, ticket.version
    client.force_login(alice.user)

    # when a close arrives without the version her page showed
    response = client.post(f"/my/tickets/{ticket.reference}/close/", posted, follow=True)

    # then it is refused as for a stale page, and the reply she has not read stands open
    assert escape(str(TICKET_CHANGED)) in response.content.decode()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.version) == (status, version)


@pytest.mark.django_db
def test_closing_an_open_ticket_is_refused_with_a_message(client, alice_ticket):
    client.force_login(alice_ticket.customer.user)

    response = client.post(
        f"/my/tickets/{alice_ticket.reference}/close/", {"version": 1}, follow=True
    )

    alice_ticket.refresh_from_db()
    assert alice_ticket.status == S.OPEN
    assert "This ticket is Open; it cannot be moved to Closed." in response.content.decode()


@pytest.mark.django_db
def test_a_ticket_action_by_get_changes_nothing(client, alice):
    ticket = TicketFactory(customer=alice, status=S.RESOLVED)
    client.force_login(alice.user)

    assert client.get(f"/my/tickets/{ticket.reference}/close/").status_code == 405
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED


# --- languages -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_switching_to_malay_translates_the_home_page(client):
    response = client.post("/i18n/setlang/", {"language": "ms", "next": "/"}, follow=True)

    body = response.content.decode()
    assert '<html lang="ms">' in body
    assert "Bagaimana kami boleh membantu?" in body
    assert "How can we help?" not in body


@pytest.mark.django_db
def test_a_customers_language_choice_is_kept_for_their_emails(alice_client, alice):
    response = alice_client.post("/i18n/setlang/", {"language": "ms", "next": "/my/"})

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.language == Customer.Language.MALAY
    assert ActionLog.objects.filter(action="customer.language_changed").count() == 1

    ticket = TicketFactory(customer=alice)
    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert "Perbualan" in page


@pytest.mark.django_db
def test_an_unknown_language_changes_nothing(alice_client, alice):
    alice_client.post("/i18n/setlang/", {"language": "xx", "next": "/"})

    alice.refresh_from_db()
    assert alice.language == "en"


@pytest.mark.django_db
def test_the_language_applies_on_choice_and_is_remembered(client):
    # given the home page in English, offering the other language by name, with no extra button
    body = client.get("/").content.decode()
    assert 'name="language" value="ms"' in body
    assert ">Change<" not in body

    # when the visitor picks Bahasa Melayu
    response = client.post("/i18n/setlang/", {"language": "ms", "next": "/track/"})

    # then they are back on the page they were on, and later visits stay in Malay
    assert response.status_code == 302
    assert response["Location"] == "/track/"
    later = client.get("/").content.decode()
    assert '<html lang="ms">' in later
    assert 'name="language" value="en"' in later
