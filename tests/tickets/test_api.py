"""The tickets resource of REST API v1: list, detail, messages, staff actions, health, errors."""

import base64
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services import api_token_issue
from tests.broker import broker_unreachable
from tests.factories import DomainFactory, TicketFactory, UserFactory
from tickets import services
from tickets.audit import audit_record
from tickets.models import FieldChange, Message, Notification, Ticket

S = Ticket.Status
LIST = "/api/v1/tickets/"
TICKET_KEYS = {
    "reference",
    "kind",
    "status",
    "subject",
    "customer",
    "domain",
    "assignee",
    "created_at",
    "updated_at",
    "due_at",
}


def url(ticket: Ticket, action: str = "") -> str:
    return f"/api/v1/tickets/{ticket.reference}/" + (f"{action}/" if action else "")


def post(client: Client, path: str, data: dict | None = None):
    return client.post(path, data or {}, content_type="application/json")


@pytest.fixture
def as_user():
    """A fresh client logged in (by session) as the given user, or anonymous for None."""

    def make(user) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def alice_ticket(alice):
    ticket = TicketFactory(
        customer=alice,
        subject="Alice's question",
        status=S.OPEN,
        kind=Ticket.Kind.RESEND_PASSWORD,
    )
    Message.objects.create(
        ticket=ticket, author="customer", body="Hello, I need help", channel="portal"
    )
    return ticket


@pytest.fixture
def personas(alice, bob, agent, supervisor):
    return {"alice": alice.user, "bob": bob.user, "agent": agent, "supervisor": supervisor}


# --- list ---


def test_a_customer_lists_only_its_own_tickets(alice, bob, as_user):
    # given
    mine = TicketFactory(customer=alice)
    TicketFactory(customer=bob)

    # when
    response = as_user(alice.user).get(LIST)

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert [t["reference"] for t in body["results"]] == [mine.reference]


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_staff_list_every_ticket(personas, persona, alice, bob, as_user):
    # given
    tickets = [TicketFactory(customer=alice), TicketFactory(customer=bob), TicketFactory()]

    # when
    response = as_user(personas[persona]).get(LIST)

    # then
    assert response.status_code == 200
    assert {t["reference"] for t in response.json()["results"]} == {t.reference for t in tickets}


def test_an_anonymous_list_is_a_401_asking_for_a_token(db, as_user):
    # when
    response = as_user(None).get(LIST)

    # then
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_ticket_in_json_has_exactly_the_contract_fields(alice, agent, as_user):
    # given
    domain = DomainFactory(customer=alice, name="alice-shop.test")
    ticket = TicketFactory(customer=alice, domain=domain, assignee=agent, due_at=timezone.now())

    # when
    item = as_user(agent).get(LIST).json()["results"][0]

    # then
    assert set(item) == TICKET_KEYS
    assert item["reference"] == ticket.reference
    assert item["customer"] == alice.number
    assert item["domain"] == "alice-shop.test"
    assert item["assignee"] == "agent"
    assert item["kind"] == "general"
    assert item["status"] == "open"


def test_a_ticket_without_customer_domain_or_assignee_shows_nulls(agent, as_user):
    # given
    TicketFactory(customer=None, contact_email="x@example.test")

    # when
    item = as_user(agent).get(LIST).json()["results"][0]

    # then
    assert (item["customer"], item["domain"], item["assignee"]) == (None, None, None)


def test_the_list_filters_by_status_kind_assignee_and_text(alice, agent, supervisor, as_user):
    # given
    resolved = TicketFactory(customer=alice, status=S.RESOLVED)
    modify = TicketFactory(customer=alice, kind=Ticket.Kind.MODIFY_INFO)
    assigned = TicketFactory(customer=alice, assignee=supervisor)
    searched = TicketFactory(customer=alice, subject="Renewal of the blue widget")
    client = as_user(agent)

    def refs(query: str) -> set[str]:
        response = client.get(LIST + query)
        assert response.status_code == 200
        return {t["reference"] for t in response.json()["results"]}

    # then
    assert refs("?status=resolved") == {resolved.reference}
    assert refs("?kind=modify_info") == {modify.reference}
    assert refs("?assignee=supervisor") == {assigned.reference}
    assert refs("?q=BLUE widget") == {searched.reference}
    assert refs(f"?q={resolved.reference.lower()}") == {resolved.reference}
    assert refs("?assignee=nobody-by-that-name") == set()


def test_the_text_search_finds_each_kind_of_match_once(alice, agent, as_user):
    # given tickets that match "sunrise" in different places (one of them in two)
    shop = DomainFactory(name="sunrise-bakery.test", customer=alice)
    by_domain = TicketFactory(customer=alice, domain=shop, subject="Renewal")
    by_requested = TicketFactory(customer=None, requested_domain="sunrise-cafe.test")
    by_subject = TicketFactory(customer=alice, subject="Sunrise mailing list")
    twice = TicketFactory(customer=alice, domain=shop, subject="Sunrise again")
    by_contact = TicketFactory(customer=None, contact_email="Owner@Sunrise.example")
    TicketFactory(customer=alice, subject="Unrelated")

    def refs(query: str) -> list[str]:
        response = as_user(agent).get(LIST + query)
        assert response.status_code == 200
        return [t["reference"] for t in response.json()["results"]]

    # then every match appears once (part of a contact address too), and an exact address or
    # reference finds its ticket
    found = refs("?q=SunRise")
    assert sorted(found) == sorted(
        t.reference for t in (by_domain, by_requested, by_subject, twice, by_contact)
    )
    assert refs("?q=owner@sunrise.EXAMPLE") == [by_contact.reference]
    assert refs(f"?q={twice.reference.lower()}") == [twice.reference]
    assert refs("?q=no-such-text") == []


def test_a_customers_filters_stay_inside_its_own_tickets(alice, bob, as_user):
    # given
    TicketFactory(customer=bob, subject="Bob's secret", status=S.RESOLVED)

    # when
    response = as_user(alice.user).get(LIST + "?q=secret&status=resolved")

    # then
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("kind=password", "kind"),
        ("assignee=a%20b", "assignee"),
        ("q=" + "x" * 201, "q"),
    ],
)
def test_an_unknown_filter_value_is_a_400_naming_the_field(agent, as_user, query, field):
    # when
    response = as_user(agent).get(f"{LIST}?{query}")

    # then
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize(
    "query", ["stauts=open", "ordering=password", "customer__email=x", "limit=5"]
)
def test_an_unknown_list_parameter_is_a_400_naming_it(agent, as_user, query):
    # when a parameter the list does not take is sent (a typo, or a probe)
    response = as_user(agent).get(f"{LIST}?{query}")

    # then it is refused, not ignored
    name = query.split("=")[0]
    assert response.status_code == 400
    assert list(response.json()) == [name]
    assert "page_size" in response.json()[name][0]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("status=open&status=closed", "status"),
        ("kind=general&kind=opt_out", "kind"),
        ("assignee=agent&assignee=supervisor", "assignee"),
        ("q=alice&q=bob", "q"),
        ("page_size=5&page_size=50", "page_size"),
        ("cursor=a&cursor=b", "cursor"),
        ("status=&status=open", "status"),
    ],
)
def test_a_list_parameter_given_twice_is_a_400_naming_it(alice, agent, as_user, query, name):
    # given a closed ticket, which `?status=open&status=closed` would have listed by the last
    TicketFactory(customer=alice, status=Ticket.Status.CLOSED)

    # when a parameter that takes one value is given two
    response = as_user(agent).get(f"{LIST}?{query}")

    # then it is refused, not resolved to one of them
    assert response.status_code == 400
    assert list(response.json()) == [name]
    assert "more than once" in response.json()[name][0]


def test_the_list_parameters_it_takes_are_accepted_together(agent, as_user):
    query = "status=&kind=&assignee=&q=&page_size=5"

    assert as_user(agent).get(f"{LIST}?{query}").status_code == 200


def test_empty_filters_as_written_in_the_contract_mean_any(alice, agent, as_user):
    # given
    tickets = {TicketFactory(customer=alice).reference, TicketFactory(customer=None).reference}

    # when
    response = as_user(agent).get(f"{LIST}?status=&kind=&assignee=&q=")

    # then
    assert response.status_code == 200
    assert {t["reference"] for t in response.json()["results"]} == tickets


def test_client_keys_never_reach_the_query(alice, agent, as_user):
    # given: keys that would probe related rows if they were passed to filter() or order_by()
    ticket = TicketFactory(customer=alice)
    probes = "assignee__password__startswith=md5&customer__user__password=x&ordering=-customer"

    # when
    response = as_user(agent).get(f"{LIST}?{probes}")

    # then: refused, naming each, and nothing of the ticket is in the answer
    assert response.status_code == 400
    assert sorted(response.json()) == [
        "assignee__password__startswith",
        "customer__user__password",
        "ordering",
    ]
    assert ticket.reference not in response.content.decode()


def test_the_list_pages_with_a_cursor_newest_first(alice, as_user):
    # given
    start = timezone.now()
    tickets = [
        TicketFactory(customer=alice, created_at=start - timedelta(minutes=i)) for i in range(5)
    ]
    client = as_user(alice.user)

    # when
    first = client.get(LIST + "?page_size=2").json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()

    # then
    seen = [t["reference"] for page in (first, second, third) for t in page["results"]]
    assert seen == [t.reference for t in tickets]
    assert first["previous"] is None
    assert third["next"] is None
    assert second["previous"] is not None


@pytest.mark.parametrize("page_size", ["1000000000", "101", "-3", "abc", "0", "", "2.0"])
def test_a_page_size_outside_1_to_100_is_a_400(alice, as_user, page_size):
    # when
    response = as_user(alice.user).get(f"{LIST}?page_size={page_size}")

    # then
    assert response.status_code == 400
    assert response.json() == {"page_size": ["Give a whole number from 1 to 100."]}


def test_the_largest_page_size_is_100(alice, as_user):
    # given
    TicketFactory.create_batch(3, customer=alice)

    # when
    response = as_user(alice.user).get(f"{LIST}?page_size=100")

    # then
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_a_bad_cursor_is_a_json_404(alice, as_user):
    # when
    response = as_user(alice.user).get(LIST + "?cursor=not-a-cursor%00")

    # then
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


@pytest.mark.parametrize(
    "position", ["not-a-time", "0001-01-01 00:00:00+14:00", "9999-12-31 23:59:59-14:00"]
)
def test_a_cursor_whose_position_is_no_time_is_a_json_404(alice, as_user, position):
    # A position outside the years UTC holds was a 500 where the database converts it (SQLite).
    TicketFactory.create_batch(2, customer=alice)
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()

    for query in ("", "&q=hello"):
        response = as_user(alice.user).get(f"{LIST}?cursor={cursor}{query}")

        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid cursor"}


@pytest.mark.parametrize("persona", ["alice", "agent"])
def test_the_list_query_count_does_not_grow_with_the_page_size(
    personas, persona, alice, agent, as_user, django_assert_num_queries
):
    # given: 30 tickets, each with a customer, a domain and an assignee to load
    for _ in range(30):
        TicketFactory(customer=alice, domain=DomainFactory(customer=alice), assignee=agent)
    client = as_user(personas[persona])
    # 1. the session, 2. the user (with its customer record, read by the sign-in rule), for
    # staff 3. the permissions, then the page
    expected = 3 if persona == "alice" else 4

    # when / then
    for page_size in (1, 10, 30):
        with django_assert_num_queries(expected):
            response = client.get(f"{LIST}?page_size={page_size}")
        assert len(response.json()["results"]) == page_size


def test_a_token_client_lists_with_constant_queries(alice, as_user, django_assert_num_queries):
    # given
    TicketFactory.create_batch(12, customer=alice)
    key = api_token_issue(user=alice.user).key
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    client.get(LIST)  # stamps the token's last use, written at most once a minute

    # when / then
    for page_size in (2, 12):
        # 1. the token joined to its user, 2. the user's customer record, 3. the page
        with django_assert_num_queries(3):
            response = client.get(f"{LIST}?page_size={page_size}")
        assert len(response.json()["results"]) == page_size


# --- detail ---


def test_the_owner_reads_its_ticket_with_changes_messages_and_a_safe_history(alice, agent, as_user):
    # given
    ticket = services.ticket_create(
        kind=Ticket.Kind.MODIFY_INFO, subject="Change", actor=alice, customer=alice, status=S.OPEN
    )
    FieldChange.objects.create(
        ticket=ticket, field="phone", old_value=alice.phone, new_value="+60312349999"
    )
    services.ticket_reply_add(
        ticket=ticket, body="Visible reply", actor=agent, author="staff", channel="staff"
    )
    services.ticket_reply_add(
        ticket=ticket,
        body="Staff-only note",
        actor=agent,
        author="staff",
        channel="staff",
        internal=True,
    )

    # when
    response = as_user(alice.user).get(url(ticket))

    # then
    assert response.status_code == 200
    body = response.json()
    held = {"held_messages", "can_confirm", "confirm_url"}
    assert set(body) == TICKET_KEYS | {"changes", "messages", "events"} | held
    assert [body[key] for key in ("held_messages", "can_confirm", "confirm_url")] == [
        0,
        False,
        None,
    ]
    assert body["changes"] == [
        {
            "field": "phone",
            "old_value": alice.phone,
            "new_value": "+60312349999",
            "applied_at": None,
        }
    ]
    assert [m["body"] for m in body["messages"]] == ["Visible reply"]
    assert all(set(e) == {"action", "created_at"} for e in body["events"])
    actions = [e["action"] for e in body["events"]]
    assert "ticket.created" in actions
    assert "ticket.message_added" in actions
    assert "ticket.note_added" not in actions
    # her ETag is the version of what she is shown: the staff note did not move it
    stored = Ticket.objects.get(pk=ticket.pk)
    assert response["ETag"] == f'"{stored.requester_version}"'
    assert stored.requester_version == stored.version - 1


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_staff_read_internal_notes_and_the_full_history(personas, persona, alice, as_user):
    # given
    ticket = TicketFactory(customer=alice)
    services.ticket_reply_add(
        ticket=ticket,
        body="Staff-only note",
        actor=personas["agent"],
        author="staff",
        channel="staff",
        internal=True,
    )

    # when
    body = as_user(personas[persona]).get(url(ticket)).json()

    # then
    assert [(m["body"], m["internal"]) for m in body["messages"]] == [("Staff-only note", True)]
    event = body["events"][-1]
    assert event["action"] == "ticket.note_added"
    assert event["actor"] == "staff:agent"
    # each row's details as the staff page shows them: to supervisors only
    common = {"sequence", "created_at", "actor", "action"}
    assert set(event) == (common | {"details"} if persona == "supervisor" else common)


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_the_api_and_the_staff_page_show_audit_details_to_the_same_people(
    personas, persona, alice, as_user, client
):
    # given a resolution whose note is in its audit row's details
    ticket = TicketFactory(customer=alice)
    services.ticket_resolve(ticket=ticket, actor=personas["agent"], note="Zone file restored")

    # when the same person reads the ticket on both
    body = as_user(personas[persona]).get(url(ticket)).json()
    client.force_login(personas[persona])
    page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then both show the note, or neither does
    in_api = "Zone file restored" in json.dumps(body["events"])
    on_page = "Zone file restored" in page.split('id="audit-heading"')[1]
    assert in_api == on_page == (persona == "supervisor")


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_the_api_and_the_staff_page_show_opensrs_answers_to_the_same_people(
    personas, persona, alice, as_user, client
):
    # given a password resend whose OpenSRS call was answered
    ticket = TicketFactory(customer=alice, kind=Ticket.Kind.RESEND_PASSWORD)
    answer = "Reset mail queued for owner of alice-shop.test"
    audit_record(
        actor="worker",
        action="opensrs.call",
        ticket=ticket,
        details={
            "action": "SEND_PASSWORD",
            "object": "DOMAIN",
            "attempt": 1,
            "outcome": "ok",
            "response_code": 200,
            "response_text": answer,
            "duration_ms": 42,
        },
    )

    # when the same person reads the ticket on both
    body = as_user(personas[persona]).get(url(ticket)).json()
    client.force_login(personas[persona])
    page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then both show OpenSRS's answer, or neither does; the page shows the call to both
    assert (answer in json.dumps(body)) == (answer in page) == (persona == "supervisor")
    assert "SEND_PASSWORD DOMAIN" in page.split('id="opensrs-heading"')[1]


def test_another_customers_ticket_is_a_404_not_a_403(alice_ticket, bob, as_user):
    # when
    response = as_user(bob.user).get(url(alice_ticket))

    # then
    assert response.status_code == 404
    assert response.json() == {"detail": "No such ticket."}


def test_a_ticket_read_is_kept_by_no_cache_for_another_reader(alice, agent, alice_ticket, as_user):
    # given a staff note on Alice's ticket, which only staff are shown
    services.ticket_reply_add(
        ticket=alice_ticket,
        body="Note",
        actor=agent,
        author="staff",
        channel="staff",
        internal=True,
    )

    # when its customer and an agent read it
    responses = [as_user(user).get(url(alice_ticket)) for user in (alice.user, agent)]

    # then the bodies differ, and each tells caches it depends on who asks (session or token)
    # and is no one else's to keep
    assert responses[0].json() != responses[1].json()
    for response in responses:
        vary = {v.strip().lower() for v in response["Vary"].split(",")}
        assert {"authorization", "cookie"} <= vary
        assert "private" in response["Cache-Control"]


def test_the_ticket_list_is_kept_by_no_cache_for_another_reader(
    alice, agent, alice_ticket, as_user
):
    # given Alice's ticket and another customer's, which only staff list with hers
    TicketFactory(subject="Bob's question", status=S.OPEN)

    # when she and an agent read the same list, by token
    responses = [as_user(user).get(LIST) for user in (alice.user, agent)]

    # then the bodies differ, and each tells caches it depends on who asks and is theirs alone
    assert responses[0].json() != responses[1].json()
    for response in responses:
        vary = {v.strip().lower() for v in response.get("Vary", "").split(",")}
        assert {"authorization", "cookie"} <= vary
        assert "private" in response.get("Cache-Control", "")
    # as is each caller's list of their own tokens
    tokens = as_user(alice.user).get("/api/v1/auth/tokens/")
    assert "authorization" in tokens["Vary"].lower()
    assert "private" in tokens["Cache-Control"]


def test_an_anonymous_detail_is_a_401(alice_ticket, as_user):
    assert as_user(None).get(url(alice_ticket)).status_code == 401


@pytest.mark.parametrize("reference", ["HD-ZZZZZZZZ", "hd-abc", "HD-%00AAAAAAA", "1"])
def test_unknown_or_malformed_references_are_json_404s(agent, as_user, reference):
    # when
    response = as_user(agent).get(f"/api/v1/tickets/{reference}/")

    # then
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


# --- messages ---


def test_the_owner_replies_and_an_awaiting_ticket_reopens(alice, as_user):
    # given
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER)

    # when
    response = post(as_user(alice.user), url(ticket, "messages"), {"body": "Here it is"})

    # then
    assert response.status_code == 201
    assert response.json()["body"] == "Here it is"
    assert response.json()["author"] == "customer"
    assert response.json()["channel"] == "api"
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert ticket.messages.get().author_user == alice.user


def test_another_customer_cannot_post_to_a_ticket_it_cannot_see(alice_ticket, bob, as_user):
    # when
    response = post(as_user(bob.user), url(alice_ticket, "messages"), {"body": "Hi"})

    # then
    assert response.status_code == 404
    assert alice_ticket.messages.count() == 1


def test_an_anonymous_message_is_a_401(alice_ticket, as_user):
    assert post(as_user(None), url(alice_ticket, "messages"), {"body": "x"}).status_code == 401


def test_a_customer_cannot_write_an_internal_note(alice_ticket, alice, as_user):
    # when
    response = post(
        as_user(alice.user), url(alice_ticket, "messages"), {"body": "psst", "internal": True}
    )

    # then
    assert response.status_code == 400
    assert response.json() == {"internal": ["Only help-desk staff can add internal notes."]}
    assert alice_ticket.messages.count() == 1


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_staff_write_notes_the_customer_never_sees(personas, persona, alice_ticket, as_user):
    # given
    staff = as_user(personas[persona])

    # when
    response = post(staff, url(alice_ticket, "messages"), {"body": "Check DNS", "internal": True})

    # then
    assert response.status_code == 201
    assert response.json()["internal"] is True
    customer_view = as_user(personas["alice"]).get(url(alice_ticket)).json()
    assert "Check DNS" not in [m["body"] for m in customer_view["messages"]]
    assert not Notification.objects.filter(ticket=alice_ticket, template="ticket_reply").exists()


def test_a_staff_reply_is_mailed_and_waits_for_the_customer(alice_ticket, agent, as_user):
    # when
    response = post(as_user(agent), url(alice_ticket, "messages"), {"body": "Try now"})

    # then
    assert response.status_code == 201
    assert response.json()["author"] == "staff"
    alice_ticket.refresh_from_db()
    assert alice_ticket.status == S.AWAITING_CUSTOMER
    reply = Notification.objects.get(ticket=alice_ticket, template="ticket_reply")
    assert reply.recipient == alice_ticket.contact_email


def test_a_card_number_in_a_message_is_removed_before_it_is_stored(alice_ticket, alice, as_user):
    # when
    response = post(
        as_user(alice.user), url(alice_ticket, "messages"), {"body": "My card 4111 1111 1111 1111"}
    )

    # then
    assert response.status_code == 201
    assert "4111" not in Message.objects.latest("id").body
    assert "[card number removed]" in response.json()["body"]


def test_a_reply_to_a_closed_ticket_is_a_409(alice, as_user):
    # given
    ticket = TicketFactory(customer=alice, status=S.CLOSED)

    # when
    response = post(as_user(alice.user), url(ticket, "messages"), {"body": "Hello?"})

    # then
    assert response.status_code == 409
    assert response.json()["detail"] == services.REPLY_TO_CLOSED


@pytest.mark.parametrize(
    ("data", "field"),
    [({}, "body"), ({"body": ""}, "body"), ({"body": "x", "internal": "maybe"}, "internal")],
)
def test_an_invalid_message_is_a_400_naming_the_field(alice_ticket, alice, as_user, data, field):
    # when
    response = post(as_user(alice.user), url(alice_ticket, "messages"), data)

    # then
    assert response.status_code == 400
    assert field in response.json()


def test_a_blank_message_is_a_400(alice_ticket, alice, as_user):
    response = post(as_user(alice.user), url(alice_ticket, "messages"), {"body": "   "})
    assert response.status_code == 400
    assert response.json()["detail"] == services.EMPTY_MESSAGE


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("resolve", {}),
        ("assign", {"assignee": "agent"}),
        ("reject", {"reason": "Not possible"}),
        ("messages", {"body": "An answer to what was asked before"}),
    ],
)
def test_a_stale_version_is_refused_with_a_409_and_a_clear_detail(
    alice_ticket, agent, supervisor, as_user, action, data
):
    # given: someone else changed the ticket since version 1 was read
    read = alice_ticket.version
    services.ticket_priority_set(ticket=alice_ticket, priority="high", actor=supervisor)
    alice_ticket.refresh_from_db()
    before = (alice_ticket.version, alice_ticket.status, alice_ticket.assignee_id)

    # when
    response = post(as_user(agent), url(alice_ticket, action), {"version": read, **data})

    # then nothing changed
    assert response.status_code == 409
    assert response.json()["detail"] == services.STALE_TICKET
    alice_ticket.refresh_from_db()
    assert (alice_ticket.version, alice_ticket.status, alice_ticket.assignee_id) == before
    assert not alice_ticket.messages.filter(body=data.get("body", "-")).exists()


# --- staff actions ---

STAFF_ACTIONS = [
    ("assign", {"assignee": "agent"}),
    ("approve", {}),
    ("reject", {"reason": "Not possible"}),
    ("resolve", {}),
]


@pytest.mark.parametrize(("action", "data"), STAFF_ACTIONS)
def test_a_customer_gets_403_for_a_staff_action_on_its_own_ticket(
    alice_ticket, alice, agent, as_user, action, data
):
    # when
    response = post(as_user(alice.user), url(alice_ticket, action), data)

    # then
    assert response.status_code == 403
    assert response.json() == {"detail": "Only help-desk staff can do this."}
    alice_ticket.refresh_from_db()
    assert (alice_ticket.status, alice_ticket.assignee) == (S.OPEN, None)


@pytest.mark.parametrize(("action", "data"), STAFF_ACTIONS)
def test_another_customer_gets_404_for_a_staff_action(
    alice_ticket, bob, agent, as_user, action, data
):
    assert post(as_user(bob.user), url(alice_ticket, action), data).status_code == 404


@pytest.mark.parametrize(("action", "data"), STAFF_ACTIONS)
def test_an_anonymous_staff_action_is_a_401(alice_ticket, as_user, action, data):
    assert post(as_user(None), url(alice_ticket, action), data).status_code == 401


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_staff_assign_a_ticket_to_a_colleague(personas, persona, alice_ticket, as_user):
    # when
    response = post(
        as_user(personas[persona]), url(alice_ticket, "assign"), {"assignee": "supervisor"}
    )

    # then
    assert response.status_code == 200
    assert response.json()["assignee"] == "supervisor"
    assert set(response.json()) == TICKET_KEYS
    alice_ticket.refresh_from_db()
    assert alice_ticket.assignee == personas["supervisor"]
    assert response["ETag"] == f'"{alice_ticket.version}"'


def test_assigning_to_nobody_clears_the_assignee(alice, agent, as_user):
    ticket = TicketFactory(customer=alice, assignee=agent)
    response = post(as_user(agent), url(ticket, "assign"), {"assignee": None})
    assert response.status_code == 200
    assert response.json()["assignee"] is None


@pytest.mark.parametrize("username", ["nobody", "alice@example.test"])
def test_assigning_to_an_unknown_or_non_staff_username_is_a_400(
    alice_ticket, alice, agent, as_user, username
):
    # when
    response = post(as_user(agent), url(alice_ticket, "assign"), {"assignee": username})

    # then
    assert response.status_code == 400
    assert "assignee" in response.json()


def test_assigning_a_closed_ticket_is_a_409(alice, agent, as_user):
    ticket = TicketFactory(customer=alice, status=S.CLOSED)
    response = post(as_user(agent), url(ticket, "assign"), {"assignee": "agent"})
    assert response.status_code == 409


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_staff_approve_a_verified_phone_change(personas, persona, alice, as_user):
    # given
    ticket = TicketFactory(
        customer=alice, kind=Ticket.Kind.MODIFY_INFO, status=S.OPEN, verified_by="session"
    )
    FieldChange.objects.create(
        ticket=ticket, field="phone", old_value=alice.phone, new_value="+60312349999"
    )

    # when
    response = post(as_user(personas[persona]), url(ticket, "approve"))

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    alice.refresh_from_db()
    assert alice.phone == "+60312349999"


def test_an_agent_may_not_approve_a_name_change(alice, agent, as_user):
    # given
    ticket = TicketFactory(
        customer=alice, kind=Ticket.Kind.MODIFY_INFO, status=S.OPEN, verified_by="session"
    )
    FieldChange.objects.create(
        ticket=ticket, field="full_name", old_value=alice.full_name, new_value="Alice T."
    )

    # when
    response = post(as_user(agent), url(ticket, "approve"))

    # then
    assert response.status_code == 403
    assert response.json()["detail"] == services.MODIFY_NEEDS_SUPERVISOR


def test_approving_a_ticket_with_nothing_to_approve_is_a_409(alice_ticket, agent, as_user):
    # when
    response = post(as_user(agent), url(alice_ticket, "approve"))

    # then
    assert response.status_code == 409
    assert response.json()["detail"] == services.NOTHING_TO_APPROVE


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_staff_reject_with_a_reason_the_requester_is_told(personas, persona, alice_ticket, as_user):
    # when
    response = post(
        as_user(personas[persona]), url(alice_ticket, "reject"), {"reason": "Out of scope"}
    )

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    notice = Notification.objects.get(ticket=alice_ticket, template="ticket_rejected")
    assert notice.context["reason"] == "Out of scope"


def test_a_reject_without_a_reason_is_a_400(alice_ticket, agent, as_user):
    response = post(as_user(agent), url(alice_ticket, "reject"), {"reason": ""})
    assert response.status_code == 400
    assert "reason" in response.json()


def test_rejecting_twice_is_a_409(alice_ticket, agent, as_user):
    # given
    client = as_user(agent)
    assert post(client, url(alice_ticket, "reject"), {"reason": "No"}).status_code == 200

    # when
    response = post(client, url(alice_ticket, "reject"), {"reason": "No again"})

    # then
    assert response.status_code == 409
    assert response.json()["extra"] == {"status": "rejected", "target": "rejected"}


@pytest.mark.parametrize("persona", ["agent", "supervisor"])
def test_staff_resolve_a_ticket(personas, persona, alice_ticket, as_user):
    # when
    response = post(as_user(personas[persona]), url(alice_ticket, "resolve"), {"note": "Done"})

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    alice_ticket.refresh_from_db()
    assert alice_ticket.resolved_at is not None


def test_resolving_a_closed_ticket_is_a_409(alice, agent, as_user):
    # given
    ticket = TicketFactory(customer=alice, status=S.CLOSED)

    # when
    response = post(as_user(agent), url(ticket, "resolve"))

    # then
    assert response.status_code == 409
    assert "cannot be moved" in response.json()["detail"]


def test_a_matching_version_lets_the_action_through(alice_ticket, agent, as_user):
    # given
    client = as_user(agent)
    etag = client.get(url(alice_ticket))["ETag"]

    # when
    response = post(client, url(alice_ticket, "resolve"), {"version": int(etag.strip('"'))})

    # then
    assert response.status_code == 200


# --- health ---


def test_health_says_ok_when_the_database_and_broker_answer(db, as_user):
    # when
    response = as_user(None).get("/api/v1/health/")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "database": "ok",
        "broker": "ok",
        "cache": "ok",
        "sweeps": "ok",
        "oldest_pending_notification_seconds": None,
        "last_sweep_seconds": None,
    }
    assert response["Cache-Control"] == "no-store"


def test_health_is_a_503_naming_the_broker_when_it_is_down(db, as_user):
    # when
    with broker_unreachable():
        response = as_user(None).get("/api/v1/health/")

    # then
    assert response.status_code == 503
    assert {k: v for k, v in response.json().items() if v in ("ok", "down")} == {
        "database": "ok",
        "broker": "down",
        "cache": "ok",
        "sweeps": "ok",
    }


# --- errors are JSON ---


def test_malformed_json_is_a_400_in_json(alice_ticket, alice, as_user):
    # when
    response = as_user(alice.user).post(
        url(alice_ticket, "messages"), "{not json", content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


def test_a_form_encoded_body_is_a_415_in_json(alice_ticket, alice, as_user):
    # when
    response = as_user(alice.user).post(url(alice_ticket, "messages"), {"body": "hello"})

    # then
    assert response.status_code == 415
    assert "detail" in response.json()


def test_a_wrong_method_is_a_405_in_json(alice_ticket, agent, as_user):
    response = as_user(agent).delete(url(alice_ticket))
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.'}


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_unknown_api_paths_are_json_404s(db, as_user, method):
    # when
    response = getattr(as_user(None), method)("/api/v1/no-such-thing/")

    # then
    assert response.status_code == 404
    assert response.json() == {"detail": "No such API endpoint."}


def test_a_login_with_only_the_staff_flag_is_not_accepted_as_assignee(alice_ticket, agent, as_user):
    # given: a login the admin flagged staff but gave no staff role
    UserFactory(username="admin-only", is_staff=True)

    # when
    response = post(as_user(agent), url(alice_ticket, "assign"), {"assignee": "admin-only"})

    # then
    assert response.status_code == 400
    assert "assignee" in response.json()
    alice_ticket.refresh_from_db()
    assert alice_ticket.assignee is None
