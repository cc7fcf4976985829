import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django.utils.formats import date_format

from accounts.roles import AGENTS
from accounts.services import staff_user_ensure
from tests.factories import CustomerFactory, TicketFactory, staff_reply
from tests.tickets.test_attachments import attach
from tickets import services
from tickets.emails import build_message
from tickets.models import Attachment, Message, Notification, Ticket
from tickets.services.transitions import NOT_REJECTABLE
from tickets.staff.ticket import PRESENCE_SECONDS, ReplyForm

S = Ticket.Status


# --- the customer's other tickets ---


@pytest.mark.django_db
def test_the_ticket_page_lists_the_customers_latest_other_tickets_and_their_count(agent_client):
    # given a customer with 12 other tickets, and someone else's ticket
    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer)
    others = [TicketFactory(customer=customer, subject=f"Question {n}") for n in range(12)]
    for n, other in enumerate(others):
        Ticket.objects.filter(pk=other.pk).update(created_at=timezone.now() - timedelta(days=n))
    stranger = TicketFactory()

    # when
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then the newest 10, the count of all, and a way to the rest
    section = page.split('id="other-tickets-heading"')[1].split("</ul>")[0]
    listed = re.findall(r"/staff/tickets/(HD-[0-9A-Z]{8})/", section)
    assert listed == [o.reference for o in others[:10]]
    assert ">12 other tickets</h3>" in page
    assert "Latest 10 shown; see all on the customer" in page
    assert stranger.reference not in page


@pytest.mark.django_db
@pytest.mark.parametrize("others", [0, 1, 3])
def test_a_customers_other_tickets_are_counted_without_the_ticket_itself(
    others, django_assert_num_queries
):
    # given a ticket, `others` older tickets of its customer, a newer one of someone else
    from tickets.selectors.ticket_page import customer_other_tickets

    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer)
    older = [TicketFactory(customer=customer) for _ in range(others)]
    for n, other in enumerate(older):
        Ticket.objects.filter(pk=other.pk).update(created_at=timezone.now() - timedelta(days=n + 1))
    TicketFactory(customer=CustomerFactory())

    # when
    with django_assert_num_queries(1):
        listed, count = customer_other_tickets(ticket=ticket)

    # then the count is of the others alone, whatever the ticket's place among them
    assert [t.pk for t in listed] == [o.pk for o in older]
    assert count == others


@pytest.mark.django_db
def test_a_ticket_without_a_customer_has_no_other_tickets(django_assert_num_queries):
    from tickets.selectors.ticket_page import customer_other_tickets

    ticket = TicketFactory(customer=None)
    TicketFactory(customer=CustomerFactory())

    with django_assert_num_queries(0):
        assert customer_other_tickets(ticket=ticket) == ([], 0)


@pytest.mark.django_db
@pytest.mark.parametrize("history", [1, 30])
@pytest.mark.parametrize(
    ("kind", "queries"),
    [
        # session / user / ticket with customer, domain and assignee / permissions (own and
        # groups') / the latest messages with their authors' names and whether they have files
        # / notifications / audit rows / other tickets with the count of all (the staff list,
        # for presence and the assignee list, kept in the cache by the first request)
        (Ticket.Kind.GENERAL, 8),
        # and the OpenSRS calls
        (Ticket.Kind.RESEND_PASSWORD, 9),
        # and the field changes and the registration changes they offer
        (Ticket.Kind.MODIFY_INFO, 10),
    ],
)
def test_the_ticket_page_reads_the_same_number_of_queries_whatever_its_history(
    agent_client, agent, history, kind, queries, django_assert_num_queries
):
    # given a ticket with a long or short history and other tickets of its customer
    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer, kind=kind)
    for _ in range(history):
        TicketFactory(customer=customer)
    for n in range(history):
        staff_reply(ticket, agent, f"note {n}", internal=True)
    agent_client.get(f"/staff/tickets/{ticket.reference}/")  # warm up the session

    # when / then: the kind-specific parts are read only for their kind
    with django_assert_num_queries(queries):
        response = agent_client.get(f"/staff/tickets/{ticket.reference}/")
    assert response.status_code == 200


@pytest.mark.django_db
def test_each_message_names_who_wrote_it(agent_client, agent):
    # given messages by a staff login, by staff without a login (since removed), by the
    # customer and by the system
    ticket = TicketFactory()
    for author, user in (("staff", agent), ("staff", None), ("customer", None), ("system", None)):
        Message.objects.create(
            ticket=ticket, author=author, author_user=user, body=f"by {author}", channel="email"
        )

    # when
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then
    heads = re.findall(r'<div class="message-head">\s*<strong>([^<]*)</strong>', page)
    assert heads == [agent.username, "Staff", "Customer", "System"]


@pytest.mark.django_db
def test_the_attachments_are_read_only_when_a_message_read_has_any(
    agent_client, agent, django_assert_num_queries
):
    # given a ticket whose only file is on its first message, older than the page shows
    from tickets.selectors.ticket_page import TICKET_PAGE_MESSAGES

    ticket = TicketFactory(customer=CustomerFactory(), kind=Ticket.Kind.GENERAL)
    attach(ticket, filename="old-file.png")
    for n in range(TICKET_PAGE_MESSAGES):
        staff_reply(ticket, agent, f"note {n}", internal=True)
    url = f"/staff/tickets/{ticket.reference}/"
    agent_client.get(url)  # warm up the session

    # when / then: the latest part reads no attachments (the count of a general ticket, 8)
    with django_assert_num_queries(8):
        latest = agent_client.get(url).content.decode()
    # and the whole history reads the file's message's, with one query more
    with django_assert_num_queries(9):
        whole = agent_client.get(f"{url}?history=all").content.decode()
    assert "old-file.png" not in latest
    assert "old-file.png" in whole.split('<li class="message-item')[1]
    assert "old-file.png" not in "".join(whole.split('<li class="message-item')[2:])


@pytest.mark.django_db
def test_the_ticket_page_shows_the_latest_history_and_links_to_the_whole(agent_client, agent):
    # given a ticket with more replies (each mailed, each audited) than the page shows
    from tickets.selectors.ticket_page import TICKET_PAGE_EVENTS, TICKET_PAGE_MESSAGES

    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer, contact_email=customer.email)
    rounds = max(TICKET_PAGE_MESSAGES, TICKET_PAGE_EVENTS) + 5
    for n in range(rounds):
        staff_reply(ticket, agent, f"reply number {n}.")
    url = f"/staff/tickets/{ticket.reference}/"

    # when
    latest = agent_client.get(url).content.decode()
    whole = agent_client.get(f"{url}?history=all").content.decode()

    # then the page shows the latest ones, says so and links to the whole history
    assert f"reply number {rounds - 1}." in latest
    assert f"reply number {rounds - TICKET_PAGE_MESSAGES}." in latest
    assert f"reply number {rounds - TICKET_PAGE_MESSAGES - 1}." not in latest
    assert latest.count('<li class="message-item') == TICKET_PAGE_MESSAGES
    assert latest.split('class="audit-trail"')[1].count("<time") == TICKET_PAGE_EVENTS
    assert 'href="?history=all#thread-heading"' in latest
    assert whole.count('<li class="message-item') == rounds
    assert "reply number 0." in whole
    assert 'id="history-cut"' not in whole


@pytest.mark.django_db
def test_each_message_lists_its_own_attachments_in_upload_order(agent_client):
    # given two messages, the older one with three files and the newer one with one
    ticket = TicketFactory(priority=Ticket.Priority.HIGH)
    first = attach(ticket, filename="b-first.png")
    attach(ticket, filename="only.png")
    for name in ("a-second.png", "c-third.png"):
        Attachment.objects.create(
            message=first.message,
            filename=name,
            content_type="image/png",
            size=1,
            content=b"x",
            scan_status="clean",
        )

    # when
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then each message shows its files, in the order they came
    messages = page.split('<li class="message-item')[1:]
    assert re.findall(r"[a-z-]+\.png", messages[0]) == [
        "b-first.png",
        "a-second.png",
        "c-third.png",
    ]
    assert re.findall(r"[a-z-]+\.png", messages[1]) == ["only.png"]
    # and the priority menu starts at the ticket's priority
    menu = page.split('<select name="priority" id="id_priority">')[1].split("</select>")[0]
    assert re.findall(r'<option value="(\w+)"( selected)?>', menu) == [
        ("low", ""),
        ("normal", ""),
        ("high", " selected"),
        ("urgent", ""),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("rounds", [1, 40])
def test_the_ticket_page_makes_the_same_queries_whatever_the_length_of_its_history(
    agent_client, agent, rounds
):
    # given replies and the customer's answers: messages, emails, status changes, audit rows
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer, contact_email=customer.email)
    for n in range(rounds):
        for author, user in (("staff", agent), ("customer", None)):
            services.ticket_reply_add(
                ticket=ticket,
                body=f"{author} {n}",
                actor=user or customer,
                author=author,
                channel="staff" if user else "portal",
                author_user=user,
            )
        status = ("clean", "infected")[n % 2]
        attach(ticket, filename=f"scan-{n}.png", scan_status=status)
    url = f"/staff/tickets/{ticket.reference}/"
    agent_client.get(url)  # warm up the session

    # when
    with CaptureQueriesContext(connection) as captured:
        response = agent_client.get(url)

    # then: the count of the test above for a general ticket (8) and one for the attachments
    # (names, not bytes), however long its history, and each attachment listed from what was
    # read (name, size, scan result)
    assert len(captured.captured_queries) == 9
    assert f"scan-{rounds - 1}.png" in response.content.decode()


# --- replies ---


@pytest.mark.django_db
def test_an_agent_reply_is_signed_quotes_the_customer_and_is_not_auto_submitted(alice):
    # given a customer message and a named agent
    agent = staff_user_ensure(username="siti", password="x-pass-123", role=AGENTS)
    agent.first_name, agent.last_name = "Siti", "Rahman"
    agent.save(update_fields=["first_name", "last_name"])
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    services.ticket_reply_add(
        ticket=ticket,
        body="My DNS records vanished.\nPlease help.",
        actor="inbound",
        author="customer",
        channel="email",
    )

    # when the agent replies
    services.ticket_reply_add(
        ticket=ticket,
        body="Restored them.",
        actor=agent,
        author="staff",
        channel="staff",
        author_user=agent,
    )

    # then the mail is signed, quotes the customer, and is a person's mail
    notification = Notification.objects.get(ticket=ticket, template="ticket_reply")
    message = build_message(notification)
    html = message.alternatives[0][0]
    for part in (message.body, html):
        assert "Siti Rahman" in part
        assert "Help Desk team" in part
    assert "> My DNS records vanished.\n> Please help." in message.body
    assert "<blockquote" in html and "My DNS records vanished.<br>Please help." in html
    assert "Auto-Submitted" not in message.extra_headers


@pytest.mark.django_db
def test_automatic_mail_stays_auto_submitted(alice):
    ticket = TicketFactory(customer=alice)
    notification = services.notification_queue(
        ticket=ticket, template="ticket_received", recipient=alice.email, context={}
    )
    assert build_message(notification).extra_headers["Auto-Submitted"] == "auto-generated"
    assert not mail.outbox


# --- actions offered by kind and status ---


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(Ticket.Kind))
def test_reject_is_offered_exactly_when_the_service_accepts_it(agent_client, agent, kind):
    # given an open ticket of each kind
    ticket = TicketFactory(kind=kind, status=S.OPEN, verified_by="session")
    offered = services.ticket_actions(ticket).reject

    # when
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/reject/",
        {"version": ticket.version, "reason": "Out of scope"},
    )

    # then general help and opt-outs are never rejected
    assert offered == (kind in (Ticket.Kind.MODIFY_INFO, Ticket.Kind.RESEND_PASSWORD))
    assert (f"/staff/tickets/{ticket.reference}/reject/" in page) == offered
    ticket.refresh_from_db()
    assert (ticket.status == S.REJECTED) == offered
    if not offered:
        assert response.status_code == 409
        assert NOT_REJECTABLE.split(";")[0] in response.content.decode()


# --- the audit trail ---


@pytest.mark.django_db
def test_the_audit_trail_reads_as_sentences_with_details_in_a_table(supervisor_client, agent):
    ticket = TicketFactory(status=S.OPEN)
    services.ticket_priority_set(ticket=ticket, priority="urgent", actor=agent)
    services.ticket_transition(ticket=ticket, to=S.AWAITING_CUSTOMER, actor=agent)

    page = supervisor_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    assert "Priority changed from Normal to Urgent." in page
    assert "Status changed from Open to Awaiting customer." in page
    assert "ticket.status_changed" not in page
    assert '<table class="audit-details small">' in page
    assert '<th scope="row">From</th><td>Open</td>' in page
    assert "{&#x27;" not in page  # no Python dict


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "ms"])
def test_each_history_time_reads_as_the_date_filter_prints_it(agent_client, language):
    # given messages and an email in the same second, the next one (across a minute's edge)
    # and a minute later, so that some rows share their formatted time and some do not
    from django.template.defaultfilters import date as date_filter
    from django.utils import translation

    ticket = TicketFactory(status=S.OPEN, contact_email="someone@example.test")
    edge = timezone.now().replace(second=59, microsecond=100_000) - timedelta(minutes=5)
    moments = [edge, edge + timedelta(microseconds=800_000), edge + timedelta(seconds=1)]
    moments.append(edge + timedelta(minutes=1, seconds=30))
    for n, moment in enumerate(moments):
        message = Message.objects.create(
            ticket=ticket, author="customer", body=f"m{n}", channel=Ticket.Channel.EMAIL
        )
        Message.objects.filter(pk=message.pk).update(created_at=moment)
    Notification.objects.create(
        ticket=ticket, template="reply", recipient="someone@example.test", idempotency_key="n1"
    )
    Notification.objects.filter(ticket=ticket).update(created_at=moments[1])

    # when
    agent_client.cookies["django_language"] = language
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then every row prints its own time as `|date:'c'` and `|date:"DATETIME_FORMAT"` would
    with translation.override(language):
        for moment in moments:
            local = timezone.localtime(moment)
            shown = f'<time datetime="{date_filter(local, "c")}">'
            shown += f"{date_filter(local, 'DATETIME_FORMAT')}</time>"
            assert shown in page
        thread = page.split('class="conversation"')[1].split("</ol>")[0]
        assert thread.count("<time ") == len(moments)
        assert thread.count(date_filter(timezone.localtime(edge), "DATETIME_FORMAT")) == 2
        emails = page.split('id="notifications-heading"')[1].split("</table>")[0]
        assert date_filter(timezone.localtime(moments[1]), "c") in emails


@pytest.mark.django_db
def test_the_history_lists_show_what_people_typed_escaped_in_their_markup(supervisor_client, agent):
    # given a customer's other ticket, a customer email its sender was not authenticated for
    # with an infected file, an internal note and a reply by staff, a failed email and an audit
    # row with details, each holding markup
    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer, status=S.OPEN)
    other = TicketFactory(customer=customer, subject="<b>Older</b> & done", status=S.CLOSED)
    infected = attach(ticket, filename='<x>"bad".png', scan_status="infected")
    Attachment.objects.filter(pk=infected.pk).update(scan_result="Eicar <sig>")
    Message.objects.filter(pk=infected.message_id).update(
        body="<script>1</script>", sender_authentication={"authenticated": False}
    )
    staff_reply(ticket, agent, "a <i>note</i>", internal=True)
    staff_reply(ticket, agent, "Tom & Jerry")
    Notification.objects.create(
        ticket=ticket,
        template="reply",
        recipient="o'hara@example.test",
        idempotency_key="n1",
        status=Notification.Status.FAILED,
        attempts=3,
        last_error="<refused> " + "x" * 200,
    )
    services.ticket_priority_set(ticket=ticket, priority="urgent", actor=agent)

    # when a supervisor opens the ticket
    page = supervisor_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then every list prints its values escaped once, in the same markup
    other_day = date_format(timezone.localtime(other.created_at), "SHORT_DATE_FORMAT")
    assert (
        f'<li><a href="/staff/tickets/{other.reference}/">{other.reference}</a> '
        "&lt;b&gt;Older&lt;/b&gt; &amp; done "
        '<span class="badge badge-closed">Closed</span> <time class="muted" datetime="'
    ) in page
    assert f">{other_day}</time></li>" in page
    thread = page.split('<ol class="conversation">')[1].split("</ol>")[0]
    customer_said, note, reply = thread.split('<li class="message-item')[1:]
    assert customer_said.startswith(' from-customer">\n    <div class="message-head">')
    assert (
        '\n    <p class="notice warning small">Sender not authenticated: our mail server'
    ) in customer_said
    assert '<p class="message-body">&lt;script&gt;1&lt;/script&gt;</p>' in customer_said
    assert "<span>&lt;x&gt;&quot;bad&quot;.png</span>" in customer_said
    assert '<span class="badge badge-rejected">Eicar &lt;sig&gt;</span>' in customer_said
    assert note.startswith(' from-staff internal">')
    assert (
        f'<strong><span class="note-label">Internal note</span> · {agent.username}</strong>' in note
    )
    assert '<p class="message-body">a &lt;i&gt;note&lt;/i&gt;</p>\n    \n  </li>' in note
    assert '<p class="message-body">Tom &amp; Jerry</p>' in reply
    emails = page.split('id="notifications-heading"')[1].split("</table>")[0]
    assert "<td>o&#x27;hara@example.test</td>" in emails
    assert (
        '<td><span class="badge badge-notification-failed">Failed</span><br>'
        f'<span class="small muted">&lt;refused&gt; {"x" * 149}…</span></td>\n      <td>3</td>'
    ) in emails
    trail = page.split('<ol class="audit-trail">')[1].split("</ol>")[0]
    assert (
        '<span class="audit-sentence">Priority changed from Normal to Urgent.</span>'
        f' <span class="muted small">by staff:{agent.username}</span>\n    '
        '<table class="audit-details small">\n      <caption class="visually-hidden">Details'
        "</caption>\n      <tbody><tr>"
    ) in trail
    # the details' rows in the order the database gives the record's keys (PostgreSQL's jsonb
    # orders them by length)
    assert '<tr><th scope="row">From</th><td>Normal</td></tr>' in trail
    assert '<tr><th scope="row">To</th><td>Urgent</td></tr>' in trail


# --- presence ---


@pytest.mark.django_db
def test_presence_shows_another_viewer_at_once_and_forgets_them_within_10_seconds(
    client, agent, alice, settings
):
    # given another agent opened the ticket (a process-local cache, whose clock the test moves)
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    ticket = TicketFactory(customer=alice)
    other = staff_user_ensure(username="other", password="x-pass-123", role=AGENTS)
    client.force_login(other)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get(f"/staff/tickets/{ticket.reference}/")
    client.force_login(agent)
    url = f"/staff/tickets/{ticket.reference}/presence/"

    # then the next poll (every few seconds) names them, and once they left it does not
    with time_machine.travel(start + timedelta(seconds=4), tick=False):
        assert client.get(url).json()["viewers"] == ["other"]
    with time_machine.travel(start + timedelta(seconds=PRESENCE_SECONDS + 0.5), tick=False):
        assert client.get(url).json()["viewers"] == []
    assert PRESENCE_SECONDS <= 10


@pytest.mark.django_db
def test_the_page_polls_presence_every_few_seconds(agent_client):
    ticket = TicketFactory()
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    seconds = int(re.search(r'data-poll-seconds="(\d+)"', page).group(1))
    assert 1 <= seconds <= 5
    assert Message.objects.count() == 0


# --- the reply's file field ---


def _file_field(page: str) -> str:
    """The reply form's file field (label, help, errors and input), spaces between tags dropped."""
    start = page.index('<label for="id_attachments">')
    field = page[start : page.index(">", page.index('<input type="file"')) + 1]
    return re.sub(r">\s+<", "><", field)


@pytest.mark.django_db
@pytest.mark.parametrize("files", [None, [("tool.png", b"MZ\x90\x00" + b"\x00" * 60)]])
def test_the_reply_file_field_reads_as_the_forms_own_rendering(agent_client, files):
    # given a ticket page, fresh or after a reply refused for its file
    ticket = TicketFactory()
    if files is None:
        page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
        form = ReplyForm()
    else:
        uploads = [SimpleUploadedFile(name, content) for name, content in files]
        data = {"body": "See attached", "version": ticket.version}
        response = agent_client.post(
            f"/staff/tickets/{ticket.reference}/reply/", {**data, "attachments": uploads}
        )
        assert response.status_code == 400
        page = response.content.decode()
        form = ReplyForm(data, {"attachments": [SimpleUploadedFile(n, c) for n, c in files]})
        assert not form.is_valid()

    # then the label, help, errors and input are those the form renders for the field
    field = form["attachments"]
    expected = re.sub(
        r">\s+<",
        "><",
        f'<label for="id_attachments">{field.label}</label>'
        f'<span class="help" id="id_attachments_helptext">{field.help_text}</span>'
        f"{field.errors}{field}",
    )
    assert _file_field(page) == expected
    assert ('aria-invalid="true"' in _file_field(page)) is (files is not None)
