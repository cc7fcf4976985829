import re
from datetime import timedelta

import pytest
from django.core.management import call_command

from helpdesk.exceptions import ApplicationError
from tests.factories import CustomerFactory, TicketFactory
from tests.tickets.test_freeze import staff_reply
from tests.tickets.verification_helpers import deliver_outbox
from tickets import services
from tickets.models import ActionLog, Attachment, Message, Ticket
from tickets.services.merge import (
    MERGE_ONLY_GENERAL,
    MERGE_OTHER_CUSTOMER,
    MERGE_SELF,
    MERGE_TARGET_CLOSED,
)

S = Ticket.Status


def message(ticket, body):
    return Message.objects.create(ticket=ticket, author="customer", body=body, channel="email")


@pytest.mark.django_db
def test_merging_moves_messages_and_attachments_closes_the_duplicate_and_audits_both(agent):
    # given a duplicate with a message and an attachment, and the ticket it duplicates
    customer = CustomerFactory()
    survivor = TicketFactory(customer=customer, status=S.OPEN)
    duplicate = TicketFactory(customer=customer, status=S.OPEN)
    message(survivor, "First ask")
    moved = message(duplicate, "Asking again")
    attachment = Attachment.objects.create(
        message=moved, filename="dns.txt", content_type="text/plain", size=7, content=b"records"
    )

    # when
    result = services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)

    # then
    assert result.pk == survivor.pk
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == survivor.pk
    assert duplicate.status == S.CLOSED
    # and the survivor says it has merged tickets (its page lists them), the duplicate not
    survivor.refresh_from_db()
    assert (survivor.merged_from_any, duplicate.merged_from_any) == (True, False)
    assert list(survivor.messages.order_by("id").values_list("body", flat=True)) == [
        "First ask",
        "Asking again",
    ]
    attachment.refresh_from_db()
    assert attachment.message.ticket_id == survivor.pk
    assert ActionLog.objects.get(ticket=duplicate, action="ticket.merged").details == {
        "to": survivor.reference,
        "messages": 1,
    }
    assert ActionLog.objects.get(ticket=survivor, action="ticket.merged_in").details == {
        "from": duplicate.reference,
        "messages": 1,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("self", MERGE_SELF),
        ("not_general", MERGE_ONLY_GENERAL),
        ("closed_target", MERGE_TARGET_CLOSED),
        ("other_customer", MERGE_OTHER_CUSTOMER),
    ],
)
def test_a_merge_the_rules_refuse_changes_nothing(agent, case, error):
    customer = CustomerFactory()
    duplicate = TicketFactory(customer=customer, status=S.OPEN)
    survivor = TicketFactory(customer=customer, status=S.OPEN)
    if case == "self":
        survivor = duplicate
    elif case == "not_general":
        Ticket.objects.filter(pk=duplicate.pk).update(kind=Ticket.Kind.RESEND_PASSWORD)
    elif case == "closed_target":
        Ticket.objects.filter(pk=survivor.pk).update(status=S.CLOSED)
    else:
        survivor = TicketFactory(status=S.OPEN)
    message(duplicate, "Still here")
    duplicate.refresh_from_db()

    with pytest.raises(ApplicationError, match=error.split(";")[0][:40]):
        services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)

    duplicate.refresh_from_db()
    assert duplicate.merged_into_id is None
    assert duplicate.status == S.OPEN
    assert not Ticket.objects.filter(merged_from_any=True).exists()
    assert duplicate.messages.count() == 1
    assert not ActionLog.objects.filter(action__startswith="ticket.merged").exists()


@pytest.mark.django_db
def test_an_agent_merges_from_the_ticket_page_and_both_pages_link(agent_client):
    customer = CustomerFactory()
    survivor = TicketFactory(customer=customer, status=S.OPEN)
    duplicate = TicketFactory(customer=customer, status=S.OPEN)
    message(duplicate, "Asking again")

    page = agent_client.get(f"/staff/tickets/{duplicate.reference}/").content.decode()
    assert f"/staff/tickets/{duplicate.reference}/merge/" in page
    response = agent_client.post(
        f"/staff/tickets/{duplicate.reference}/merge/",
        {"version": duplicate.version, "into": survivor.reference.lower()},
        follow=True,
    )

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/staff/tickets/{survivor.reference}/"
    assert "Merged." in page and "Asking again" in page
    assert f'Merged from <a href="/staff/tickets/{duplicate.reference}/">' in page
    assert f"{duplicate.reference} was merged into this ticket." in page
    old = agent_client.get(f"/staff/tickets/{duplicate.reference}/").content.decode()
    assert f'Merged into <a href="/staff/tickets/{survivor.reference}/">' in old
    assert f"/staff/tickets/{duplicate.reference}/merge/" not in old


@pytest.mark.django_db
def test_merging_into_an_unknown_ticket_says_so(agent_client):
    duplicate = TicketFactory(status=S.OPEN)
    response = agent_client.post(
        f"/staff/tickets/{duplicate.reference}/merge/",
        {"version": duplicate.version, "into": "HD-ZZZZZZZZ"},
    )
    assert response.status_code == 400
    assert "There is no ticket HD-ZZZZZZZZ." in response.content.decode()


@pytest.mark.django_db
def test_a_customers_ticket_is_not_merged_into_a_strangers_where_the_stranger_would_read_it(
    client, agent, alice
):
    # given Alice's question, and a ticket without a customer from another address that says
    # it is the same (a stranger asking staff to merge it)
    own = services.ticket_create(
        kind="general",
        subject="Card declined",
        actor=alice,
        customer=alice,
        contact_email=alice.email,
        body="My address is 12 Jalan Ampang and my card ends 4242.",
        status=S.OPEN,
    )
    strangers = services.ticket_create(
        kind="general",
        subject="Same as my other ticket",
        actor="anonymous",
        contact_email="mallory@example.test",
        body="Please merge my other ticket into this one.",
        status=S.OPEN,
    )
    link = services.status_link_issue(ticket=strangers, send_to="mallory@example.test")

    # when an agent merges Alice's ticket into it
    with pytest.raises(ApplicationError, match=re.escape(MERGE_OTHER_CUSTOMER)):
        services.ticket_merge(ticket=own, into=strangers, actor=agent)

    # then nothing moved, and the stranger's status page shows nothing of Alice's
    assert own.messages.count() == 1
    page = client.get(link.removeprefix("https://help.exabytes.example")).content.decode()
    assert "Jalan Ampang" not in page


@pytest.mark.django_db
def test_tickets_from_one_address_without_a_customer_still_merge(agent):
    first = TicketFactory(customer=None, contact_email="dan@example.test", status=S.OPEN)
    again = TicketFactory(customer=None, contact_email="DAN@example.test", status=S.OPEN)
    message(again, "Asking again")

    services.ticket_merge(ticket=again, into=first, actor=agent)

    assert first.messages.get().body == "Asking again"


@pytest.mark.django_db
def test_tickets_from_two_addresses_without_a_customer_do_not_merge(agent):
    first = TicketFactory(customer=None, contact_email="dan@example.test", status=S.OPEN)
    other = TicketFactory(customer=None, contact_email="erin@example.test", status=S.OPEN)
    message(other, "Erin's question")

    with pytest.raises(ApplicationError, match=re.escape(MERGE_OTHER_CUSTOMER)):
        services.ticket_merge(ticket=other, into=first, actor=agent)

    assert other.messages.count() == 1


def strangers_question():
    """A question sent without a login from an address nobody has on record, with a file."""
    ticket = services.request_general(
        subject="Same problem as Alice",
        body="Mallory's own words: my card ends 4242.",
        contact_email="mallory@example.test",
        actor="anonymous",
    )
    Attachment.objects.create(
        message=ticket.messages.get(),
        filename="mallory.txt",
        content_type="text/plain",
        size=4,
        content=b"mine",
        scan_status=Attachment.ScanStatus.CLEAN,
    )
    return ticket


def alices_question(alice, contact_email=None, body="Alice asks about her card."):
    return services.request_general(
        subject="Card declined",
        body=body,
        contact_email=contact_email or alice.email,
        actor=alice,
        customer=alice,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("direction", ["stranger_into_customer", "customer_into_stranger"])
def test_a_strangers_ticket_and_a_customers_do_not_merge_either_way(
    agent_client, alice_client, alice, direction
):
    # given Alice's question and a stranger's from an address not on record, with a file
    strangers = strangers_question()
    own = alices_question(alice)
    assert strangers.customer_id is None
    duplicate, survivor = (
        (strangers, own)
        if direction == "stranger_into_customer"
        else (
            own,
            strangers,
        )
    )

    # when an agent merges one into the other from the ticket page
    response = agent_client.post(
        f"/staff/tickets/{duplicate.reference}/merge/",
        {"version": duplicate.version, "into": survivor.reference},
    )

    # then it is refused with the reason, and nothing moved
    assert response.status_code == 400
    assert "come from different requesters" in response.content.decode()
    assert [m.body for m in strangers.messages.all()] == ["Mallory's own words: my card ends 4242."]
    assert own.messages.count() == 1
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == (S.OPEN, None)
    # and Alice's portal page and the API show her nothing of the stranger's
    page = alice_client.get(f"/my/tickets/{own.reference}/").content.decode()
    api = alice_client.get(f"/api/v1/tickets/{own.reference}/").content.decode()
    for shown in (page, api):
        assert "Mallory" not in shown and "mallory.txt" not in shown


@pytest.mark.django_db
def test_a_question_sent_from_her_address_on_no_account_merges_only_once_linked(
    agent, alice, alice_client
):
    # given Alice's question, and one sent from her address that is on no account (sent while
    # her account was frozen, or before requests were linked)
    own = alices_question(alice)
    again = TicketFactory(customer=None, contact_email="ALICE@example.test", status=S.OPEN)
    message(again, "Asking again without logging in")

    # then it is not hers to read, so it does not merge into hers
    with pytest.raises(ApplicationError, match=re.escape(MERGE_OTHER_CUSTOMER)):
        services.ticket_merge(ticket=again, into=own, actor=agent)

    # when the link command makes it hers, as unproven, it merges, its words held from her
    call_command("link_tickets_to_customers")
    services.ticket_merge(ticket=again, into=own, actor=agent)
    moved = own.messages.get(body="Asking again without logging in")
    assert moved.unproven
    assert moved.body not in alice_client.get(f"/my/tickets/{own.reference}/").content.decode()


@pytest.mark.django_db
def test_a_customers_ticket_does_not_merge_into_one_its_address_alone_would_not_read(agent, alice):
    # given a ticket without a customer from Alice's address, and her own with a work address
    from_alice = TicketFactory(customer=None, contact_email=alice.email, status=S.OPEN)
    own = alices_question(alice)
    Ticket.objects.filter(pk=own.pk).update(contact_email="alice.work@example.test")
    own.refresh_from_db()

    # when merged: into Alice's ticket, its work address would read what only her record's
    # address did, so it is refused; the other way round the survivor's one reader (her record's
    # address) already read the duplicate, so it goes
    with pytest.raises(ApplicationError, match=re.escape(MERGE_OTHER_CUSTOMER)):
        services.ticket_merge(ticket=from_alice, into=own, actor=agent)
    services.ticket_merge(ticket=own, into=from_alice, actor=agent)

    assert from_alice.messages.filter(body="Alice asks about her card.").exists()


@pytest.mark.django_db
def test_a_customers_question_does_not_merge_into_her_ticket_another_address_reads(
    agent, alice, client
):
    # given Alice's question, and a ticket she signed in to ask with her web developer's address
    # for the replies (which gets the mail and the status link)
    own = alices_question(alice)
    for_developer = alices_question(
        alice, contact_email="dev@agency.test", body="Please set the MX records."
    )
    link = services.status_link_issue(ticket=for_developer, send_to="dev@agency.test")

    # when an agent merges her question into the developer's ticket
    with pytest.raises(ApplicationError, match=re.escape(MERGE_OTHER_CUSTOMER)):
        services.ticket_merge(ticket=own, into=for_developer, actor=agent)

    # then the developer's status page shows none of it; the other way round, her own ticket's
    # one reader is her, who asked both, so that merge goes
    page = client.get(link.removeprefix("https://help.exabytes.example")).content.decode()
    assert "Alice asks about her card." not in page
    services.ticket_merge(ticket=for_developer, into=own, actor=agent)
    assert own.messages.filter(body="Please set the MX records.").exists()


@pytest.mark.django_db
def test_a_question_the_addresss_earlier_holder_sent_does_not_merge_into_the_customers(
    agent, alice, alice_client
):
    # given a question sent without a login from Alice's address before her record was made
    # (the address's earlier holder's, which her portal does not list), and her own question
    earlier = TicketFactory(customer=None, contact_email=alice.email, status=S.OPEN)
    Ticket.objects.filter(pk=earlier.pk).update(created_at=alice.created_at - timedelta(days=30))
    message(earlier, "The earlier holder's bank details")
    own = alices_question(alice)
    assert alice_client.get(f"/my/tickets/{earlier.reference}/").status_code == 404

    # when an agent merges it into hers
    with pytest.raises(ApplicationError, match=re.escape(MERGE_OTHER_CUSTOMER)):
        services.ticket_merge(ticket=earlier, into=own, actor=agent)

    # then her page shows none of it
    assert "bank details" not in alice_client.get(f"/my/tickets/{own.reference}/").content.decode()


@pytest.mark.django_db
def test_the_requester_reads_on_the_merged_ticket_where_it_went(client, agent, alice, alice_client):
    # given two of Alice's questions, the second a duplicate
    own = alices_question(alice)
    again = alices_question(alice)
    link = services.status_link_issue(ticket=again, send_to=alice.email)

    services.ticket_merge(ticket=again, into=own, actor=agent)

    # then the duplicate's portal page and status page say where its conversation went
    said = f"This request was merged into {own.reference}"
    assert said in alice_client.get(f"/my/tickets/{again.reference}/").content.decode()
    status_page = client.get(link.removeprefix("https://help.exabytes.example"))
    assert said in status_page.content.decode()


@pytest.mark.django_db
def test_a_question_merged_in_without_a_login_is_not_quoted_to_the_customer(
    client, agent, alice, alice_client
):
    # given Alice's own question, and one sent afterwards without a login by whoever typed her
    # address on the web form: the help desk never mailed her its words
    own = alices_question(alice)
    client.post(
        "/requests/new/",
        {"subject": "Claim your prize", "message": "Claim your prize now!", "email": alice.email},
    )
    typed = Ticket.objects.get(subject="Claim your prize")
    deliver_outbox()

    # when an agent merges it into hers, and replies there
    services.ticket_merge(ticket=typed, into=own, actor=agent)
    staff_reply(own, agent, "We are looking into it.")

    # then the reply to her address carries the staff's words, none of that sender's
    [reply] = [m for m in deliver_outbox() if "We are looking into it." in m.body]
    assert reply.to == [alice.email]
    assert "prize" not in "\n".join([reply.subject, reply.body, reply.alternatives[0][0]])
    # and her own question is still hers to read there, without that sender's words
    page = alice_client.get(f"/my/tickets/{own.reference}/").content.decode()
    assert "Alice asks about her card." in page and "prize" not in page
