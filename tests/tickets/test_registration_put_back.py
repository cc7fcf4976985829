"""A freeze puts back at OpenSRS the registration records a takeover changed, on one click.

Against the fake OpenSRS over HTTP on loopback, through the registration change worker.
"""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from kombu.exceptions import OperationalError as KombuOperationalError
from rest_framework.test import APIClient

from accounts.models import Customer
from domains.models import Domain, RegistrationChange
from domains.opensrs import OpenSRSClient
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tests.factories import freeze_shown
from tests.markers import postgresql_only
from tests.tickets.resend_helpers import API_URL, calls, send_outbox
from tests.tickets.test_freeze_races import freeze_holding_its_locks_until
from tests.tickets.test_lock_order import background
from tests.tickets.test_registration_change import (
    NEW,
    approved_email_change,
    bob_domains,
    changes_of,
    notes,
    run_tasks,
)
from tests.tickets.verification_helpers import link_token
from tickets import services
from tickets import tasks as tickets_tasks
from tickets.audit import audit_verify
from tickets.models import ActionLog, Notification, Ticket
from tickets.services.freeze import account_freeze, account_unfreeze
from tickets.services.registration_change import (
    RegistrationChangeRetry,
    registration_change_process,
    registration_changes_requeue_due,
)
from tickets.services.registration_put_back import (
    NOTHING_TO_PUT_BACK,
    registration_put_back,
)

__all__ = ["background", "bob_domains", "run_tasks"]  # the fixtures, used here by name

RC = RegistrationChange.Status
OWNER = "bob@example.test"


def taken_over(bob, supervisor, run_tasks, capture):
    """Bob's email moved to NEW by whoever holds it, with bob-reseller.test's record at OpenSRS."""
    ticket = approved_email_change(bob, supervisor, capture)
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]
    run_tasks.clear()
    return ticket


def owner_reports(ticket) -> Ticket:
    """The old address follows the link in its notice: "this wasn't me"."""
    notice = Notification.objects.get(ticket=ticket, template="email_changed_old")
    return account_freeze(token=link_token(notice), client_key="10.0.0.9", actor="anonymous")


def put_backs(ticket) -> dict[str, RegistrationChange]:
    return {
        change.domain.name: change
        for change in RegistrationChange.objects.filter(
            ticket=ticket, purpose=RegistrationChange.Purpose.PUT_BACK
        )
    }


def resend_asked_by(address: str) -> Ticket:
    """A password resend for bob-reseller.test, asked by whoever reads `address`."""
    response = APIClient().post(
        API_URL, {"domain": "bob-reseller.test", "contact_email": address}, format="json"
    )
    assert response.status_code == 202
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    services.password_resend_process(ticket_id=ticket.pk)
    return ticket


def record(server, name="bob-reseller.test") -> tuple[str, str]:
    contacts = server.domains[name].contacts
    return contacts["owner"]["email"], contacts["admin"]["email"]


@pytest.mark.django_db
def test_the_takeover_end_to_end_puts_the_record_back_and_a_resend_reaches_only_the_owner(
    bob,
    bob_domains,
    supervisor,
    agent,
    client,
    run_tasks,
    django_capture_on_commit_callbacks,
):
    # given whoever took Bob's account over moved his email to NEW, and bob-reseller.test's
    # registration record with it
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    assert record(bob_domains) == (NEW, NEW)

    # when Bob, from his old address, says it was not him
    held = owner_reports(ticket)
    frozen_outbox = Notification.objects.latest("pk").pk

    # then the freeze offers the put-back on the ticket a supervisor holds, and sends nothing yet
    offered = put_backs(held)["bob-reseller.test"]
    assert (offered.status, offered.old_email, offered.new_email) == (RC.OFFERED, NEW, OWNER)
    assert (offered.update_owner, offered.update_admin) == (True, True)
    assert len(calls(bob_domains, "MODIFY")) == 1
    [note] = [body for body in notes(held) if "this change was not theirs" in body]
    assert "bob-reseller.test" in note and "Put back at OpenSRS" in note
    row = ActionLog.objects.get(ticket=held, action="registration.put_back_offered")
    assert row.details["domains"][0]["domain"] == "bob-reseller.test"
    page = f"/staff/tickets/{held.reference}/"
    client.force_login(agent)
    seen_by_agent = client.get(page).content.decode()
    assert "Waiting for a supervisor" in seen_by_agent
    assert "ticket-put-back" not in seen_by_agent and "/registration/put-back/" not in seen_by_agent

    # and while frozen, a resend asked by the new address is referred to staff: nothing is sent
    mail.outbox.clear()
    early = resend_asked_by(NEW)
    early.refresh_from_db()
    assert early.status == Ticket.Status.REFERRED
    assert calls(bob_domains, "SEND_PASSWORD") == []

    # when a supervisor puts the record back with one click, and the worker runs
    client.force_login(supervisor)
    version = Ticket.objects.get(pk=held.pk).version
    outbox_before = Notification.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{page}registration/put-back/", {"version": version})
    assert response.status_code == 302
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]
    assert Notification.objects.count() == outbox_before  # the put-back mails nobody

    # then the record names Bob's address again, sent through the same MODIFY the change used,
    # the frozen account notwithstanding
    assert record(bob_domains) == (OWNER, OWNER)
    modify = calls(bob_domains, "MODIFY")[-1]
    assert NEW not in str(modify["attributes"])
    assert Customer.objects.get(pk=bob.pk).account_status == Customer.AccountStatus.SUSPENDED
    done = put_backs(held)["bob-reseller.test"]
    assert (done.status, done.response_code) == (RC.DONE, 200)
    domain = Domain.objects.get(name="bob-reseller.test")
    assert (domain.registrant_email, domain.admin_email) == (OWNER, OWNER)
    changed = ActionLog.objects.get(
        ticket=held, action="registration.changed", details__put_back=True
    )
    assert changed.details["new_email"] == OWNER
    assert ActionLog.objects.filter(ticket=held, action="registration.put_back_queued").exists()
    assert any("put back the registration owner and admin email" in n for n in notes(held))
    shown = client.get(page).content.decode()
    assert "Changed at OpenSRS" in shown and "/registration/put-back/" not in shown

    # when the freeze is lifted and the new address asks for the password again
    account_unfreeze(
        customer=bob,
        freeze_version=freeze_shown(bob),
        actor=supervisor,
        reason="Checked his ID on a video call.",
    )
    late = resend_asked_by(NEW)
    send_outbox()

    # then OpenSRS mailed the reset to Bob's record only; nothing ever went to the new address
    late.refresh_from_db()
    assert [c["attributes"]["send_to"] for c in calls(bob_domains, "SEND_PASSWORD")] == ["owner"]
    assert [m["to"] for m in bob_domains.sent_mail] == [OWNER]
    resets = [m for m in mail.outbox if m.subject.startswith("Password reset request")]
    assert [m.to for m in resets] == [[OWNER]]
    notice = Notification.objects.get(ticket=late, template="password_resend_notice")
    assert notice.recipient == OWNER
    # (the new address only ever got the acknowledgement of what it asked, no link, no secret)
    told_new = Notification.objects.filter(recipient__iexact=NEW, pk__gt=frozen_outbox)
    assert set(told_new.values_list("template", flat=True)) == {"password_resend_received"}
    assert audit_verify().ok


@pytest.mark.django_db
def test_only_a_supervisor_puts_back_and_only_once(
    bob, bob_domains, supervisor, agent, run_tasks, django_capture_on_commit_callbacks
):
    # given a frozen account with a put-back offered
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    held = owner_reports(ticket)

    # when an agent, or the customer, asks for it
    for actor in (agent, Customer.objects.get(pk=bob.pk), "anonymous"):
        with pytest.raises(TransitionNotAllowed):
            registration_put_back(ticket=held, actor=actor)

    # then nothing is queued; a supervisor's click queues it once, a second finds nothing
    assert put_backs(held)["bob-reseller.test"].status == RC.OFFERED
    with django_capture_on_commit_callbacks(execute=True):
        registration_put_back(ticket=held, actor=supervisor)
    with pytest.raises(ApplicationError) as again:
        registration_put_back(ticket=held, actor=supervisor)
    assert again.value.message == NOTHING_TO_PUT_BACK
    assert len(run_tasks) == 1
    # and a redelivered task sends it once
    assert registration_change_process(change_id=run_tasks[0]) == "done"
    assert registration_change_process(change_id=run_tasks[0]) == "skipped"
    assert len(calls(bob_domains, "MODIFY")) == 2


@pytest.mark.django_db
def test_a_put_back_asked_while_the_broker_is_down_is_queued_by_the_sweep(
    bob,
    bob_domains,
    supervisor,
    run_tasks,
    django_capture_on_commit_callbacks,
    settings,
    monkeypatch,
):
    # given a frozen account with a put-back offered
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    held = owner_reports(ticket)
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)

    # when the supervisor clicks while the broker cannot be reached, the click still answers
    def unreachable(*args, **kwargs):
        raise KombuOperationalError("broker down")

    with monkeypatch.context() as down, django_capture_on_commit_callbacks(execute=True):
        down.setattr(tickets_tasks.registration_change_process, "apply_async", unreachable)
        registration_put_back(ticket=held, actor=supervisor)
    assert run_tasks == []
    assert put_backs(held)["bob-reseller.test"].status == RC.QUEUED

    # then the sweep queues it once the broker is back, and the worker puts the record back
    assert registration_changes_requeue_due() == 1
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]


@pytest.mark.django_db
def test_a_contact_changed_since_the_takeover_is_not_overwritten(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given the record's admin contact was changed at OpenSRS since, by someone else
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    bob_domains.domains["bob-reseller.test"].contacts["admin"]["email"] = "ops@elsewhere.test"
    held = owner_reports(ticket)

    # when a supervisor puts the record back
    with django_capture_on_commit_callbacks(execute=True):
        registration_put_back(ticket=held, actor=supervisor)
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]

    # then only the owner, which still named the reported address, is put back, and the note
    # and the cached record say so
    assert record(bob_domains) == (OWNER, "ops@elsewhere.test")
    sent = calls(bob_domains, "MODIFY")[-1]["attributes"]["contact_set"]
    assert set(sent) == {"owner"}
    assert any("put back the registration owner email of" in n for n in notes(held))
    domain = Domain.objects.get(name="bob-reseller.test")
    assert (domain.registrant_email, domain.admin_email) == (OWNER, NEW)

    # and a record that names neither any more is left as it is, for staff to look at
    bob_domains.domains["bob-reseller.test"].contacts["owner"]["email"] = "new-owner@else.test"
    RegistrationChange.objects.filter(pk=run_tasks[0]).update(status=RC.QUEUED)
    Customer.objects.filter(pk=bob.pk).update(email=OWNER)
    assert registration_change_process(change_id=run_tasks[0]) == "skipped"
    assert record(bob_domains) == ("new-owner@else.test", "ops@elsewhere.test")
    assert any("was not put back" in n for n in notes(held))


@pytest.mark.django_db
def test_a_put_back_whose_answer_is_lost_is_not_repeated(
    settings, bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given OpenSRS stalls past our read timeout on the put-back
    settings.OPENSRS_READ_TIMEOUT = 0.5
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    held = owner_reports(ticket)
    with django_capture_on_commit_callbacks(execute=True):
        registration_put_back(ticket=held, actor=supervisor)
    bob_domains.set_fault("stall", delay=2, action="MODIFY")

    # when / then: the outcome is unknown, staff are told, and it is never sent again
    (pk,) = run_tasks
    assert registration_change_process(change_id=pk) == "unknown"
    assert any("did not answer the put-back" in n for n in notes(held))
    assert bob_domains.wait_idle(5)
    bob_domains.clear_fault()
    assert registration_change_process(change_id=pk) == "skipped"
    assert len(calls(bob_domains, "MODIFY")) == 2


@pytest.mark.django_db
def test_a_registration_change_in_flight_when_the_freeze_commits_is_put_back_after_it_lands(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    # given the worker is sending the takeover's registration change to OpenSRS
    ticket = approved_email_change(bob, supervisor, django_capture_on_commit_callbacks)
    [change_id] = run_tasks
    run_tasks.clear()
    modify = OpenSRSClient.modify_contacts
    during: dict[str, object] = {}

    def freeze_while_sending(client, domain, contact_set):
        # OpenSRS has made the change; its answer is on the way back when the owner reports
        reply = modify(client, domain, contact_set)
        held = owner_reports(ticket)
        during["held"] = held
        during["offered"] = put_backs(held)
        # and a supervisor asks for the put-back at once: it must wait for the change's answer
        with django_capture_on_commit_callbacks(execute=True):
            registration_put_back(ticket=held, actor=supervisor)
        with pytest.raises(RegistrationChangeRetry):
            registration_change_process(change_id=run_tasks[0])
        during["record"] = record(bob_domains)
        return reply

    monkeypatch.setattr(OpenSRSClient, "modify_contacts", freeze_while_sending)

    # when the in-flight change lands
    assert registration_change_process(change_id=change_id) == "done"
    monkeypatch.setattr(OpenSRSClient, "modify_contacts", modify)

    # then the freeze offered the put-back for it, the early try sent nothing
    assert set(during["offered"]) == {"bob-reseller.test"}
    assert during["record"] == (NEW, NEW)
    assert len(calls(bob_domains, "MODIFY")) == 1
    # and its retry, once the change's answer is recorded, puts the record back
    assert RegistrationChange.objects.get(pk=change_id).status == RC.DONE
    assert registration_change_process(change_id=run_tasks[0]) == "done"
    assert record(bob_domains) == (OWNER, OWNER)
    assert Domain.objects.get(name="bob-reseller.test").registrant_email == OWNER


@pytest.mark.django_db
def test_a_change_that_never_reached_opensrs_offers_no_put_back(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given the takeover's registration change was still queued when the owner reported it
    ticket = approved_email_change(bob, supervisor, django_capture_on_commit_callbacks)

    # when
    held = owner_reports(ticket)

    # then the freeze stopped it, and there is nothing to put back
    assert changes_of(ticket)["bob-reseller.test"].status == RC.SKIPPED
    assert put_backs(held) == {}
    assert calls(bob_domains, "MODIFY") == []


@pytest.mark.django_db
@pytest.mark.parametrize("domains", [1, 6])
def test_the_put_backs_add_one_query_to_the_page_of_the_ticket_a_freeze_opened(
    supervisor_client, domains, django_assert_num_queries
):
    # given the ticket a freeze opened for a supervisor (its change request was closed), with
    # one or several records to put back
    from tests.factories import CustomerFactory, TicketFactory

    customer = CustomerFactory()
    held = TicketFactory(customer=customer, channel=Ticket.Channel.SYSTEM)
    for n in range(domains):
        domain = Domain.objects.create(name=f"shop-{n}.test", customer=customer)
        RegistrationChange.objects.create(
            ticket=held,
            domain=domain,
            purpose=RegistrationChange.Purpose.PUT_BACK,
            old_email="taker@evil.test",
            new_email=customer.email,
            update_owner=True,
        )
    url = f"/staff/tickets/{held.reference}/"
    supervisor_client.get(url)  # warm up the session

    # when / then: a general ticket's 8 queries, and one for its put-backs, whatever their number
    with django_assert_num_queries(9):
        page = supervisor_client.get(url).content.decode()
    assert page.count("Waiting for a supervisor") == domains
    assert "/registration/put-back/" in page


@pytest.mark.django_db(transaction=True)
@postgresql_only("the worker's answer waits on the freeze's row locks")
def test_a_change_whose_answer_arrives_while_the_freeze_commits_is_put_back(
    bob,
    bob_domains,
    supervisor,
    run_tasks,
    monkeypatch,
    background,
    django_capture_on_commit_callbacks,
):
    # given the worker has sent the takeover's registration change and waits for its answer
    ticket = approved_email_change(bob, supervisor, django_capture_on_commit_callbacks)
    [change_id] = run_tasks
    run_tasks.clear()
    sent, answered = threading.Event(), threading.Event()
    modify = OpenSRSClient.modify_contacts

    def modify_then_wait(client, domain, contact_set):
        reply = modify(client, domain, contact_set)
        sent.set()
        assert answered.wait(30)
        return reply

    monkeypatch.setattr(OpenSRSClient, "modify_contacts", modify_then_wait)
    worker = background(lambda: registration_change_process(change_id=change_id))
    assert sent.wait(30)
    assert RegistrationChange.objects.get(pk=change_id).status == RC.SENDING

    # when the answer arrives while the owner's freeze is being written: recording it waits on
    # the ticket the freeze holds, and goes on once the freeze has committed
    def answer_arrives():
        answered.set()
        return worker.finish()

    flow = freeze_holding_its_locks_until(answer_arrives, ticket, monkeypatch, background)

    # then the change is recorded as made, after the freeze that offered to put it back
    assert flow.outcome.get("result") == "done", flow.outcome
    held = Ticket.objects.get(pk=ticket.pk)
    offered = put_backs(held)["bob-reseller.test"]
    assert (offered.status, offered.old_email, offered.new_email) == (RC.OFFERED, NEW, OWNER)
    assert record(bob_domains) == (NEW, NEW)

    # and a supervisor's click puts the record back, the account still frozen
    with django_capture_on_commit_callbacks(execute=True):
        registration_put_back(ticket=held, actor=supervisor)
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]
    assert record(bob_domains) == (OWNER, OWNER)
    assert Domain.objects.get(name="bob-reseller.test").registrant_email == OWNER
    assert Customer.objects.get(pk=bob.pk).account_status == Customer.AccountStatus.SUSPENDED
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_freeze_of_a_closed_request_offers_the_put_back_on_the_ticket_it_opens(
    bob, bob_domains, supervisor, supervisor_client, run_tasks, django_capture_on_commit_callbacks
):
    # given the takeover's request was closed before the owner reported it
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    services.ticket_close(ticket=Ticket.objects.get(pk=ticket.pk), actor=supervisor)

    # when
    held = owner_reports(ticket)

    # then the ticket the freeze opened offers it, and its page shows it with the button
    assert held.pk != ticket.pk and held.kind == Ticket.Kind.GENERAL
    assert set(put_backs(held)) == {"bob-reseller.test"}
    page = supervisor_client.get(f"/staff/tickets/{held.reference}/").content.decode()
    assert 'id="registration-put-back"' in page and "/registration/put-back/" in page


@pytest.mark.django_db
def test_a_put_back_refused_by_opensrs_leaves_the_frozen_ticket_urgent_with_a_note(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given the domain left our reseller account after the takeover
    ticket = taken_over(bob, supervisor, run_tasks, django_capture_on_commit_callbacks)
    held = owner_reports(ticket)
    bob_domains.domains["bob-reseller.test"].in_account = False

    # when a supervisor puts it back
    with django_capture_on_commit_callbacks(execute=True):
        registration_put_back(ticket=held, actor=supervisor)
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["refused"]

    # then staff are told what to do, on a ticket still at the freeze's priority
    assert put_backs(held)["bob-reseller.test"].response_code == 415
    assert any("refused to put back" in n for n in notes(held))
    held.refresh_from_db()
    assert (held.status, held.priority) == (Ticket.Status.OPEN, Ticket.Priority.URGENT)
