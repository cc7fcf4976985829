"""Mailings: queued per subscribed customer, with RFC 8058 unsubscribe headers, resumable."""

import logging

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError
from tests.factories import CustomerFactory, freeze_shown
from tests.tickets.test_freeze import NEW_EMAIL, email_change_applied, freeze_token
from tests.tickets.verification_helpers import deliver_outbox, html_part
from tickets import services
from tickets.models import ActionLog, Notification, Ticket
from tickets.services.freeze import account_unfreeze

pytestmark = pytest.mark.django_db

ANYMAIL_TEST = "anymail.backends.test.EmailBackend"
SITE = "https://help.exabytes.example"


@pytest.fixture
def anymail_backend(settings):
    settings.EMAIL_BACKEND = ANYMAIL_TEST


@pytest.fixture
def subscribers(alice, bob):
    """Alice and Bob receive product mailings, Carol opted out, Dan's account is closed."""
    carol = CustomerFactory(email="carol@example.test", product_mailings=False)
    dan = CustomerFactory(email="dan@example.test", account_status=Customer.AccountStatus.CLOSED)
    return {"alice": alice, "bob": bob, "carol": carol, "dan": dan}


def send(list_name="product_mailings", **kwargs):
    return services.mailing_send(
        list_name=list_name,
        subject=kwargs.pop("subject", "New hosting plans"),
        body_text=kwargs.pop("body_text", "Our new plans are here.\nFaster & cheaper."),
        actor="test",
        **kwargs,
    )


def mailing_rows():
    return Notification.objects.filter(template="mailing").order_by("recipient")


def assert_only_bob_mailed(sent, *, failed: str, because: str) -> None:
    """Of the mailing, only Bob's email went out; the row to `failed` failed, saying `because`."""
    mailings = [m for m in sent if "New hosting plans" in m.subject]
    assert [m.to for m in mailings] == [["bob@example.test"]]
    row = mailing_rows().get(recipient=failed)
    assert row.status == "failed"
    assert because in row.last_error


def test_mailing_queues_one_email_per_subscriber_and_skips_those_who_opted_out(subscribers):
    # given Carol opted out and Dan's account is closed
    # when a product mailing is sent
    queued = send()
    # then only Alice and Bob get it
    assert queued == 2
    assert [row.recipient for row in mailing_rows()] == ["alice@example.test", "bob@example.test"]
    alice = subscribers["alice"]
    assert mailing_rows()[0].idempotency_key.endswith(f":{alice.number}")
    assert mailing_rows()[0].idempotency_key.startswith("mailing:product_mailings-")


def test_mailing_carries_both_unsubscribe_headers_to_the_esp(subscribers, anymail_backend):
    # given a product mailing queued for Alice and Bob
    send()
    row = mailing_rows()[0]
    # then the outbox row holds the one-click link and the support@ mailto
    link = row.headers["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    assert link.startswith(f"{SITE}/unsubscribe/")
    assert row.headers["List-Unsubscribe"].endswith(
        "<mailto:support@exabytes.example?subject=unsubscribe>"
    )
    assert row.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # when the worker sends it
    deliver_outbox()
    # then the ESP is given both headers, and the link is visible in both parts of the body
    message = next(m for m in mail.outbox if m.to == ["alice@example.test"])
    headers = message.anymail_test_params["extra_headers"]
    assert headers["List-Unsubscribe"] == row.headers["List-Unsubscribe"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.subject == "New hosting plans"
    assert link in message.body
    assert link in html_part(message)
    assert "Faster &amp; cheaper." in html_part(message)


def test_the_link_in_a_mailing_unsubscribes_that_customer_from_that_list(subscribers):
    # given Alice's mailing
    send()
    row = mailing_rows()[0]
    link = row.headers["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    # when her mail provider posts the one-click body to the link
    response = Client(enforce_csrf_checks=True).post(
        link.removeprefix(SITE),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    # then she is unsubscribed, and Bob is not
    assert response.status_code == 200
    assert Customer.objects.get(email="alice@example.test").product_mailings is False
    assert Customer.objects.get(email="bob@example.test").product_mailings is True


def test_newsletters_go_only_to_resellers_with_a_billing_mailto(subscribers):
    # given Bob is a reseller with newsletters on, and a non-reseller has the flag set
    CustomerFactory(email="odd@example.test", reseller_newsletters=True, is_reseller=False)
    # when a reseller newsletter is sent
    queued = send("reseller_newsletters", subject="Reseller news")
    # then only Bob gets it, with billing@ as the mailto
    assert queued == 1
    row = mailing_rows().get()
    assert row.recipient == "bob@example.test"
    assert (
        "<mailto:billing@exabytes.example?subject=unsubscribe>" in row.headers["List-Unsubscribe"]
    )


def test_running_the_same_mailing_again_queues_nothing_new(subscribers):
    # given a mailing already queued
    send()
    before = mailing_rows().count()
    # when it is run again
    queued = send()
    # then nothing new is queued
    assert queued == 0
    assert mailing_rows().count() == before


def test_a_resumed_mailing_queues_only_the_customers_still_missing(subscribers):
    # given a mailing that reached Alice and Bob, then a new subscriber
    send()
    CustomerFactory(email="erin@example.test")
    # when it is run again
    queued = send()
    # then only the new subscriber is queued
    assert queued == 1
    assert mailing_rows().filter(recipient="erin@example.test").count() == 1


def test_a_mailing_works_in_bounded_batches_and_logs_each(subscribers, caplog):
    # given five subscribers
    for index in range(3):
        CustomerFactory(email=f"more{index}@example.test")
    # when the mailing is sent in batches of two
    with caplog.at_level(logging.INFO, logger="tickets.services"):
        queued = send(batch_size=2)
    # then everyone is reached, progress is logged and audited per batch
    assert queued == 5
    batch_logs = [r.getMessage() for r in caplog.records if " batch " in r.getMessage()]
    assert len(batch_logs) == 3
    assert ActionLog.objects.filter(action="mailing.batch_queued").count() == 3


def test_a_mailing_does_not_open_tickets_or_send_before_commit(subscribers):
    # given a mailing
    # when it is queued
    send()
    # then no ticket was made and every row waits for the worker
    assert not Ticket.objects.exists()
    assert set(mailing_rows().values_list("status", flat=True)) == {"pending"}


def test_a_mailing_to_an_unknown_list_is_refused(subscribers):
    # given a list that does not exist
    # when a mailing is asked for it
    with pytest.raises(ApplicationError):
        send("everyone")
    # then nothing is queued
    assert not mailing_rows().exists()


def test_send_mailing_command_reads_the_body_file_and_queues(subscribers, tmp_path, capsys):
    # given a body file
    body = tmp_path / "body.txt"
    body.write_text("Hello from the command.", encoding="utf-8")
    # when the command runs twice
    args = ["--list", "product_mailings", "--subject", "Hi", "--body-file", str(body)]
    call_command("send_mailing", *args)
    call_command("send_mailing", *args)
    # then the first run queued two emails and the second none
    output = capsys.readouterr().out
    assert "2 emails queued." in output
    assert "0 emails queued." in output
    assert mailing_rows().count() == 2
    assert mailing_rows()[0].context["body"] == "Hello from the command."


def test_send_mailing_command_with_a_new_mailing_id_sends_the_same_text_again(subscribers):
    # given a mailing already sent
    call_command("send_mailing", "--list", "product_mailings", "--subject", "Hi", "--body", "B")
    # when the same text is sent under a new mailing id
    call_command(
        "send_mailing",
        "--list",
        "product_mailings",
        "--subject",
        "Hi",
        "--body",
        "B",
        "--mailing-id",
        "2026-12-hi",
    )
    # then each subscriber has two rows
    assert mailing_rows().count() == 4
    assert mailing_rows().filter(idempotency_key__startswith="mailing:2026-12-hi:").count() == 2


def test_a_customer_who_opts_out_after_queueing_is_not_sent_the_mailing(subscribers):
    # given a mailing queued for Alice and Bob
    send()
    # when Alice opts out before the worker gets to her email
    services.opt_out_apply(
        customer=subscribers["alice"],
        lists=["product_mailings"],
        actor=subscribers["alice"],
        channel="portal",
        source="preferences",
    )
    sent = deliver_outbox()
    # then only Bob's mailing goes out, and Alice's row says why
    assert_only_bob_mailed(sent, failed="alice@example.test", because="opted out")


# --- a frozen account's address is in dispute: no mailing goes to it until the freeze is lifted ---


@pytest.mark.parametrize(
    ("list_name", "member"), [("product_mailings", "alice"), ("reseller_newsletters", "bob")]
)
def test_a_frozen_account_gets_no_mailing_until_the_freeze_is_lifted(
    subscribers, supervisor, list_name, member
):
    # given a subscriber whose account is frozen
    customer = subscribers[member]
    Customer.objects.filter(pk=customer.pk).update(account_status=Customer.AccountStatus.SUSPENDED)

    # when a mailing of that list is sent, then it is not queued for them
    send(list_name)
    assert customer.email not in [row.recipient for row in mailing_rows()]

    # and once a supervisor lifts the freeze, the next mailing reaches them again
    account_unfreeze(
        customer=customer,
        freeze_version=freeze_shown(customer),
        actor=supervisor,
        reason="ID checked by phone",
    )
    send(list_name, subject="Next month's plans")
    assert mailing_rows().filter(recipient=customer.email).count() == 1


def test_a_mailing_queued_before_a_freeze_is_not_sent_to_the_reported_address(
    client, subscribers, supervisor
):
    # given Alice's email changed by a request she did not make, and a mailing queued to it
    ticket = email_change_applied(subscribers["alice"], supervisor)
    token = freeze_token(ticket)
    deliver_outbox()
    send()
    assert mailing_rows().filter(recipient=NEW_EMAIL).exists()

    # when her old address says "this wasn't me" before the worker gets to the mailing
    assert client.post(f"/not-me/{token}/").status_code == 303
    sent = deliver_outbox()

    # then the mailing goes to nobody on her frozen account, and its row says why
    assert_only_bob_mailed(sent, failed=NEW_EMAIL, because="frozen")


def test_a_mailing_queued_before_an_email_change_is_not_sent_to_the_old_address(
    subscribers, supervisor
):
    # given a mailing queued to Alice's address, with her name, number and unsubscribe link
    send()
    # when her email changes (the old mailbox may no longer be hers) before the worker sends it
    email_change_applied(subscribers["alice"], supervisor)
    sent = deliver_outbox()

    # then nothing of the mailing goes to the address no longer on record, and its row says why
    assert_only_bob_mailed(sent, failed="alice@example.test", because="address")
