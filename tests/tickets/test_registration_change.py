"""Email change -> registration change, against the fake OpenSRS over HTTP."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Customer
from domains.models import Domain, RegistrationChange
from domains.opensrs import OpenSRSClient
from helpdesk.exceptions import ApplicationError
from tests.tickets.resend_helpers import calls
from tests.tickets.verification_helpers import (
    anonymous_lookups,
    deliver_outbox,
    html_part,
    link_token,
    verification_mail,
)
from tickets import services
from tickets.models import ActionLog, Message, Notification, Ticket
from tickets.services import registration_change as registration_change_module
from tickets.services.freeze import ACCOUNT_FROZEN, account_freeze
from tickets.services.lifecycle import ACCOUNT_CLOSED, AccountLockedOut
from tickets.services.registration import (
    REGISTRATION_CHOICE_CLOSED,
    REGISTRATION_OWNER_ONLY,
    registration_choose_by_owner,
    registration_confirm,
)
from tickets.services.registration_change import (
    RegistrationChangeRetry,
    registration_change_give_up,
    registration_change_process,
)

RC = RegistrationChange.Status
S = Ticket.Status
NEW = "bob@new-mail.test"
LOCKED_OUT = [
    (Customer.AccountStatus.SUSPENDED, ACCOUNT_FROZEN),
    (Customer.AccountStatus.CLOSED, ACCOUNT_CLOSED),
]


@pytest.fixture
def bob_domains(fake_opensrs, bob):
    """bob-reseller.test (owner and admin are Bob) and bob-shop.test (owner only is Bob).

    Both registered to Bob's email on record, unlike the demo data's bob-reseller.test (a role
    address at the domain): an email change is about records naming the old address.
    """
    fake_opensrs.add_domain(
        "bob-reseller.test",
        "bob@example.test",
        first_name="Bob",
        last_name="Lim",
        org_name="Bob Lim Reseller",
    )
    fake_opensrs.add_domain("bob-shop.test", "bob@example.test", admin_email="ops@bob-shop.test")
    for name, admin in (
        ("bob-reseller.test", "bob@example.test"),
        ("bob-shop.test", "ops@bob-shop.test"),
    ):
        Domain.objects.create(
            name=name, customer=bob, registrant_email="bob@example.test", admin_email=admin
        )
    Domain.objects.create(name="other.test", customer=bob, registrant_email="x@other.test")
    return fake_opensrs


@pytest.fixture
def run_tasks(monkeypatch):
    """Collect the registration tasks queued on commit, to run them as the worker would."""
    from tickets.tasks import registration_change_process as task

    queued: list[int] = []
    monkeypatch.setattr(
        task, "apply_async", lambda kwargs, **options: queued.append(kwargs["change_id"])
    )
    return queued


def email_change(bob, registration=None):
    """Bob's email change: in his own session, or (bob=None) anonymously, giving his address."""
    ticket = services.request_modify(
        email=None if bob else "bob@example.test",
        customer=bob,
        changes={"email": NEW},
        note="",
        client_key="10.0.0.1",
        actor=bob or "anonymous",
        registration=registration,
    )
    anonymous_lookups()  # what the worker does next for an anonymous request
    ticket.refresh_from_db()
    return ticket


def confirm_new_email(ticket):
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")


def approve(ticket, supervisor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_approve(ticket=ticket, actor=supervisor)


def approved_email_change(bob, supervisor, django_capture_on_commit_callbacks):
    """Bob's email change, both contacts of bob-reseller.test chosen, confirmed and approved."""
    ticket = email_change(bob, {"bob-reseller.test": ["owner", "admin"]})
    confirm_new_email(ticket)
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    return ticket


def changes_of(ticket):
    return {c.domain.name: c for c in RegistrationChange.objects.filter(ticket=ticket)}


def notes(ticket):
    return list(Message.objects.filter(ticket=ticket, internal=True).values_list("body", flat=True))


@pytest.mark.django_db
def test_an_email_change_with_two_matching_domains_updates_both_after_approval(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given Bob chose both contacts of one domain and the owner of the other
    ticket = email_change(
        bob, {"bob-reseller.test": ["owner", "admin"], "bob-shop.test": ["owner", "admin"]}
    )
    offered = changes_of(ticket)
    assert set(offered) == {"bob-reseller.test", "bob-shop.test"}
    assert offered["bob-shop.test"].update_admin is False  # its admin was never Bob's address
    confirm_new_email(ticket)
    assert run_tasks == []
    assert calls(bob_domains, "MODIFY") == []  # nothing before approval

    # when a supervisor approves and the worker runs
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    results = [registration_change_process(change_id=pk) for pk in run_tasks]

    # then both records changed at OpenSRS, each answer recorded on the ticket
    assert results == ["done", "done"]
    assert bob_domains.domains["bob-reseller.test"].contacts["owner"]["email"] == NEW
    assert bob_domains.domains["bob-reseller.test"].contacts["admin"]["email"] == NEW
    assert bob_domains.domains["bob-shop.test"].contacts["owner"]["email"] == NEW
    assert bob_domains.domains["bob-shop.test"].contacts["admin"]["email"] == "ops@bob-shop.test"
    done = changes_of(ticket)
    for name in ("bob-reseller.test", "bob-shop.test"):
        assert (done[name].status, done[name].response_code) == (RC.DONE, 200)
        assert done[name].registrant_change == "pending_current_registrant"
    changed = ActionLog.objects.filter(ticket=ticket, action="registration.changed")
    assert sorted(row.details["domain"] for row in changed) == [
        "bob-reseller.test",
        "bob-shop.test",
    ]
    domain = Domain.objects.get(name="bob-reseller.test")
    assert (domain.registrant_email, domain.admin_email) == (NEW, NEW)
    assert domain.registrant_change == "pending_current_registrant"
    assert len(calls(bob_domains, "MODIFY")) == 2
    # a redelivered task does nothing more
    assert registration_change_process(change_id=run_tasks[0]) == "skipped"
    assert len(calls(bob_domains, "MODIFY")) == 2


@pytest.mark.django_db
def test_one_domain_refused_leaves_the_other_updated_and_a_staff_note(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given bob-shop.test has left our reseller account since
    ticket = email_change(bob, {"bob-reseller.test": ["owner"], "bob-shop.test": ["owner"]})
    confirm_new_email(ticket)
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    bob_domains.domains["bob-shop.test"].in_account = False

    # when
    results = {registration_change_process(change_id=pk) for pk in run_tasks}

    # then
    assert results == {"done", "refused"}
    changes = changes_of(ticket)
    assert changes["bob-reseller.test"].status == RC.DONE
    assert (changes["bob-shop.test"].status, changes["bob-shop.test"].response_code) == (
        RC.REFUSED,
        415,
    )
    assert bob_domains.domains["bob-reseller.test"].contacts["owner"]["email"] == NEW
    assert any("refused" in n and "bob-shop.test" in n for n in notes(ticket))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority) == (S.OPEN, Ticket.Priority.HIGH)


@pytest.mark.django_db
def test_a_read_timeout_on_the_change_is_not_retried_and_becomes_a_staff_task(
    settings, bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given OpenSRS reads fine, then stalls past our read timeout on the MODIFY
    settings.OPENSRS_READ_TIMEOUT = 0.5
    ticket = email_change(bob, {"bob-reseller.test": ["owner", "admin"]})
    confirm_new_email(ticket)
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    (pk,) = run_tasks
    bob_domains.set_fault("stall", delay=2, action="MODIFY")

    # when
    result = registration_change_process(change_id=pk)

    # then: unknown, recorded for staff, and never sent again
    assert result == "unknown"
    change = RegistrationChange.objects.get(pk=pk)
    assert change.status == RC.UNKNOWN
    assert any("may or may not have been made" in n for n in notes(ticket))
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert ActionLog.objects.filter(ticket=ticket, action="registration.outcome_unknown").exists()
    assert bob_domains.wait_idle(5)
    assert bob_domains.domains["bob-reseller.test"].contacts["owner"]["email"] == NEW  # it was made
    bob_domains.clear_fault()
    assert registration_change_process(change_id=pk) == "skipped"
    assert registration_change_give_up(change_id=pk, error="late failure") == "skipped"
    assert len(calls(bob_domains, "MODIFY")) == 1


@pytest.mark.django_db
def test_a_worker_that_died_mid_call_leaves_an_unknown_outcome_not_a_second_call(
    settings, bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    ticket = email_change(bob, {"bob-reseller.test": ["owner"]})
    confirm_new_email(ticket)
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    (pk,) = run_tasks
    # the first delivery claimed it and was killed; much later the message is redelivered
    RegistrationChange.objects.filter(pk=pk).update(
        status=RC.SENDING, updated_at=timezone.now() - timedelta(hours=1)
    )

    assert registration_change_process(change_id=pk) == "unknown"
    assert calls(bob_domains, "MODIFY") == []


@pytest.mark.django_db
def test_transient_errors_are_retried_then_handed_to_staff(
    settings, bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given OpenSRS answers "rate limited" to everything
    settings.REGISTRATION_CHANGE_MAX_TRIES = 2
    settings.OPENSRS_READ_RETRIES = 0
    ticket = email_change(bob, {"bob-reseller.test": ["owner"]})
    confirm_new_email(ticket)
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    (pk,) = run_tasks
    bob_domains.set_fault("rate_limit")

    # when / then: one retry, then staff
    with pytest.raises(RegistrationChangeRetry):
        registration_change_process(change_id=pk)
    assert RegistrationChange.objects.get(pk=pk).status == RC.QUEUED
    assert registration_change_process(change_id=pk) == "failed"
    assert any("could not be reached" in n for n in notes(ticket))
    assert calls(bob_domains, "MODIFY") == []


@pytest.mark.django_db
def test_unchosen_domains_are_never_sent(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    ticket = email_change(bob)
    confirm_new_email(ticket)

    approve(ticket, supervisor, django_capture_on_commit_callbacks)

    assert run_tasks == []
    assert {c.status for c in changes_of(ticket).values()} == {RC.SKIPPED}
    assert calls(bob_domains, "MODIFY") == []


@pytest.mark.django_db
def test_an_agent_cannot_trigger_a_registration_change_without_a_verified_request(
    alice, bob, bob_domains, agent, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given an anonymous request in Bob's name that nobody verified
    ticket = email_change(None)
    assert set(changes_of(ticket)) == {"bob-reseller.test", "bob-shop.test"}

    # when staff try every door: choosing for the owner, approving, running the worker
    with pytest.raises(ApplicationError) as refused:
        registration_choose_by_owner(
            ticket=ticket, customer=alice, choices={"bob-reseller.test": ["owner"]}
        )
    assert refused.value.message == REGISTRATION_OWNER_ONLY
    with pytest.raises(ApplicationError) as closed:
        registration_choose_by_owner(
            ticket=ticket, customer=bob, choices={"bob-reseller.test": ["owner"]}
        )
    assert closed.value.message == REGISTRATION_CHOICE_CLOSED  # not verified
    for actor in (agent, supervisor):
        with pytest.raises(ApplicationError):
            services.ticket_approve(ticket=ticket, actor=actor)
    # even a change row forced to queued by hand is refused by the worker's own check
    forced = changes_of(ticket)["bob-reseller.test"]
    RegistrationChange.objects.filter(pk=forced.pk).update(status=RC.QUEUED, update_owner=True)
    assert registration_change_process(change_id=forced.pk) == "skipped"

    # then nothing reached OpenSRS
    assert run_tasks == []
    assert calls(bob_domains, "MODIFY") == []
    assert RegistrationChange.objects.get(pk=forced.pk).response_text == (
        "the request was not verified by its owner"
    )


@pytest.mark.django_db
def test_the_owner_chooses_on_the_verification_page_and_the_mail_lists_the_domains(
    bob, bob_domains, client, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given an anonymous request; the link goes to Bob's email on record
    ticket = email_change(None)
    mail = verification_mail(ticket)
    token = link_token(mail)
    (sent,) = deliver_outbox()
    for part in (sent.body, html_part(sent)):
        assert "bob-reseller.test" in part and "bob-shop.test" in part
        assert "change of registrant" in part
    assert "other.test" not in sent.body

    # when Bob opens the page and confirms with a choice
    page = client.get(f"/verify/{token}/")
    content = page.content.decode()
    assert 'value="bob-reseller.test:owner"' in content
    assert 'value="bob-shop.test:admin"' not in content
    assert "change of registrant" in content
    response = client.post(
        f"/verify/{token}/",
        {"registration": ["bob-reseller.test:admin", "bob-shop.test:admin"]},
        follow=True,
    )

    # then the choice is stored for the verified request only where it applies
    assert response.status_code == 200
    changes = changes_of(ticket)
    assert (
        changes["bob-reseller.test"].update_owner,
        changes["bob-reseller.test"].update_admin,
    ) == (
        False,
        True,
    )
    assert changes["bob-shop.test"].chosen is False
    chosen = ActionLog.objects.get(ticket=ticket, action="registration.chosen")
    assert chosen.details["via"] == "verification link"
    # and a replayed link cannot change it
    with pytest.raises(ApplicationError):
        registration_confirm(
            token=token,
            choices={"bob-shop.test": ["owner"]},
            client_key="10.0.0.3",
            actor="anonymous",
        )
    assert changes_of(ticket)["bob-shop.test"].chosen is False


@pytest.mark.django_db
def test_the_logged_in_form_offers_the_domains_and_the_staff_page_shows_the_answer(
    bob, bob_domains, client, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given Bob's form lists the domains registered to his address
    client.force_login(bob.user)
    form = client.get("/requests/modify/").content.decode()
    assert 'value="bob-reseller.test:owner"' in form and 'value="bob-shop.test:owner"' in form
    assert "other.test" not in form
    data = {
        "full_name": bob.full_name,
        "email": NEW,
        "phone": bob.phone,
        "country": bob.country,
        "registration": ["bob-reseller.test:owner", "bob-reseller.test:admin"],
    }

    # when he sends it, confirms the new address and a supervisor approves
    assert client.post("/requests/modify/", data).status_code == 303
    ticket = Ticket.objects.get(customer=bob, kind=Ticket.Kind.MODIFY_INFO)
    confirm_new_email(ticket)
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    for pk in run_tasks:
        registration_change_process(change_id=pk)

    # then
    assert bob_domains.domains["bob-reseller.test"].contacts["admin"]["email"] == NEW
    client.force_login(supervisor)
    page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert "Registration records at OpenSRS" in page
    assert "Changed at OpenSRS" in page and "change of registrant pending approval" in page
    assert "Not changed" in page  # bob-shop.test was not chosen


def test_the_throttle_applies_to_registration_changes_too(settings, db):
    # the client every flow builds carries the shared throttle
    from domains.opensrs import client_from_settings, opensrs_throttle

    assert client_from_settings()._throttle is opensrs_throttle
    cache.clear()


@pytest.mark.django_db
def test_the_new_addresss_link_cannot_choose_the_registration_changes_the_owner_declined(
    bob, bob_domains, client, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given an anonymous email change that Bob confirmed from his address on record, choosing
    # to leave every registration record as it is
    ticket = email_change(None)
    owner_token = link_token(verification_mail(ticket))
    assert client.post(f"/verify/{owner_token}/", {}).status_code == 303
    assert not any(c.chosen for c in changes_of(ticket).values())

    # when whoever reads the new address confirms it, naming registration records to change
    new_token = link_token(verification_mail(ticket, "verify_new_email"))
    response = client.post(
        f"/verify/{new_token}/",
        {"registration": ["bob-reseller.test:owner", "bob-shop.test:owner"]},
    )

    # then the address is confirmed, Bob's choice stands, and after approval OpenSRS is not asked
    assert response.status_code == 303
    assert not any(c.chosen for c in changes_of(ticket).values())
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    assert run_tasks == []
    assert bob_domains.domains["bob-reseller.test"].contacts["owner"]["email"] == (
        "bob@example.test"
    )


@pytest.mark.django_db
def test_the_owner_reporting_the_change_while_the_worker_reads_the_record_stops_it(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    # given an approved email change whose registration change the worker has picked up
    ticket = approved_email_change(bob, supervisor, django_capture_on_commit_callbacks)
    [change_id] = run_tasks
    # and the old address says "this wasn't me" while the worker reads the record at OpenSRS
    read = OpenSRSClient.get_domains_contacts

    def read_while_the_owner_freezes(client, names):
        contacts = read(client, names)
        freeze = Notification.objects.get(ticket=ticket, template="email_changed_old")
        account_freeze(token=link_token(freeze), client_key="10.0.0.9", actor="anonymous")
        return contacts

    monkeypatch.setattr(OpenSRSClient, "get_domains_contacts", read_while_the_owner_freezes)

    # when the worker goes on
    result = registration_change_process(change_id=change_id)

    # then nothing went to OpenSRS: the record still names the owner's own address
    assert result == "skipped"
    assert calls(bob_domains, "MODIFY") == []
    contacts = bob_domains.domains["bob-reseller.test"].contacts
    assert contacts["owner"]["email"] == contacts["admin"]["email"] == "bob@example.test"
    change = RegistrationChange.objects.get(pk=change_id)
    assert change.status == RC.SKIPPED
    frozen = ActionLog.objects.get(ticket=ticket, action="account.frozen")
    assert frozen.details["registration_changes_stopped"] == ["bob-reseller.test"]
    assert Domain.objects.get(name="bob-reseller.test").registrant_email == "bob@example.test"


@pytest.mark.django_db
def test_a_freeze_tells_the_supervisor_which_registration_records_already_changed(
    client, bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given an approved email change the worker already made at OpenSRS
    ticket = approved_email_change(bob, supervisor, django_capture_on_commit_callbacks)
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]

    # when the old address says "this wasn't me"
    freeze = Notification.objects.get(ticket=ticket, template="email_changed_old")
    held = account_freeze(token=link_token(freeze), client_key="10.0.0.9", actor="anonymous")

    # then the supervisor's note names the record that still holds the reported address
    [note] = [body for body in notes(held) if "this change was not theirs" in body]
    assert "bob-reseller.test" in note
    frozen = ActionLog.objects.get(ticket=ticket, action="account.frozen")
    assert frozen.details["registration_changed"] == ["bob-reseller.test"]


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_locked_out_accounts_verification_link_chooses_no_registration_change(
    bob, bob_domains, client, status, refusal
):
    # given an anonymous email change offering Bob's domains, and Bob's account frozen or
    # closed since
    ticket = email_change(None)
    token = link_token(verification_mail(ticket))
    Customer.objects.filter(pk=bob.pk).update(account_status=status)
    logged = ActionLog.objects.count()

    # when the link is confirmed choosing records to change at OpenSRS
    response = client.post(
        f"/verify/{token}/", {"registration": ["bob-reseller.test:owner", "bob-shop.test:owner"]}
    )

    # then it is refused as every change to a locked-out account is, saying which: nothing
    # chosen, nothing confirmed
    assert response.status_code == 409
    assert not any(c.chosen_at for c in changes_of(ticket).values())
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION
    assert ActionLog.objects.count() == logged
    with pytest.raises(AccountLockedOut) as by_link:
        registration_confirm(
            token=token,
            choices={"bob-reseller.test": ["owner"]},
            client_key="10.0.0.1",
            actor="anonymous",
        )
    with pytest.raises(AccountLockedOut) as by_session:
        registration_choose_by_owner(
            ticket=ticket, customer=bob, choices={"bob-reseller.test": ["owner"]}
        )
    assert by_link.value.message == by_session.value.message == refusal


@pytest.mark.django_db
def test_a_chosen_contact_changed_at_opensrs_since_is_neither_sent_nor_cached_as_changed(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given Bob chose both contacts of bob-reseller.test, and its admin was changed at OpenSRS
    # before the worker ran
    ticket = email_change(bob, {"bob-reseller.test": ["owner", "admin"]})
    confirm_new_email(ticket)
    approve(ticket, supervisor, django_capture_on_commit_callbacks)
    bob_domains.domains["bob-reseller.test"].contacts["admin"]["email"] = "ops@elsewhere.test"

    # when
    assert [registration_change_process(change_id=pk) for pk in run_tasks] == ["done"]

    # then only the owner was sent, and only the owner is recorded as changed
    assert set(calls(bob_domains, "MODIFY")[0]["attributes"]["contact_set"]) == {"owner"}
    domain = Domain.objects.get(name="bob-reseller.test")
    assert (domain.registrant_email, domain.admin_email) == (NEW, "bob@example.test")
    assert any("changed the registration owner email of" in n for n in notes(ticket))
    changed = ActionLog.objects.get(ticket=ticket, action="registration.changed")
    assert changed.details["sent"] == ["owner"]


@pytest.mark.django_db
def test_an_email_change_approved_while_the_worker_reads_the_record_stops_the_earlier_change(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    # given Bob's approved change to NEW, its registration change waiting for the worker, and a
    # second change of his address, from NEW on, confirmed and waiting for a supervisor
    approved_email_change(bob, supervisor, django_capture_on_commit_callbacks)
    (pk,) = run_tasks
    bob.refresh_from_db()
    later = services.request_modify(
        email=None,
        customer=bob,
        changes={"email": "bob@third-mail.test"},
        note="",
        client_key="10.0.0.1",
        actor=bob,
    )
    confirm_new_email(later)

    # when the second is approved while the worker reads the registration record for the first
    read = registration_change_module._registration_contacts_to_send

    def read_while_the_second_is_approved(change, client):
        contacts = read(change, client)
        services.ticket_approve(ticket=later, actor=supervisor)
        return contacts

    monkeypatch.setattr(
        registration_change_module,
        "_registration_contacts_to_send",
        read_while_the_second_is_approved,
    )
    result = registration_change_process(change_id=pk)

    # then the worker does not take NEW, no longer the email on record, to OpenSRS
    assert result == "skipped"
    assert calls(bob_domains, "MODIFY") == []
    assert bob_domains.domains["bob-reseller.test"].contacts["owner"]["email"] == "bob@example.test"
    assert RegistrationChange.objects.get(pk=pk).status == RC.SKIPPED


@pytest.mark.django_db
def test_a_registration_change_that_runs_after_the_account_was_closed_is_not_sent(
    bob, bob_domains, supervisor, run_tasks, django_capture_on_commit_callbacks
):
    # given an approved email change whose registration change waits for the worker (a broker
    # outage, a busy queue), and Bob's account closed in the meantime
    ticket = approved_email_change(bob, supervisor, django_capture_on_commit_callbacks)
    [change_id] = run_tasks
    Customer.objects.filter(pk=bob.pk).update(account_status=Customer.AccountStatus.CLOSED)

    # when the worker gets to it
    result = registration_change_process(change_id=change_id)

    # then nothing goes to OpenSRS, and staff are told why
    assert result == "skipped"
    assert calls(bob_domains, "MODIFY") == []
    assert RegistrationChange.objects.get(pk=change_id).status == RC.SKIPPED
    assert any("closed" in note for note in notes(ticket))
