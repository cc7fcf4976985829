import html
import json
import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix
from django.utils import timezone
from django.utils.formats import date_format
from rest_framework.test import APIClient

from accounts.roles import AGENTS
from accounts.services import staff_user_ensure
from helpdesk.exceptions import ApplicationError
from tests.factories import (
    CustomerFactory,
    DomainFactory,
    TicketFactory,
    UserFactory,
    api_key_for,
)
from tests.markers import postgresql_only
from tests.tickets.verification_helpers import link_token, verification_mail
from tickets import services
from tickets.audit import audit_record
from tickets.models import (
    NO_DUE,
    OPEN_STATUSES,
    PRIORITY_RANK,
    ActionLog,
    Disclosure,
    Message,
    Notification,
    Ticket,
)
from tickets.redaction import REDACTED
from tickets.selectors.queue import QUEUE_SORTS, staff_queue_counts
from tickets.staff.ticket import CANNED_RESPONSES

S = Ticket.Status
REF = "HD-AAAAAAAA"


def rows(response) -> list[str]:
    """The references of the queue rows, in page order."""
    return re.findall(r'data-reference="(HD-[0-9A-Z]{8})"', response.content.decode())


def modify_ticket(customer, changes, settings):
    """A logged-in owner's change request, waiting for staff."""
    settings.MODIFY_AUTO_APPLY_LOW_RISK = False
    return services.request_modify(
        email=None,
        customer=customer,
        changes=changes,
        note="",
        client_key="10.0.0.9",
        actor=customer,
        channel=Ticket.Channel.PORTAL,
    )


def confirmed_email_change(alice, settings):
    ticket = modify_ticket(alice, {"email": "alice.new@example.net"}, settings)
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
    ticket.refresh_from_db()
    return ticket


# --- who may see what ---


def staff_urls(ticket, customer):
    ref, number = ticket.reference, customer.number
    gets = [
        "/staff/",
        "/staff/dashboard/",
        "/staff/audit/",
        f"/staff/tickets/{ref}/",
        f"/staff/tickets/{ref}/presence/",
        f"/staff/customers/{number}/",
        f"/staff/customers/{number}/disclosures/new/",
    ]
    posts = [
        f"/staff/tickets/{ref}/{action}/"
        for action in (
            "claim",
            "assign",
            "reply",
            "note",
            "approve",
            "reject",
            "resolve",
            "close",
            "reopen",
            "priority",
        )
    ] + [f"/staff/customers/{number}/export.json", f"/staff/customers/{number}/disclosures/new/"]
    return gets, posts


@pytest.mark.django_db
def test_a_customer_gets_404_on_every_staff_url(alice_client, alice):
    # given
    ticket = TicketFactory(customer=alice)
    gets, posts = staff_urls(ticket, alice)

    # when / then
    for url in gets:
        assert alice_client.get(url).status_code == 404, url
    for url in posts:
        assert alice_client.post(url, {"version": ticket.version}).status_code == 404, url
    ticket.refresh_from_db()
    assert ticket.version == 1


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_the_login_page(client, alice):
    ticket = TicketFactory(customer=alice)
    gets, posts = staff_urls(ticket, alice)
    for url in gets + posts:
        response = client.post(url) if url in posts and url not in gets else client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


@pytest.mark.django_db
def test_a_customer_without_staff_flag_but_a_login_gets_404(client, bob):
    client.force_login(bob.user)
    assert client.get("/staff/").status_code == 404


@pytest.mark.django_db
def test_a_staff_login_without_a_role_reads_and_works_no_ticket(client, alice):
    # given a login with the staff flag (so it may sign in to the admin) but in no staff role
    ticket = TicketFactory(customer=alice)
    Message.objects.create(ticket=ticket, author="customer", body="My PIN is 4321", channel="email")
    admin_only = staff_user_ensure(username="useradmin", password="x", role=None)
    client.force_login(admin_only)
    api = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(admin_only)}")
    gets, posts = staff_urls(ticket, alice)

    # when / then: no staff page, no staff action, and the API shows it no ticket
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url in posts:
        assert client.post(url, {"version": ticket.version}).status_code == 404, url
    assert api.get("/api/v1/tickets/").json()["results"] == []
    assert api.get(f"/api/v1/tickets/{ticket.reference}/").status_code == 404
    ticket.refresh_from_db()
    assert ticket.version == 1


@pytest.mark.django_db
def test_an_agent_cannot_read_the_audit_log_disclosures_or_export(agent_client, alice):
    # given a disclosure on record
    supervisor = staff_user_ensure(username="boss", password="x-pass-123", role="supervisors")
    services.disclosure_record(
        customer=alice,
        actor=supervisor,
        disclosed_to="Police",
        information="Name and email",
        legal_basis="Court order 12/2026",
    )

    # when / then
    assert agent_client.get("/staff/audit/").status_code == 403
    assert agent_client.get(f"/staff/customers/{alice.number}/disclosures/new/").status_code == 403
    response = agent_client.post(
        f"/staff/customers/{alice.number}/disclosures/new/",
        {"disclosed_to": "X", "information": "Y", "legal_basis": "Z"},
    )
    assert response.status_code == 403
    assert agent_client.post(f"/staff/customers/{alice.number}/export.json").status_code == 403
    page = agent_client.get(f"/staff/customers/{alice.number}/").content.decode()
    assert "Alice Tan" in page
    assert "Disclosure register" not in page and "Police" not in page
    assert "Audit log" not in agent_client.get("/staff/").content.decode()
    assert Disclosure.objects.count() == 1
    assert not ActionLog.objects.filter(action="customer.exported").exists()


@pytest.mark.django_db
def test_an_agent_cannot_approve_an_email_change(agent_client, alice, settings):
    # given an email change whose new address confirmed
    ticket = confirmed_email_change(alice, settings)
    url = f"/staff/tickets/{ticket.reference}/"

    # when the agent opens the ticket, the button is disabled with the reason
    page = agent_client.get(url).content.decode()
    assert services.MODIFY_NEEDS_SUPERVISOR in page
    assert re.search(r'<button type="submit" disabled aria-describedby="approve-blocked">', page)

    # when the agent posts the approval anyway
    response = agent_client.post(f"{url}approve/", {"version": ticket.version})

    # then it is refused with the reason, and nothing changed
    assert response.status_code == 403
    assert services.MODIFY_NEEDS_SUPERVISOR in response.content.decode()
    alice.refresh_from_db()
    assert alice.email == "alice@example.test"


@pytest.mark.django_db
def test_a_supervisor_approves_an_email_change(supervisor_client, alice, settings):
    ticket = confirmed_email_change(alice, settings)
    response = supervisor_client.post(
        f"/staff/tickets/{ticket.reference}/approve/", {"version": ticket.version}, follow=True
    )
    assert response.status_code == 200
    assert "Approved: the changes are applied." in response.content.decode()
    alice.refresh_from_db()
    assert alice.email == "alice.new@example.net"


@pytest.mark.django_db
def test_an_agent_approves_a_phone_change_and_sees_the_diff(agent_client, alice, settings):
    # given
    ticket = modify_ticket(alice, {"phone": "+60 12 345 6789"}, settings)
    url = f"/staff/tickets/{ticket.reference}/"

    # when
    page = agent_client.get(url).content.decode()

    # then the diff shows old -> new
    assert "<del>+60312345678</del>" in page
    assert "<ins>+60123456789</ins>" in page

    # when
    response = agent_client.post(f"{url}approve/", {"version": ticket.version})

    # then
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.phone == "+60123456789"
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED


# --- the queue ---


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 50])
def test_the_queue_makes_the_same_number_of_queries_for_5_and_50_rows(
    agent_client, agent, count, django_assert_num_queries
):
    # given tickets with customers, domains and assignees
    for _ in range(count):
        domain = DomainFactory()
        TicketFactory(
            customer=domain.customer,
            domain=domain,
            assignee=agent,
            due_at=timezone.now() + timedelta(hours=1),
        )
    agent_client.get("/staff/")  # warm up the session

    # when / then, one query each:
    # session / user / view counts (one aggregate) / page of tickets with customer, domain and
    # assignee joined / the user's saved views / the user's permissions (own and groups'); the
    # staff names for the assignee filter kept in the cache by the first request
    with django_assert_num_queries(6):
        response = agent_client.get("/staff/?size=50")
    assert len(rows(response)) == count


@pytest.mark.django_db
def test_the_queue_rows_link_to_their_ticket_and_customer_as_reverse_does(agent_client):
    # given a ticket with a customer, and the site served under a path prefix
    ticket = TicketFactory(customer=CustomerFactory())
    set_script_prefix("/desk/")
    try:
        # when the queue is shown there
        page = agent_client.get("/staff/").content.decode()
        ticket_url = reverse("staff:ticket", args=[ticket.reference])
        customer_url = reverse("staff:customer", args=[ticket.customer.number])
    finally:
        set_script_prefix("/")

    # then the row's links are the ones reverse() gives under that prefix
    assert ticket_url == f"/desk/staff/tickets/{ticket.reference}/"
    assert f'<a class="reference" href="{ticket_url}">{ticket.reference}</a>' in page
    assert f'<a href="{customer_url}">{html.escape(ticket.customer.full_name)}</a>' in page


@pytest.mark.django_db
def test_filters_and_quick_views_return_the_right_tickets(agent_client, agent, supervisor):
    # given
    now = timezone.now()
    mine = TicketFactory(assignee=agent, due_at=now + timedelta(hours=5), subject="Mine")
    theirs = TicketFactory(assignee=supervisor, due_at=now + timedelta(hours=5))
    late = TicketFactory(due_at=now - timedelta(hours=2), kind=Ticket.Kind.RESEND_PASSWORD)
    waiting = TicketFactory(status=S.AWAITING_VERIFICATION, due_at=now + timedelta(hours=9))
    closed = TicketFactory(status=S.CLOSED, due_at=now - timedelta(days=3))

    def get(query):
        return set(rows(agent_client.get(f"/staff/?{query}")))

    # then
    assert get("") == {mine.reference, theirs.reference, late.reference, waiting.reference}
    assert get("view=mine") == {mine.reference}
    assert get("view=unassigned") == {late.reference, waiting.reference}
    assert get("view=overdue") == {late.reference}
    assert get("view=awaiting_verification") == {waiting.reference}
    assert get("view=all") == {
        mine.reference,
        theirs.reference,
        late.reference,
        waiting.reference,
        closed.reference,
    }
    assert get("status=closed") == {closed.reference}
    assert get("kind=resend_password") == {late.reference}
    assert get("assignee=supervisor") == {theirs.reference}


@pytest.mark.django_db
def test_the_counts_per_view_are_shown(agent_client, agent):
    now = timezone.now()
    TicketFactory(assignee=agent, due_at=now - timedelta(hours=1))
    TicketFactory(due_at=now + timedelta(hours=1))
    TicketFactory(status=S.AWAITING_VERIFICATION, due_at=now + timedelta(hours=1))
    page = agent_client.get("/staff/").content.decode()
    counts = dict(
        re.findall(r'view=(\w+)[^"]*" class="view-link[^>]*>[^<]*<span class="count">(\d+)', page)
    )
    assert counts == {
        "open": "3",
        "mine": "1",
        "unassigned": "2",
        "overdue": "1",
        "awaiting_verification": "1",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "select", "cells"),
    [
        ("en", "Select", ["Ticket", "Subject", "Customer", "Due"]),
        ("ms", "Pilih", ["Tiket", "Subjek", "Pelanggan", "Tarikh akhir"]),
    ],
)
def test_every_row_names_its_checkbox_and_its_cells_in_the_page_language(
    agent_client, settings, language, select, cells
):
    tickets = [TicketFactory(due_at=timezone.now() + timedelta(hours=1)) for _ in range(3)]
    agent_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    page = agent_client.get("/staff/").content.decode()
    for ticket in tickets:
        assert f'aria-label="{select} {ticket.reference}"' in page
    for cell in cells:
        assert page.count(f'data-label="{cell}"') == len(tickets)
        assert f'<th scope="col">{cell}</th>' in page


@pytest.mark.django_db
def test_a_queue_row_shows_each_column_with_what_people_typed_escaped(agent_client, agent):
    # given a ticket whose customer, subject and domain asked for hold markup, assigned and
    # overdue, and one without a customer, unassigned and closed
    now = timezone.now()
    customer = CustomerFactory(full_name="O'Brien & <b>Sons</b>", email="ob@example.test")
    typed = TicketFactory(
        customer=customer,
        subject='<script>alert("x")</script>',
        requested_domain="<i>shop</i>.test",
        assignee=agent,
        priority=Ticket.Priority.HIGH,
        due_at=now - timedelta(hours=3),
    )
    anonymous = TicketFactory(
        customer=None, contact_email="a&b@example.test", status=S.CLOSED, due_at=None
    )

    # when the whole queue is shown, and searched for the subject
    page = agent_client.get("/staff/?view=all").content.decode()
    found = agent_client.get("/staff/", {"q": "script"}).content.decode()

    # then each value is escaped once, in its labelled cell
    ref = typed.reference
    customer_url = reverse("staff:customer", args=[customer.number])
    assert (
        f'<tr class="ticket-row overdue-row" data-reference="{ref}">\n      <td class="cell-check">'
        f'<input type="checkbox" name="ticket" value="{ref}" form="bulk-form" class="bulk-check"'
        f' aria-label="Select {ref}"><input type="hidden" name="version-{ref}"'
        f' value="{typed.version}" form="bulk-form"></td>'
    ) in page
    assert (
        '<td class="subject" data-label="Subject">&lt;script&gt;alert(&quot;x&quot;)'
        '&lt;/script&gt;<br><span class="small muted">&lt;i&gt;shop&lt;/i&gt;.test</span></td>'
    ) in page
    assert (
        f'<td data-label="Customer"><a href="{customer_url}">O&#x27;Brien &amp; &lt;b&gt;Sons'
        f'&lt;/b&gt;</a><br><span class="small muted">{customer.number}</span></td>'
    ) in page
    assert '<td data-label="Priority"><span class="badge badge-high">High</span></td>' in page
    assert f'<td data-label="Assignee">{agent.username}</td>' in page
    assert '<td data-label="Due"><span class="sla overdue-label">Overdue by 3 h' in page
    other = page[page.index(f'data-reference="{anonymous.reference}"') :]
    assert '<td data-label="Customer"><span class="muted">a&amp;b@example.test</span>' in other
    assert '<td data-label="Status"><span class="badge badge-closed">Closed</span>' in other
    assert '<td data-label="Assignee">—</td>' in other
    assert '<td data-label="Due"><span class="muted">—</span></td>' in other
    assert '<br><span class="small matched">matched: subject</span></td>' in found


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email", "target"),
        ("number", "target"),
        ("shop-target", "target"),
        ("Printer", "target"),
    ],
)
def test_search_finds_by_reference_customer_domain_and_subject(agent_client, text, expected):
    # given
    customer = CustomerFactory(email="target.person@example.test")
    domain = DomainFactory(name="shop-target.test", customer=customer)
    target = TicketFactory(customer=customer, domain=domain, subject="Printer on fire")
    TicketFactory(subject="Something else")
    query = {
        "reference": target.reference.lower(),
        "email": "TARGET.person@example.test",
        "number": customer.number,
    }.get(text, text)

    # when
    found = rows(agent_client.get("/staff/", {"q": query}))

    # then
    assert found == [target.reference]


@pytest.mark.django_db
def test_the_default_view_puts_overdue_tickets_on_top(agent_client):
    now = timezone.now()
    soon = TicketFactory(due_at=now + timedelta(hours=1))
    later = TicketFactory(due_at=now + timedelta(hours=9))
    very_late = TicketFactory(due_at=now - timedelta(hours=9))
    late = TicketFactory(due_at=now - timedelta(hours=1))
    response = agent_client.get("/staff/")
    assert rows(response) == [very_late.reference, late.reference, soon.reference, later.reference]
    page = response.content.decode()
    # overdue rows carry a class and a text label, not colour alone
    assert page.count('class="ticket-row overdue-row"') == 2
    assert "Overdue by 9 h" in page and "Overdue by 1 h" in page
    assert "59 min left" in page or "1 h 0 min left" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "sort=customer__user__password",
        "sort=-customer__user__password",
        "size=100000",
        "status=customer__user__password",
        "view=customer__user__password",
        "customer__user__password__startswith=md5",
        "cursor=customer__user__password",
    ],
)
def test_a_key_outside_the_allow_list_is_ignored(agent_client, query):
    # given
    now = timezone.now()
    first = TicketFactory(due_at=now - timedelta(hours=2))
    second = TicketFactory(due_at=now + timedelta(hours=2))

    # when
    response = agent_client.get(f"/staff/?{query}")

    # then the default queue is shown
    assert response.status_code == 200
    assert rows(response) == [first.reference, second.reference]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("status=open&status=closed", "status"),
        ("sort=created&sort=-created", "sort"),
        ("size=25&size=100", "size"),
        ("view=all&view=mine", "view"),
        ("q=alice&q=bob", "q"),
        ("cursor=a&cursor=b", "cursor"),
    ],
)
def test_a_queue_parameter_given_twice_is_refused_by_name(agent_client, query, name):
    # given a closed ticket, which `?view=all&status=open&status=closed` would list by the last
    now = timezone.now()
    TicketFactory(status=Ticket.Status.CLOSED, due_at=now)
    opened = TicketFactory(due_at=now + timedelta(hours=2))

    # when a parameter that takes one value is given two
    response = agent_client.get(f"/staff/?{query}")

    # then the page says which, and shows the queue without it (its default)
    page = response.content.decode()
    assert response.status_code == 400
    assert f"given more than once and was ignored: {name}." in page
    assert rows(response) == [opened.reference]


@pytest.mark.django_db
def test_a_dashboard_period_given_twice_is_refused(agent_client):
    response = agent_client.get("/staff/dashboard/?range=7&range=90")

    assert response.status_code == 400
    assert "Given more than once" in response.content.decode()


@pytest.mark.django_db
def test_an_unknown_sort_says_it_was_ignored(agent_client):
    page = agent_client.get("/staff/?sort=customer__user__password").content.decode()
    assert "were not recognised and were ignored" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sort",
    [
        "urgency",
        "created",
        "-created",
        "due",
        "-due",
        "priority",
        "-priority",
        "updated",
        "-updated",
    ],
)
def test_keyset_pages_cover_every_ticket_once_in_order(agent_client, sort):
    # given 30 tickets with ties on the sort keys
    now = timezone.now()
    priorities = list(Ticket.Priority.values)
    for i in range(30):
        TicketFactory(
            due_at=now + timedelta(hours=(i % 7) - 3),
            priority=priorities[i % 4],
            status=S.OPEN,
        )

    # when
    first = agent_client.get("/staff/", {"sort": sort, "size": 25})
    page = first.content.decode()
    next_link = re.search(r'href="\?([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    second = agent_client.get(f"/staff/?{next_link}")

    # then
    seen = rows(first) + rows(second)
    assert len(rows(first)) == 25 and len(rows(second)) == 5
    assert len(set(seen)) == 30
    assert 'rel="next"' not in second.content.decode()


def walk_queue(client, query) -> list[str]:
    """The references of every page of the queue for `query`, following the next links."""
    seen, response = [], client.get("/staff/", query)
    for _ in range(10):
        seen += rows(response)
        found = re.search(r'href="\?([^"]+)" rel="next"', response.content.decode())
        if found is None:
            return seen
        response = client.get(f"/staff/?{html.unescape(found.group(1))}")
    raise AssertionError("the queue did not end after 10 pages")


def queue_order(tickets, sort, now) -> list[str]:
    """The references of `tickets` in the order the queue's `sort` promises."""

    def keys(t):
        overdue = t.status in OPEN_STATUSES and t.due_at is not None and t.due_at < now
        return {
            "urgency": (not overdue, t.due_at or NO_DUE),
            "due": (t.due_at or NO_DUE,),
            "priority": (PRIORITY_RANK[t.priority],),
            "created": (t.created_at,),
            "updated": (t.updated_at,),
        }[sort.lstrip("-")] + (t.id,)

    ordered = sorted(tickets, key=keys, reverse=sort.startswith("-"))
    return [t.reference for t in ordered]


def mixed_tickets(count, now):
    """Open and closed tickets, overdue or not, some without a due time, with ties on each key."""
    statuses = [S.OPEN, S.NEW, S.CLOSED, S.AWAITING_CUSTOMER, S.RESOLVED]
    priorities = list(Ticket.Priority.values)
    for i in range(count):
        ticket = TicketFactory(
            customer=None,
            status=statuses[i % 5],
            priority=priorities[i % 4],
            # never due at `now` itself: overdue or not must not depend on when the page is read
            due_at=None if i % 11 == 0 else now + timedelta(hours=(i % 9) - 6, minutes=30),
        )
        # update() leaves updated_at alone (auto_now applies to save() only)
        Ticket.objects.filter(pk=ticket.pk).update(
            created_at=now - timedelta(minutes=i % 13), updated_at=now - timedelta(minutes=i % 7)
        )
    return list(Ticket.objects.all())


@pytest.mark.django_db
@pytest.mark.parametrize("view", ["all", "open"])
@pytest.mark.parametrize("sort", list(QUEUE_SORTS))
def test_walking_every_page_shows_every_ticket_once_in_sort_order(agent_client, view, sort):
    # given 80 tickets, open and closed, with ties on every sort key; more than a page overdue
    now = timezone.now()
    tickets = mixed_tickets(80, now)
    if view == "open":
        tickets = [t for t in tickets if t.status in OPEN_STATUSES]

    # when
    seen = walk_queue(agent_client, {"view": view, "sort": sort, "size": 25})

    # then
    assert seen == queue_order(tickets, sort, now)


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["urgency", "-created", "priority"])
def test_walking_the_pages_of_a_search_shows_every_match_once(agent_client, sort):
    # given matches by subject and by domain, some by both, and tickets that do not match
    now = timezone.now()
    tickets = mixed_tickets(45, now)
    matches = tickets[:30]
    for ticket in matches[:25]:
        Ticket.objects.filter(pk=ticket.pk).update(subject=f"Printer {ticket.pk} on fire")
    for ticket in matches[20:]:
        domain = DomainFactory(name=f"printer-{ticket.pk}.test")
        Ticket.objects.filter(pk=ticket.pk).update(domain=domain)
    matches = list(Ticket.objects.filter(pk__in=[t.pk for t in matches]))

    # when
    seen = walk_queue(agent_client, {"view": "all", "q": "PRINTER", "sort": sort, "size": 25})

    # then
    assert seen == queue_order(matches, sort, now)


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["SOMEONE@example.test", "not-ours"])
def test_search_finds_an_anonymous_request_by_contact_email_or_requested_domain(agent_client, text):
    target = TicketFactory(
        customer=None, contact_email="someone@example.test", requested_domain="not-ours.example"
    )
    TicketFactory(customer=None, contact_email="other@example.test")
    assert rows(agent_client.get("/staff/", {"q": text})) == [target.reference]


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["faß.de", "FAß", "xn--fa-hia"])
def test_search_finds_an_idn_domain_typed_in_unicode_and_not_its_look_alike(agent_client, text):
    target = TicketFactory(domain=DomainFactory(name="xn--fa-hia.de"))
    TicketFactory(domain=DomainFactory(name="fass.de"))

    assert rows(agent_client.get("/staff/", {"q": text})) == [target.reference]


def view_counts(response) -> dict[str, str]:
    page = response.content.decode()
    return dict(
        re.findall(r'view=(\w+)[^"]*" class="view-link[^>]*>[^<]*<span class="count">(\d+)', page)
    )


@pytest.mark.django_db
def test_the_view_counts_are_kept_a_few_seconds_for_each_staff_member(
    agent_client, agent, supervisor, settings, django_assert_num_queries
):
    # given counts kept for a minute, and the agent's first look at the queue
    settings.STAFF_QUEUE_COUNTS_CACHE_SECONDS = 60
    TicketFactory(assignee=agent)
    first = view_counts(agent_client.get("/staff/"))
    TicketFactory(assignee=agent)

    # when the agent looks again: the six queries of the page, less the counts aggregate
    with django_assert_num_queries(5):
        second = agent_client.get("/staff/")

    # then the agent sees the kept counts, and another staff member fresh ones
    assert view_counts(second) == first
    assert first["open"] == "1" and first["mine"] == "1"
    other = Client()
    other.force_login(supervisor)
    assert view_counts(other.get("/staff/"))["open"] == "2"


@pytest.mark.django_db
def test_the_view_counts_are_counted_on_each_page_while_the_cache_is_down(
    agent_client, agent, settings, cache_unreachable
):
    # given counts normally kept a minute, and a cache that cannot be reached
    settings.STAFF_QUEUE_COUNTS_CACHE_SECONDS = 60
    TicketFactory(assignee=agent)

    # when
    response = agent_client.get("/staff/")

    # then
    assert response.status_code == 200
    assert view_counts(response)["mine"] == "1"


@postgresql_only("index-only scans")
@pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction
def test_the_view_counts_read_their_index_alone_never_the_tickets_table(agent, settings):
    # given tickets in every open status, one paused, and the counts not kept
    settings.STAFF_QUEUE_COUNTS_CACHE_SECONDS = 0
    for status in (S.NEW, S.OPEN, S.AWAITING_CUSTOMER, S.AWAITING_VERIFICATION):
        TicketFactory(status=status, assignee=agent)
    Ticket.objects.filter(status=S.AWAITING_CUSTOMER).update(sla_paused_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) tickets_ticket")  # index-only needs the visibility map
    with CaptureQueriesContext(connection) as counted:
        staff_queue_counts(user=agent)
    (aggregate,) = counted.captured_queries

    # when the planner may not read the table itself (at 1,000,000 tickets it prefers to,
    # 672 ms, whenever the index lacks a column the counts read)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + aggregate["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # then the counts come from the open tickets' index alone
    assert "Index Only Scan using ticket_open_counts" in plan, plan
    assert "Heap Fetches: 0" in plan, plan


@pytest.mark.django_db
def test_a_forged_cursor_starts_from_the_first_page(agent_client):
    tickets = [TicketFactory(due_at=timezone.now() + timedelta(hours=i)) for i in range(3)]
    response = agent_client.get("/staff/?cursor=eyJzIjoidXJnZW5jeSJ9:forged")
    assert rows(response) == [t.reference for t in tickets]


# --- the ticket page and its actions ---


@pytest.mark.django_db
def test_markup_in_subject_and_messages_is_escaped(agent_client, alice):
    # given
    ticket = TicketFactory(customer=alice, subject="<script>alert(1)</script>")
    Message.objects.create(
        ticket=ticket, author="customer", body="<script>alert(2)</script>", channel="portal"
    )

    # when
    ticket_page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    queue_page = agent_client.get("/staff/").content.decode()

    # then
    for page in (ticket_page, queue_page):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(" in page


@pytest.mark.django_db
def test_the_ticket_page_shows_record_notes_notifications_opensrs_calls_and_audit(
    client, agent, supervisor, alice
):
    # given
    domain = DomainFactory(name="alice-shop.test", customer=alice)
    ticket = TicketFactory(customer=alice, domain=domain, kind=Ticket.Kind.RESEND_PASSWORD)
    Message.objects.create(
        ticket=ticket, author="staff", body="Secret staff note", channel="staff", internal=True
    )
    Notification.objects.create(
        ticket=ticket,
        template="password_resend_notice",
        recipient="alice@example.test",
        status=Notification.Status.BOUNCED,
        idempotency_key="k1",
    )
    audit_record(
        actor="worker",
        action="opensrs.call",
        ticket=ticket,
        details={
            "action": "SEND_PASSWORD",
            "object": "DOMAIN",
            "outcome": "ok",
            "response_code": 200,
            "attempt": 1,
            "duration_ms": 42,
            "response_text": "Command successful",
        },
    )

    # when
    client.force_login(agent)
    page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then
    assert "alice@example.test" in page and alice.number in page and "alice-shop.test" in page
    assert 'class="message-item from-staff internal"' in page and "Secret staff note" in page
    assert "password_resend_notice" in page and "Bounced" in page
    assert "SEND_PASSWORD DOMAIN" in page and "42 ms" in page
    called = timezone.localtime(ActionLog.objects.get(action="opensrs.call").created_at)
    calls = page.split('id="opensrs-heading"')[1].split("</table>")[0]
    when = f'datetime="{called.isoformat()}">{date_format(called, "DATETIME_FORMAT")}</time>'
    assert when in calls
    assert "OpenSRS was called." in page
    # an agent sees the trail and what each call did, a supervisor also each entry's details and
    # OpenSRS's answers (its code and text), as the API answers each of them
    assert "ok" in calls.split("<td>1</td>")[1]
    assert "Command successful" not in page and "<td>200</td>" not in calls
    assert '<th scope="row">Duration ms</th><td>42</td>' not in page
    client.force_login(supervisor)
    supervisor_page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert '<th scope="row">Duration ms</th><td>42</td>' in supervisor_page
    supervisor_calls = supervisor_page.split('id="opensrs-heading"')[1].split("</table>")[0]
    assert "Command successful" in supervisor_calls and "<td>200</td>" in supervisor_calls


@pytest.mark.django_db
def test_claim_assign_priority_and_notes(agent_client, agent, supervisor, alice):
    ticket = TicketFactory(customer=alice)
    url = f"/staff/tickets/{ticket.reference}/"

    assert agent_client.post(f"{url}claim/", {"version": 1}).status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee == agent

    agent_client.post(f"{url}assign/", {"version": ticket.version, "assignee": "supervisor"})
    ticket.refresh_from_db()
    assert ticket.assignee == supervisor

    agent_client.post(f"{url}priority/", {"version": ticket.version, "priority": "urgent"})
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"

    agent_client.post(f"{url}note/", {"version": ticket.version, "body": "Called the customer"})
    note = ticket.messages.get()
    assert note.internal and note.author_user == agent
    assert not Notification.objects.filter(ticket=ticket).exists()
    actions = list(ActionLog.objects.filter(ticket=ticket).values_list("action", flat=True))
    assert actions == [
        "ticket.assigned",
        "ticket.assigned",
        "ticket.priority_changed",
        "ticket.note_added",
    ]


@pytest.mark.django_db
def test_assigning_to_someone_who_is_not_staff_is_refused(agent_client, alice):
    ticket = TicketFactory(customer=alice)
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/assign/",
        {"version": 1, "assignee": alice.user.username},
    )
    assert response.status_code == 400
    assert "There is no staff member called" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.assignee is None


@pytest.mark.django_db
def test_a_reply_is_mailed_through_the_outbox(agent_client, agent, alice):
    # given
    ticket = TicketFactory(customer=alice)

    # when
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/reply/", {"version": 1, "body": "Hello Alice"}
    )

    # then
    assert response.status_code == 302
    message = ticket.messages.get()
    assert (message.author, message.channel, message.internal) == ("staff", "staff", False)
    notification = Notification.objects.get(ticket=ticket, template="ticket_reply")
    assert notification.recipient == "alice@example.test"
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER


@pytest.mark.django_db
def test_a_card_number_in_a_staff_reply_or_note_is_never_stored(agent_client, alice):
    # given an agent pastes a card number the customer sent by phone
    ticket = TicketFactory(customer=alice)

    # when it goes out as a reply, then into an internal note
    agent_client.post(
        f"/staff/tickets/{ticket.reference}/reply/",
        {"version": 1, "body": "We will not use 4111 1111 1111 1111, sorry"},
    )
    ticket.refresh_from_db()
    agent_client.post(
        f"/staff/tickets/{ticket.reference}/note/",
        {"version": ticket.version, "body": "card 4111-1111-1111-1111 on the call"},
    )

    # then neither the messages nor the email to the customer hold it
    bodies = list(ticket.messages.order_by("pk").values_list("body", flat=True))
    assert len(bodies) == 2
    assert all("4111" not in body and REDACTED in body for body in bodies)
    reply_email = Notification.objects.get(ticket=ticket, template="ticket_reply")
    assert "4111" not in str(reply_email.context)


@pytest.mark.django_db
def test_a_card_number_in_a_resolution_note_or_rejection_reason_is_never_stored(
    agent_client, agent, alice
):
    # given an agent pastes a card number into what the requester is told
    resolved = TicketFactory(customer=alice)
    rejected = TicketFactory(customer=alice, kind=Ticket.Kind.RESEND_PASSWORD)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(agent)}")

    # when one ticket is resolved from the staff page and the other rejected through the API
    agent_client.post(
        f"/staff/tickets/{resolved.reference}/resolve/",
        {"version": 1, "note": "Refunded to 4111 1111 1111 1111."},
    )
    api.post(
        f"/api/v1/tickets/{rejected.reference}/reject/",
        {"reason": "We cannot charge 4111-1111-1111-1111."},
        format="json",
    )

    # then the audit chain and the emails hold the text without the number
    for ticket, status in ((resolved, S.RESOLVED), (rejected, S.REJECTED)):
        ticket.refresh_from_db()
        assert ticket.status == status
        [moved] = ActionLog.objects.filter(ticket=ticket, action="ticket.status_changed")
        assert "4111" not in str(moved.details) and REDACTED in str(moved.details)
        told = ["ticket_resolved", "ticket_rejected"]
        notice = Notification.objects.get(ticket=ticket, template__in=told)
        assert "4111" not in str(notice.context) and REDACTED in str(notice.context)


@pytest.mark.django_db
def test_a_canned_response_is_appended_without_javascript(agent_client, alice):
    ticket = TicketFactory(customer=alice)
    agent_client.post(
        f"/staff/tickets/{ticket.reference}/reply/",
        {"version": 1, "body": "Hi Alice,", "canned": "received"},
    )
    assert ticket.messages.get().body == "Hi Alice,\n\n" + str(CANNED_RESPONSES["received"][1])


@pytest.mark.django_db
def test_an_empty_reply_and_a_reject_without_reason_are_refused(agent_client, alice):
    ticket = TicketFactory(customer=alice)
    url = f"/staff/tickets/{ticket.reference}/"
    response = agent_client.post(f"{url}reply/", {"version": 1, "body": "  "})
    assert response.status_code == 400
    assert "Write a reply or choose a canned response." in response.content.decode()
    response = agent_client.post(f"{url}reject/", {"version": 1, "reason": ""})
    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN and ticket.version == 1


@pytest.mark.django_db
def test_reject_resolve_reopen_and_close(agent_client, alice):
    first = TicketFactory(customer=alice, kind=Ticket.Kind.RESEND_PASSWORD)
    url = f"/staff/tickets/{first.reference}/"
    agent_client.post(f"{url}reject/", {"version": 1, "reason": "Not ours to change"})
    first.refresh_from_db()
    assert first.status == S.REJECTED
    assert Notification.objects.get(ticket=first).context["reason"] == "Not ours to change"

    second = TicketFactory(customer=alice)
    url = f"/staff/tickets/{second.reference}/"
    agent_client.post(f"{url}resolve/", {"version": 1, "note": "Done"})
    second.refresh_from_db()
    assert second.status == S.RESOLVED
    agent_client.post(f"{url}reopen/", {"version": second.version})
    second.refresh_from_db()
    assert second.status == S.OPEN
    agent_client.post(f"{url}resolve/", {"version": second.version})
    second.refresh_from_db()
    agent_client.post(f"{url}close/", {"version": second.version})
    second.refresh_from_db()
    assert second.status == S.CLOSED


@pytest.mark.django_db
def test_a_stale_action_is_refused_with_a_clear_message(agent_client, supervisor, alice):
    # given the agent loaded the page at version 1, then a supervisor changed the ticket
    ticket = TicketFactory(customer=alice)
    services.ticket_priority_set(ticket=ticket, priority="high", actor=supervisor)

    # when the agent's older form arrives
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/reply/", {"version": 1, "body": "My draft reply"}
    )

    # then it is refused, says why, and keeps the draft
    assert response.status_code == 409
    page = response.content.decode()
    assert services.STALE_TICKET in page
    assert "My draft reply" in page
    assert not ticket.messages.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "posted", "status", "field"),
    [
        ("resolve", {"note": "The DNS is fixed"}, S.RESOLVED, None),
        ("reject", {"reason": "Not our domain"}, S.REJECTED, None),
        ("priority", {"priority": "urgent"}, S.OPEN, "priority"),
    ],
)
def test_a_staff_action_passes_its_form_to_the_service_and_a_stale_one_keeps_the_input(
    agent_client, alice, action, posted, status, field
):
    # given a change request another agent has just changed
    ticket = TicketFactory(customer=alice, kind=Ticket.Kind.MODIFY_INFO, status=S.OPEN, version=2)
    url = f"/staff/tickets/{ticket.reference}/{action}/"

    # when the older form arrives, then the current one
    stale = agent_client.post(url, {"version": 1, **posted})
    done = agent_client.post(url, {"version": 2, **posted})

    # then the first is refused and what was typed is still on the page; the second is done
    assert stale.status_code == 409
    assert services.STALE_TICKET in stale.content.decode()
    if field is None:
        assert next(iter(posted.values())) in stale.content.decode()
    assert done.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == status
    if field is not None:
        assert getattr(ticket, field) == posted[field]
    else:
        event = ActionLog.objects.filter(ticket=ticket, action="ticket.status_changed").last()
        assert event is not None and event.details["reason"] == next(iter(posted.values()))


@pytest.mark.django_db
def test_a_staff_action_with_an_invalid_form_changes_nothing(agent_client, alice):
    # given
    ticket = TicketFactory(customer=alice, kind=Ticket.Kind.MODIFY_INFO, status=S.OPEN)

    # when a rejection comes without its reason
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/reject/", {"version": 1, "reason": ""}
    )

    # then
    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN


@pytest.mark.django_db
def test_a_form_without_a_version_is_refused(agent_client, alice):
    ticket = TicketFactory(customer=alice)
    response = agent_client.post(f"/staff/tickets/{ticket.reference}/close/")
    assert response.status_code == 400
    assert "This form is out of date" in response.content.decode()


@pytest.mark.django_db
def test_an_illegal_transition_is_a_409_with_the_reason(agent_client, alice):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    response = agent_client.post(f"/staff/tickets/{ticket.reference}/reopen/", {"version": 1})
    assert response.status_code == 409
    assert "it cannot be moved to" in response.content.decode()


@pytest.mark.django_db
def test_another_staff_member_viewing_is_shown(client, agent, supervisor, alice):
    # given the supervisor opened the ticket
    ticket = TicketFactory(customer=alice)
    client.force_login(supervisor)
    client.get(f"/staff/tickets/{ticket.reference}/")

    # when the agent opens it
    client.force_login(agent)
    page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then
    assert "supervisor is also looking at this ticket." in page


@pytest.mark.django_db
def test_presence_reports_viewers_and_changes_since_the_page_loaded(client, agent, alice):
    ticket = TicketFactory(customer=alice)
    other = staff_user_ensure(username="other", password="x-pass-123", role=AGENTS)
    client.force_login(other)
    client.get(f"/staff/tickets/{ticket.reference}/")
    client.force_login(agent)
    url = f"/staff/tickets/{ticket.reference}/presence/"

    assert client.get(url, {"version": 1}).json() == {
        "viewers": ["other"],
        "version": 1,
        "changed": False,
    }
    services.ticket_priority_set(ticket=ticket, priority="low", actor=other)
    cache.clear()
    assert client.get(url, {"version": 1}).json() == {
        "viewers": [],
        "version": 2,
        "changed": True,
    }


# --- customers, disclosures, export, audit ---


@pytest.mark.django_db
def test_a_supervisor_records_a_disclosure(supervisor_client, supervisor, alice):
    # when
    response = supervisor_client.post(
        f"/staff/customers/{alice.number}/disclosures/new/",
        {
            "disclosed_to": "Royal Malaysia Police",
            "information": "Name, email and phone",
            "legal_basis": "Production order, s. 51 CPC",
            "reference": "PO-2026-17",
            "disclosed_at": "2026-03-01T10:30",
        },
        follow=True,
    )

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "Royal Malaysia Police" in page and "PO-2026-17" in page
    disclosure = Disclosure.objects.get()
    assert disclosure.recorded_by == supervisor
    row = ActionLog.objects.get(action="disclosure.recorded")
    assert row.customer == alice
    assert row.details == {
        "disclosure": disclosure.pk,
        "disclosed_to": "Royal Malaysia Police",
        "information": "Name, email and phone",
        "legal_basis": "Production order, s. 51 CPC",
        "reference": "PO-2026-17",
        # As entered, in the site's time zone.
        "disclosed_at": datetime(
            2026, 3, 1, 10, 30, tzinfo=timezone.get_current_timezone()
        ).isoformat(),
    }


@pytest.mark.django_db
def test_a_disclosure_needs_who_what_and_why(supervisor_client, alice):
    response = supervisor_client.post(
        f"/staff/customers/{alice.number}/disclosures/new/", {"disclosed_to": "Someone"}
    )
    assert response.status_code == 400
    assert not Disclosure.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("when", ["0001-01-01T00:00", "1999-12-31T10:00", "2999-01-01T00:00"])
def test_a_disclosure_dated_before_2000_or_in_the_future_is_refused_on_its_field(
    supervisor_client, alice, when
):
    # A time before year 1 in UTC was stored on PostgreSQL and then failed every read of the
    # customer's page and export (a 500 on SQLite at once).
    response = supervisor_client.post(
        f"/staff/customers/{alice.number}/disclosures/new/",
        {
            "disclosed_to": "Police",
            "information": "Name",
            "legal_basis": "Order",
            "disclosed_at": when,
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors["disclosed_at"] == [
        "Give a time from 1 January 2000 until now."
    ]
    assert not Disclosure.objects.exists()
    assert supervisor_client.get(f"/staff/customers/{alice.number}/").status_code == 200
    assert supervisor_client.post(f"/staff/customers/{alice.number}/export.json").status_code == 200


@pytest.mark.django_db
def test_the_export_holds_everything_but_the_card_token_and_is_audited(
    supervisor_client, supervisor, alice, settings
):
    # given
    alice.card_brand, alice.card_last4, alice.card_token = "visa", "4242", "tok_secret_123"
    alice.save()
    DomainFactory(name="alice-shop.test", customer=alice)
    ticket = modify_ticket(alice, {"phone": "+60 12 345 6789"}, settings)
    services.disclosure_record(
        customer=alice,
        actor=supervisor,
        disclosed_to="Court",
        information="Email",
        legal_basis="Order",
    )

    # when
    response = supervisor_client.post(f"/staff/customers/{alice.number}/export.json")

    # then
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="customer-{alice.number}.json"'
    )
    assert b"tok_secret_123" not in response.content
    data = json.loads(response.content)
    assert data["customer"]["email"] == "alice@example.test"
    assert data["customer"]["card_last4"] == "4242"
    assert "card_token" not in data["customer"]
    assert [d["name"] for d in data["domains"]] == ["alice-shop.test"]
    assert data["tickets"][0]["reference"] == ticket.reference
    assert data["tickets"][0]["changes"][0]["new"] == "+60123456789"
    assert data["disclosures"][0]["disclosed_to"] == "Court"
    assert {"ticket.created", "disclosure.recorded"} <= {a["action"] for a in data["audit"]}
    exported = ActionLog.objects.get(action="customer.exported")
    assert exported.customer == alice and exported.actor == "staff:supervisor"


@pytest.mark.django_db
def test_the_export_is_not_a_get(supervisor_client, alice):
    assert supervisor_client.get(f"/staff/customers/{alice.number}/export.json").status_code == 405
    assert not ActionLog.objects.filter(action="customer.exported").exists()


@pytest.mark.django_db
def test_the_customer_page_lists_domains_tickets_and_disclosures(supervisor_client, alice):
    DomainFactory(name="alice-shop.test", customer=alice)
    ticket = TicketFactory(customer=alice)
    page = supervisor_client.get(f"/staff/customers/{alice.number}/").content.decode()
    assert "alice-shop.test" in page and ticket.reference in page
    assert "Disclosure register" in page
    assert supervisor_client.get("/staff/customers/C00000000/").status_code == 404


@pytest.mark.django_db
def test_the_audit_log_filters_pages_and_verifies_the_chain(supervisor_client, alice):
    # given
    ticket = TicketFactory(customer=alice)
    for i in range(55):
        audit_record(actor="system", action="test.row", ticket=ticket, details={"i": i})
    audit_record(actor="system", action="other.row", customer=alice)

    # when
    page = supervisor_client.get("/staff/audit/", {"action": "test.row"}).content.decode()

    # then 50 rows, newest first, and a link to the next page
    assert page.count("<code>test.row</code>") == 50
    assert "other.row</code>" not in page.split("<tbody>")[1]
    older = re.search(r'href="\?([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    rest = supervisor_client.get(f"/staff/audit/?{older}").content.decode()
    assert rest.count("<code>test.row</code>") == 5

    by_customer = supervisor_client.get("/staff/audit/", {"customer": alice.number})
    assert "<code>other.row</code>" in by_customer.content.decode()
    by_ticket = supervisor_client.get("/staff/audit/", {"ticket": ticket.reference}).content
    assert b"<code>other.row</code>" not in by_ticket

    verified = supervisor_client.get("/staff/audit/", {"verify": "1"}).content.decode()
    assert "The chain is intact: 56 rows checked." in verified


@pytest.mark.django_db
def test_a_login_with_only_the_staff_flag_is_neither_offered_nor_accepted_as_assignee(
    agent_client, agent, alice
):
    # given: a login the admin flagged staff but gave no staff role, a superuser, and a login
    # given the permission itself rather than through a role
    UserFactory(username="admin-only", is_staff=True)
    UserFactory(username="root", is_staff=True, is_superuser=True)
    direct = UserFactory(username="direct", is_staff=True)
    direct.user_permissions.add(Permission.objects.get(codename="work_ticket"))
    ticket = TicketFactory(customer=alice)
    page = f"/staff/tickets/{ticket.reference}/"

    # when: offered on the ticket page and the queue, then asked for by the page and in bulk
    offered = agent_client.get(page).context["staff_names"]
    in_queue = agent_client.get("/staff/").context["staff_names"]
    by_page = agent_client.post(f"{page}assign/", {"version": 1, "assignee": "admin-only"})
    by_bulk = agent_client.post(
        "/staff/bulk/", {"action": "assign:admin-only", "ticket": ticket.reference}
    )

    # then: a staff role (or a superuser's every permission) is what makes a colleague
    assert offered == in_queue == ["agent", "direct", "root"]
    assert by_page.status_code == 400
    assert "There is no staff member called admin-only" in by_page.content.decode()
    assert by_bulk.status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee is None
    with pytest.raises(ApplicationError, match="only be assigned to staff"):
        services.ticket_assign(
            ticket=ticket, assignee=UserFactory(username="admin-only"), actor=agent
        )


def test_select_options_marks_the_chosen_value_and_escapes_as_the_template_did():
    from django.template import engines

    # given the loop the staff menus were written as, and the tag that replaced it
    loop = engines["django"].from_string(
        '{% for value, label in choices %}<option value="{{ value }}"'
        "{% if value == selected %} selected{% endif %}>{{ label }}</option>{% endfor %}"
    )
    tag = engines["django"].from_string(
        "{% load staff_tags %}{% select_options choices selected %}"
    )
    for choices, selected in [
        ([("", "Any"), ("a&b", '"A" <b>'), ("c", "O'C")], "a&b"),
        ([(25, "25"), (50, "50"), (100, "100")], 50),
        ([(25, "25"), (50, "50")], "50"),  # a value of another type is not chosen
        (list(Ticket.Priority.choices), "high"),
    ]:
        context = {"choices": choices, "selected": selected}
        # then both print the same
        assert tag.render(context) == loop.render(context)
    names = engines["django"].from_string("{% load staff_tags %}{% select_options names chosen %}")
    page = names.render({"names": ["agent", "o.brien"], "chosen": "o.brien"})
    assert (
        page
        == '<option value="agent">agent</option><option value="o.brien" selected>o.brien</option>'
    )


@pytest.mark.django_db
def test_the_queue_and_the_dashboard_keep_their_words_per_language(agent_client, settings):
    """Their constant texts are translated once per language (i18n_cached), never carried over.

    Malay, English, then Malay again in one process: each page in the language asked for.
    """
    TicketFactory()
    words = {
        "/staff/": {"en": ["Ticket queue", "My saved views"], "ms": ["Baris gilir tiket"]},
        "/staff/dashboard/": {
            "en": ["Period", "Numbers per day"],
            "ms": ["Tempoh", "Bilangan setiap hari"],
        },
    }
    for language, other in (("ms", "en"), ("en", "ms"), ("ms", "en")):
        agent_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        for url, by_language in words.items():
            page = agent_client.get(url).content.decode()
            assert f'lang="{language}"' in page
            for word in by_language[language]:
                assert word in page
            for word in by_language[other]:
                assert word not in page
