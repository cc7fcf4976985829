"""Flows on one customer take their row locks in one order, so they queue instead of deadlocking.

The order (tickets.lock_objects): the customer, then its tickets, then what hangs off them, and
the audit chain head last. Each test holds one row from another transaction, starts a flow
that must wait for it, and looks at which rows the waiting flow already holds.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection, transaction

from accounts.lock_objects import user_limits_lock, user_lock
from accounts.models import ApiToken, Customer
from domains.lock_objects import domains_lock
from domains.models import Domain, RegistrationChange
from tests.factories import CustomerFactory, TicketFactory, api_key_for
from tests.markers import postgresql_only
from tests.tickets.test_freeze import NEW_EMAIL, email_change_applied, freeze_token
from tests.tickets.test_unproven_opener import forged_form
from tests.tickets.verification_helpers import (
    anonymous_lookups,
    link_token,
    owner_request,
    verification_mail,
)
from tickets import services
from tickets.lock_objects import (
    audit_chain_head_lock,
    customer_lock,
    customer_warnings_lock,
    customers_batch_lock,
    domain_lock,
    ticket_lock,
    tickets_of_customer_lock,
)
from tickets.models import (
    OPEN_STATUS_VALUES,
    ActionLog,
    AuditChainHead,
    Message,
    Notification,
    Ticket,
    Verification,
)
from tickets.services.contact_link import tickets_link_by_contact
from tickets.services.freeze import ACCOUNT_FROZEN, account_freeze
from tickets.services.outbox import notification_bounced, notification_mark_sent, notification_queue

pytestmark = [
    pytest.mark.django_db(transaction=True),
    postgresql_only("a row lock that waits on another"),
]

S = Ticket.Status


@contextmanager
def held(lock: Callable[[], Any]) -> Iterator[None]:
    """Another transaction holds what `lock` (a lock_objects helper) locks until the block ends."""
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                lock()
                ready.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert ready.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(30)


@pytest.fixture
def background() -> Iterator[Callable[[Callable[[], Any]], "Background"]]:
    """Starts flows in threads; each is waited for before the database is emptied again."""
    flows: list[Background] = []

    def start(action: Callable[[], Any]) -> Background:
        flows.append(Background(action))
        return flows[-1]

    yield start
    for flow in flows:
        flow.thread.join(30)


class Background:
    """A flow run in a thread of its own (its own connection); `outcome` once it ends."""

    def __init__(self, action: Callable[[], Any]) -> None:
        self.outcome: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._run, args=(action,))
        self.thread.start()

    def _run(self, action: Callable[[], Any]) -> None:
        try:
            self.outcome["result"] = action()
        except Exception as exc:
            self.outcome["error"] = exc
        finally:
            connection.close()

    def finish(self) -> Any:
        self.thread.join(30)
        assert "error" not in self.outcome, self.outcome.get("error")
        return self.outcome["result"]


def wait_until_blocked(count: int = 1, *, on: str = "") -> None:
    """Until `count` other sessions of this database wait on a lock (in a query naming `on`)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND query LIKE %s",
                [f"%{on}%"],
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.02)
    raise AssertionError(f"{count} flow(s) did not wait on a lock {on}")


def is_free(model: type, pk: int) -> bool:
    """Whether no other transaction holds the row (taken and let go at once here)."""
    try:
        with transaction.atomic():
            model.objects.select_for_update(nowait=True).filter(pk=pk).first()
    except OperationalError:
        return False
    return True


def approval_waiting(alice) -> Ticket:
    return owner_request(alice, {"full_name": "Alice Lim"})


def email_change_waiting(alice) -> Ticket:
    ticket = owner_request(alice, {"email": NEW_EMAIL})
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
    return ticket


def anonymous_change_sent(alice) -> str:
    """An address change asked for without a login; the token of the link mailed to Alice."""
    ticket = services.request_modify(
        email=alice.email,
        customer=None,
        changes={"city": "Penang"},
        note="",
        client_key="10.0.0.4",
        actor="anonymous",
        channel=Ticket.Channel.PORTAL,
    )
    anonymous_lookups()
    return link_token(verification_mail(ticket))


def test_an_approval_waits_for_the_customer_before_it_holds_the_ticket(
    alice, supervisor, background
):
    # given a change request, and the customer's row held by another transaction
    ticket = approval_waiting(alice)
    with held(lambda: customer_lock(pk=alice.pk)):
        # when a supervisor approves it
        flow = background(lambda: services.ticket_approve(ticket=ticket, actor=supervisor))
        wait_until_blocked()

        # then it waits holding nothing of the ticket
        assert is_free(Ticket, ticket.pk)

    flow.finish()
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED


def test_a_verification_link_waits_for_the_customer_before_it_holds_the_ticket(alice, background):
    token = anonymous_change_sent(alice)
    ticket = Ticket.objects.get(kind=Ticket.Kind.MODIFY_INFO)
    with held(lambda: customer_lock(pk=alice.pk)):
        flow = background(
            lambda: services.verification_confirm(
                token=token, client_key="10.0.0.5", actor="anonymous"
            )
        )
        wait_until_blocked()

        assert is_free(Ticket, ticket.pk)

    flow.finish()
    alice.refresh_from_db()
    assert alice.city == "Penang"


def test_a_freeze_link_waits_for_the_customer_before_it_holds_the_ticket(
    alice, supervisor, background
):
    ticket = email_change_applied(alice, supervisor)
    token = freeze_token(ticket)
    with held(lambda: customer_lock(pk=alice.pk)):
        flow = background(
            lambda: account_freeze(token=token, client_key="10.0.0.6", actor="anonymous")
        )
        wait_until_blocked()

        assert is_free(Ticket, ticket.pk)

    flow.finish()
    alice.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.SUSPENDED


def test_an_owners_own_change_waits_for_the_customer_before_it_records_anything(alice, background):
    # given the audit chain begun, and the customer's row held by another transaction
    with transaction.atomic():
        audit_chain_head_lock()
    with held(lambda: customer_lock(pk=alice.pk)):
        # when the owner asks in their session for a change applied at once (low risk)
        flow = background(lambda: owner_request(alice, {"city": "Penang"}))
        wait_until_blocked()

        # then it waits holding nothing: not the audit chain every other writer needs
        assert is_free(AuditChainHead, 1)

    assert flow.finish().status == S.RESOLVED
    alice.refresh_from_db()
    assert alice.city == "Penang"


def test_a_merge_waits_for_the_customer_before_it_holds_either_ticket(alice, agent, background):
    duplicate = TicketFactory(customer=alice, kind=Ticket.Kind.GENERAL, status=S.OPEN)
    survivor = TicketFactory(customer=alice, kind=Ticket.Kind.GENERAL, status=S.OPEN)
    with held(lambda: customer_lock(pk=alice.pk)):
        flow = background(
            lambda: services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)
        )
        wait_until_blocked()

        assert is_free(Ticket, duplicate.pk)
        assert is_free(Ticket, survivor.pk)

    assert flow.finish().pk == survivor.pk


def test_an_email_change_holds_the_customers_other_tickets_before_it_records_anything(
    alice, supervisor, background
):
    # given an email change and another open ticket of the customer's that follows the address
    ticket = email_change_waiting(alice)
    other = approval_waiting(alice)
    with held(audit_chain_head_lock):
        # when the change is approved while another writer holds the audit chain
        flow = background(lambda: services.ticket_approve(ticket=ticket, actor=supervisor))
        wait_until_blocked()

        # then it already holds the other ticket: a flow on that one cannot hold it and
        # then wait for the chain this flow waits behind
        assert not is_free(Ticket, other.pk)

    flow.finish()
    other.refresh_from_db()
    assert other.contact_email == NEW_EMAIL


def test_a_freeze_holds_the_other_change_requests_before_it_records_anything(
    alice, supervisor, background
):
    ticket = email_change_applied(alice, supervisor)
    alice.refresh_from_db()
    other = owner_request(alice, {"full_name": "Mallory"})
    token = freeze_token(ticket)
    with held(audit_chain_head_lock):
        flow = background(
            lambda: account_freeze(token=token, client_key="10.0.0.7", actor="anonymous")
        )
        wait_until_blocked()

        assert not is_free(Ticket, other.pk)

    flow.finish()
    other.refresh_from_db()
    assert other.status == S.REJECTED


def test_two_approvals_for_one_customer_at_once_both_go_through(alice, supervisor, background):
    # given an email change (it touches the customer's other open tickets) and a name change
    email_change = email_change_waiting(alice)
    name_change = approval_waiting(alice)
    with held(lambda: customer_lock(pk=alice.pk)):
        # when both are approved at the same moment, the email change first in the queue
        first = background(lambda: services.ticket_approve(ticket=email_change, actor=supervisor))
        wait_until_blocked(1)
        second = background(lambda: services.ticket_approve(ticket=name_change, actor=supervisor))
        wait_until_blocked(2)

    # then neither is rolled back as a deadlock: one waits for the other
    first.finish()
    second.finish()
    alice.refresh_from_db()
    assert (alice.email, alice.full_name) == (NEW_EMAIL, "Alice Lim")
    assert set(
        Ticket.objects.filter(pk__in=[email_change.pk, name_change.pk]).values_list(
            "status", flat=True
        )
    ) == {S.RESOLVED}


def test_a_bounced_resend_notice_holds_its_ticket_and_domain_before_it_records_anything(
    notice: Notification, background
):
    # given our notice to a domain's registration address, sent
    domain = Domain.objects.get(name="alice-shop.test")
    with held(audit_chain_head_lock):
        # when its bounce is stored while another writer holds the audit chain
        flow = background(lambda: notification_bounced(notification=notice, reason="5.1.1"))
        wait_until_blocked()

        # then the ticket it refers and the domain it marks are held already
        assert not is_free(Ticket, notice.ticket_id)
        assert not is_free(Domain, domain.pk)

    flow.finish()
    domain.refresh_from_db()
    assert domain.registrant_email_status == Domain.EmailStatus.BOUNCING
    assert Ticket.objects.get(pk=notice.ticket_id).status == S.REFERRED


def test_a_freeze_holds_the_login_before_it_records_the_revoked_api_tokens(
    alice, supervisor, background
):
    # given an email change applied whose old address another record has taken since (so the
    # freeze puts the rest back but not the email), and an API token on the login
    ticket = email_change_applied(alice, supervisor)
    CustomerFactory(email="alice@example.test")
    api_key_for(alice.user)
    token = freeze_token(ticket)
    with held(lambda: user_limits_lock(user=alice.user)):
        # when the old address freezes the account while a request of the login holds it
        flow = background(
            lambda: account_freeze(token=token, client_key="10.0.0.8", actor="anonymous")
        )
        wait_until_blocked()

        # then it waits holding nothing of the audit chain
        assert is_free(AuditChainHead, 1)

    flow.finish()
    alice.refresh_from_db()
    assert (alice.account_status, alice.city) == (Customer.AccountStatus.SUSPENDED, "Kuala Lumpur")
    assert not ApiToken.objects.filter(user=alice.user).exists()


def test_linking_tickets_to_customers_holds_the_whole_batch_before_it_records_anything(
    alice, background
):
    # given two tickets sent logged out from Alice's address before such tickets were linked,
    # the audit chain begun, and the second ticket held by another transaction (a reply)
    TicketFactory(customer=None, contact_email=alice.email, subject="First")
    second = TicketFactory(customer=None, contact_email=alice.email, subject="Second")
    with transaction.atomic():
        audit_chain_head_lock()
    with held(lambda: ticket_lock(pk=second.pk)):
        # when the link command runs
        flow = background(lambda: tickets_link_by_contact())
        wait_until_blocked()

        # then it waits holding nothing of the audit chain the reply waits for
        assert is_free(AuditChainHead, 1)

    assert flow.finish() == (2, None)
    assert set(Ticket.objects.values_list("customer", flat=True)) == {alice.pk}


# A transaction checks the foreign keys of the rows it wrote when it commits (FOR KEY SHARE on
# each row they point at), after its first audit row: it holds the audit chain head by then.
# Whoever holds one of those rows must not block that check, since the holder's next step is
# an audit row of its own. Each test holds a row with a helper of a flow that records next.


def commits_while_held(flow: "Background") -> bool:
    """Whether `flow` ends while the row is still held (else it waits at its commit)."""
    flow.thread.join(5)
    return not flow.thread.is_alive()


def _mailing_batch_of(customer: Customer) -> Callable[[], Any]:
    return lambda: customers_batch_lock(
        rows=Customer.objects.filter(pk=customer.pk), after=0, size=1
    )


def _warnings_of(customer: Customer) -> Callable[[], Any]:
    return lambda: customer_warnings_lock(pk=customer.pk)


@pytest.mark.parametrize("holder", [_mailing_batch_of, _warnings_of])
def test_a_reply_commits_while_a_sweep_holds_the_customer(alice, agent, holder, background):
    # given a ticket of Alice's, and Alice held by a mailing batch or a registration warning
    ticket = TicketFactory(customer=alice)
    with held(holder(alice)):
        # when an agent replies on the ticket (its audit rows name Alice)
        flow = background(
            lambda: services.ticket_reply_add(
                ticket=ticket,
                body="It is fixed.",
                actor=agent,
                author=Message.Author.STAFF,
                channel=Ticket.Channel.STAFF,
            )
        )

        # then it commits without waiting for the sweep, which waits for the chain next
        assert commits_while_held(flow)

    assert flow.finish().body == "It is fixed."


def test_a_sent_notice_is_recorded_while_an_email_change_holds_its_ticket(alice, background):
    # given a reply notice on one of Alice's tickets, claimed by the worker
    approving, other = TicketFactory(customer=alice), TicketFactory(customer=alice)
    with transaction.atomic():
        notice = notification_queue(
            ticket=other, template="ticket_reply", recipient=alice.email, context={}, publish=False
        )
    with held(
        lambda: tickets_of_customer_lock(
            customer=alice, statuses=OPEN_STATUS_VALUES, exclude=approving
        )
    ):
        # when the worker records it sent while an email change holds Alice's other tickets
        flow = background(lambda: notification_mark_sent(notice, "esp-1"))

        # then the record commits without waiting for them
        assert commits_while_held(flow)

    assert flow.finish() is True


@pytest.mark.parametrize("lock", [user_lock, lambda pk: user_limits_lock(user=User(pk=pk))])
def test_an_assignment_commits_while_the_assignee_holds_their_login(
    agent, supervisor, lock, background
):
    # given an open ticket, and the agent's login held (a token or a saved view of theirs)
    ticket = TicketFactory()
    with held(lambda: lock(pk=agent.pk)):
        # when a supervisor assigns the ticket to the agent
        flow = background(
            lambda: services.ticket_assign(ticket=ticket, assignee=agent, actor=supervisor)
        )

        # then it commits without waiting for the login
        assert commits_while_held(flow)

    assert flow.finish().assignee == agent


@pytest.mark.parametrize(
    "lock", [domain_lock, lambda pk: domains_lock(pks=[pk])], ids=["domain", "domains"]
)
def test_an_email_change_request_commits_while_its_domain_is_held(
    alice, alice_shop, lock, background
):
    # given Alice's domain held by a refresh of its contacts (which records a change next)
    with held(lambda: lock(pk=alice_shop.pk)):
        # when Alice asks to change her email, which offers that domain's record to change too
        flow = background(lambda: owner_request(alice, {"email": NEW_EMAIL}))

        # then the request commits without waiting for the domain
        assert commits_while_held(flow)

    assert RegistrationChange.objects.get(ticket=flow.finish()).domain_id == alice_shop.pk


def test_a_ticket_linked_to_its_customer_meanwhile_still_gets_the_customer_locked(
    alice, agent, background
):
    # given a merge whose duplicate had no customer when the merge looked, and is linked to
    # Alice by a transaction that holds it until the merge waits for it
    duplicate = TicketFactory(customer=None, kind=Ticket.Kind.GENERAL, status=S.OPEN)
    survivor = TicketFactory(customer=None, kind=Ticket.Kind.GENERAL, status=S.OPEN)

    def link_while_held() -> None:
        ticket_lock(pk=duplicate.pk)
        Ticket.objects.filter(pk=duplicate.pk).update(customer=alice)

    with held(lambda: customer_lock(pk=alice.pk)):
        with held(link_while_held):
            flow = background(
                lambda: services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)
            )
            wait_until_blocked(on="tickets_ticket")

        # when the link commits, then the merge holds the tickets and waits for Alice's row (a
        # query from the customers: the ticket's own lock joins them, and waited there first)
        wait_until_blocked(on='FROM "accounts_customer"')
        assert not is_free(Ticket, duplicate.pk)

    assert flow.finish().pk == survivor.pk
    duplicate.refresh_from_db()
    assert (duplicate.customer_id, duplicate.merged_into_id) == (alice.pk, survivor.pk)


def test_a_status_link_confirmation_of_a_ticket_linked_meanwhile_reads_its_customer_locked(
    alice, background
):
    # given a request sent from Alice's address on no account yet, its status link mailed to
    # her, and a freeze of her account holding her row, not yet committed
    ticket = forged_form()
    Ticket.objects.filter(pk=ticket.pk).update(customer=None, customer_by_contact=False)
    services.status_link_issue(ticket=ticket, send_to=alice.email)
    link = Verification.objects.select_related("ticket").get(ticket=ticket)

    def freeze_uncommitted() -> None:
        customer_lock(pk=alice.pk)
        Customer.objects.filter(pk=alice.pk).update(account_status=Customer.AccountStatus.SUSPENDED)

    def link_while_held() -> None:
        ticket_lock(pk=ticket.pk)
        Ticket.objects.filter(pk=ticket.pk).update(customer=alice, customer_by_contact=True)

    with held(freeze_uncommitted):
        with held(link_while_held):
            # when the link's holder confirms the request, read when it was on no account
            flow = background(lambda: services.ticket_opener_confirm_by_link(verification=link))
            wait_until_blocked(on="tickets_ticket")

        # then, the ticket now Alice's, it waits for her row before it checks her account
        wait_until_blocked(on='FROM "accounts_customer"')

    # and finds it frozen: nothing is confirmed
    flow.thread.join(30)
    assert flow.outcome["error"].message == ACCOUNT_FROZEN
    ticket.refresh_from_db()
    assert ticket.opener_unproven
    assert not ActionLog.objects.filter(ticket=ticket, action="ticket.opener_confirmed").exists()
