"""The daily warning about dead or out-of-date registration addresses, and its one-click link."""

import io
import re
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Customer
from accounts.services import customer_ensure
from domains.models import Domain, RegistrationWarning
from tests.markers import postgresql_only
from tests.tickets.verification_helpers import deliver_outbox, html_part
from tickets.models import ActionLog, Message, Notification, Ticket
from tickets.selectors import registration
from tickets.selectors.registration import registration_problems
from tickets.services import outbox
from tickets.services.freeze import ACCOUNT_FROZEN
from tickets.services.lifecycle import ACCOUNT_CLOSED
from tickets.services.registration_warnings import (
    REGISTRATION_FIX_INVALID,
    registration_fix_request,
    registration_fix_url,
    registration_warnings_sweep,
)


@pytest.fixture
def carol(db):
    carol = customer_ensure(email="carol@example.test", full_name="Carol Wong", country="MY")
    Domain.objects.create(
        name="stale-mail.test",
        customer=carol,
        registrant_email="carol@defunct.test",
        registrant_email_status=Domain.EmailStatus.BOUNCING,
    )
    return carol


@pytest.fixture
def alice_in_step(alice_shop):
    """Alice's domain is registered to her email on record, but for the letter case."""
    alice_shop.registrant_email = "Alice@Example.test"
    alice_shop.save(update_fields=["registrant_email"])
    return alice_shop


def warnings_to(address):
    return list(Notification.objects.filter(template="registration_warning", recipient=address))


def fix_link(message) -> str:
    return re.search(r"https?://\S+/requests/registration/[^/\s]+/", message.body).group()


@pytest.mark.django_db
def test_the_sweep_tells_a_customer_once_about_a_bouncing_address_and_not_again_within_90_days(
    carol, alice_in_step
):
    # given
    start = timezone.now()

    # when the sweep runs daily for 89 days
    for day in range(89):
        with time_machine.travel(start + timedelta(days=day), tick=False):
            registration_warnings_sweep()

    # then Carol was told once, Alice (record in step, case aside) never
    assert len(warnings_to("carol@example.test")) == 1
    assert warnings_to("alice@example.test") == []
    (sent,) = deliver_outbox()
    assert sent.to == ["carol@example.test"]
    for part in (sent.body, html_part(sent)):
        assert "stale-mail.test" in part and "carol@defunct.test" in part
        assert "bounce" in part
        assert "https://help.exabytes.example/requests/registration/" in part
    # and in the HTML part the OpenSRS addresses are links, not text to copy
    html = html_part(sent)
    assert f'<a href="{settings.OPENSRS_MANAGE_URL}"' in html
    assert f'<a href="{settings.OPENSRS_DIRECT_REQUEST_URL}"' in html
    assert ActionLog.objects.filter(action="registration.warned", customer=carol).count() == 1


@pytest.mark.django_db
def test_a_second_notice_comes_after_90_days_and_never_a_third(carol):
    start = timezone.now()
    for day in (0, 90, 91, 180, 400):
        with time_machine.travel(start + timedelta(days=day, minutes=1), tick=False):
            registration_warnings_sweep()

    assert len(warnings_to("carol@example.test")) == 2
    warning = RegistrationWarning.objects.get()
    assert (warning.notices, warning.reason) == (2, RegistrationWarning.Reason.BOUNCING)


@pytest.mark.django_db
def test_an_address_that_differs_from_the_email_on_record_is_mentioned_too(bob):
    Domain.objects.create(
        name="bob-reseller.test", customer=bob, registrant_email="bob@old-isp.test"
    )

    registration_warnings_sweep()

    (warning,) = warnings_to("bob@example.test")
    assert warning.context["domains"][0]["bouncing"] is False
    assert warning.context["domains"][0]["at_domain"] is False
    (sent,) = deliver_outbox()
    for part in (sent.body, html_part(sent)):
        assert "not your email address with us, so we cannot tell whether it reaches you" in part
        assert "domain itself" not in part
        assert "Ask us to change it to bob@example.test" in part


@pytest.mark.django_db
def test_a_role_address_at_the_domain_itself_is_mentioned_once_saying_why(bob):
    # given Bob, a reseller, registered bob-reseller.test to a role address at that domain
    Domain.objects.create(
        name="bob-reseller.test", customer=bob, registrant_email="dns-admin@bob-reseller.test"
    )

    # when the sweep runs on two days
    registration_warnings_sweep()
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        registration_warnings_sweep()

    # then he is told once, not that the address fails him, but why it may
    (warning,) = warnings_to("bob@example.test")
    assert warning.context["domains"][0]["at_domain"] is True
    (sent,) = deliver_outbox()
    for part in (sent.body, html_part(sent)):
        assert "dns-admin@bob-reseller.test" in part
        assert "an address at the domain itself, not your email address with us" in part
        assert "once the domain expires or its email stops working" in part
        assert "will not reach you" not in part and "bounce" not in part


@pytest.mark.parametrize(
    ("address", "at_domain"),
    [
        ("dns-admin@bob-reseller.test", True),
        ("DNS@Mail.Bob-Reseller.TEST", True),  # a subdomain, in any case
        ("bob@example.test", False),
        ("dns@notbob-reseller.test", False),  # ends with the name, but another domain
        ("dns@bob-reseller.test.example", False),
        ("", False),
    ],
)
def test_an_address_is_at_the_domain_when_its_host_is_the_domain_or_under_it(address, at_domain):
    domain = Domain(name="bob-reseller.test", registrant_email=address)

    assert domain.registrant_email_at_domain is at_domain


@pytest.mark.django_db
def test_the_notice_is_in_the_customers_language(carol):
    carol.language = "ms"
    carol.save(update_fields=["language"])

    registration_warnings_sweep()

    assert warnings_to("carol@example.test")[0].language == "ms"


@pytest.mark.django_db
def test_the_one_click_link_logs_one_request_for_staff(carol, client):
    # given
    registration_warnings_sweep()
    (sent,) = deliver_outbox()
    link = fix_link(sent).replace("https://help.exabytes.example", "")

    # when a mail scanner fetches the link, then Carol presses the button twice
    page = client.get(link)
    first = client.post(link)
    second = client.post(link, follow=True)

    # then one ticket, for Carol, with the steps for staff
    assert page.status_code == 200 and "stale-mail.test" in page.content.decode()
    assert first.status_code == 303
    assert second.status_code == 200
    (ticket,) = Ticket.objects.filter(customer=carol)
    assert ticket.subject == "Update the registration email of stale-mail.test"
    assert ticket.contact_email == "carol@example.test"
    assert ticket.reference in second.content.decode()
    note = Message.objects.get(ticket=ticket, internal=True)
    assert "direct request" in note.body and "carol@defunct.test" in note.body


@pytest.mark.django_db
def test_the_one_click_links_note_says_when_the_address_is_at_the_domain_itself(bob, carol, client):
    # given Bob's domain registered to a role address at that domain, and Carol's bouncing one
    Domain.objects.create(
        name="bob-reseller.test", customer=bob, registrant_email="dns-admin@bob-reseller.test"
    )
    registration_warnings_sweep()

    # when each presses the link of their notice
    for sent in deliver_outbox():
        client.post(fix_link(sent).replace("https://help.exabytes.example", ""))

    # then the note staff read on Bob's request says why his address is a risk, as his notice
    # did, and Carol's, at another domain, does not
    bobs = Message.objects.get(ticket__customer=bob, internal=True).body
    assert "dns-admin@bob-reseller.test (not the email on record; an address at the domain" in bobs
    assert "once the domain expires or its mail stops working" in bobs
    carols = Message.objects.get(ticket__customer=carol, internal=True).body
    assert "carol@defunct.test (our mail to it bounces)" in carols
    assert "domain itself" not in carols


def test_a_sent_warning_keeps_no_working_one_click_link_in_its_row(carol, client):
    # given a warning the worker sent, whose one-click link asks for a change in Carol's name
    registration_warnings_sweep()
    (sent,) = deliver_outbox()
    link = fix_link(sent)

    # when someone reads its outbox row (the database, the admin's page of it)
    row = Notification.objects.get(template="registration_warning")
    stored, shown = str(row.context), str(outbox.notification_shown(row))

    # then the link is in neither, while what the email said of the domain is kept
    assert link not in stored and "/requests/registration/" not in stored
    assert "/requests/registration/" not in shown
    assert "stale-mail.test" in stored


@pytest.mark.django_db
def test_a_forged_or_outdated_link_is_refused(carol, client):
    registration_warnings_sweep()
    (sent,) = deliver_outbox()
    link = fix_link(sent).replace("https://help.exabytes.example", "")
    forged = link[:-3] + "xx/"

    assert client.post(forged).status_code == 400
    # the record changed since the notice: the old link no longer acts
    Domain.objects.filter(name="stale-mail.test").update(registrant_email="carol@alive.test")
    response = client.post(link)
    assert response.status_code == 400
    assert REGISTRATION_FIX_INVALID[:20] in response.content.decode()
    assert not Ticket.objects.filter(customer=carol).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (Customer.AccountStatus.SUSPENDED, ACCOUNT_FROZEN),
        (Customer.AccountStatus.CLOSED, ACCOUNT_CLOSED),
    ],
)
def test_the_one_click_link_of_a_locked_out_account_asks_for_no_change(
    carol, client, status, refusal
):
    # given Carol's link, mailed before her account was frozen or closed
    registration_warnings_sweep()
    (sent,) = deliver_outbox()
    link = fix_link(sent).replace("https://help.exabytes.example", "")
    Customer.objects.filter(pk=carol.pk).update(account_status=status)
    logged = ActionLog.objects.count()

    # when the button is pressed
    response = client.post(link)

    # then it is refused as every change to a locked-out account is, saying which, and
    # nothing is asked of staff
    assert response.status_code == 409
    assert refusal[:40] in response.content.decode()
    assert not Ticket.objects.filter(customer=carol).exists()
    assert ActionLog.objects.count() == logged


@pytest.mark.django_db
def test_staff_see_the_problems_by_customer_on_the_dashboard(
    carol, bob, alice_in_step, agent_client
):
    Domain.objects.create(name="bob-reseller.test", customer=bob, registrant_email="x@other.test")

    page = agent_client.get("/staff/dashboard/").content.decode()

    assert "Registration emails to fix" in page
    assert "Carol Wong" in page and "stale-mail.test" in page and "carol@defunct.test" in page
    assert "Bob Lim" in page and "bob-reseller.test" in page
    assert "alice-shop.test" not in page


@pytest.mark.django_db
def test_the_dashboard_lists_the_first_problems_by_customer_with_the_total(carol, bob):
    # given 3 of Bob's domains and Carol's bouncing one
    for n in range(3):
        Domain.objects.create(name=f"bob-{n}.test", customer=bob, registrant_email="x@other.test")

    # when the panel shows 2 domains
    problems = registration_problems(limit=2)
    everything = registration_problems()

    # then by customer name, the domains of each together, and the total of all
    def shown(found):
        return [(c["full_name"], [d["name"] for d in c["domains"]]) for c in found["customers"]]

    assert problems["total"] == everything["total"] == 4
    assert shown(problems) == [("Bob Lim", ["bob-0.test", "bob-1.test"])]
    assert shown(everything) == [
        ("Bob Lim", ["bob-0.test", "bob-1.test", "bob-2.test"]),
        ("Carol Wong", ["stale-mail.test"]),
    ]
    assert [d["bouncing"] for c in everything["customers"] for d in c["domains"]] == [
        False,
        False,
        False,
        True,
    ]


@pytest.mark.django_db
def test_the_dashboards_problems_are_kept_a_while_in_the_cache(carol, agent_client, monkeypatch):
    monkeypatch.setattr(registration, "REGISTRATION_PROBLEMS_CACHE_SECONDS", 1)  # not a minute

    def problem_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            agent_client.get("/staff/dashboard/")
        return len([q for q in captured.captured_queries if "domains_domain" in q["sql"]])

    # given the panel read by one dashboard
    assert problem_queries() == 1

    # when a domain is added and the dashboard shown again at once, then after the time kept
    Domain.objects.create(name="late.test", customer=carol, registrant_email="c@other.test")
    again = problem_queries()
    within = agent_client.get("/staff/dashboard/").content.decode()
    time.sleep(1.2)  # Redis expires the key in real time
    after = agent_client.get("/staff/dashboard/").content.decode()

    # then it comes from the cache at first, and the new domain shows after that time
    assert again == 0
    assert "stale-mail.test" in within and "late.test" not in within
    assert "late.test" in after


@pytest.mark.django_db
def test_the_dashboards_problems_are_read_when_the_cache_is_down(
    carol, agent_client, cache_unreachable
):
    # given a cache that cannot be reached (the fixture)

    # when
    response = agent_client.get("/staff/dashboard/")

    # then the panel is read from the database
    assert response.status_code == 200
    assert "Carol Wong" in response.content.decode()
    assert "stale-mail.test" in response.content.decode()


@pytest.mark.django_db
def test_the_demo_data_tells_carol_and_bob_once_each_and_alice_nothing():
    from django.core.management import call_command

    call_command("seed_demo", force=True, stdout=io.StringIO())
    call_command("seed_demo", force=True, stdout=io.StringIO())

    (carols,) = warnings_to("carol@example.test")
    assert [(row["domain"], row["bouncing"]) for row in carols.context["domains"]] == [
        ("stale-mail.test", True)
    ]
    (bobs,) = warnings_to("bob@example.test")
    assert [
        (row["domain"], row["address"], row["bouncing"], row["at_domain"])
        for row in bobs.context["domains"]
    ] == [("bob-reseller.test", "dns-admin@bob-reseller.test", False, True)]
    assert warnings_to("alice@example.test") == []
    assert Notification.objects.filter(template="registration_warning").count() == 2


@postgresql_only("two requests at once, each in its own connection")
@pytest.mark.django_db(transaction=True)
def test_two_presses_of_the_one_click_link_at_once_log_one_request(carol):
    # given Carol's link, pressed twice at the same moment (a double click, a retried POST)
    token = registration_fix_url(domain=Domain.objects.get(name="stale-mail.test")).rsplit("/", 2)[
        -2
    ]
    barrier = threading.Barrier(2)
    references: list[str] = []

    def press() -> None:
        close_old_connections()
        try:
            barrier.wait()
            references.append(
                registration_fix_request(token=token, client_key="10.0.0.7").reference
            )
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then both presses answer with the one request logged
    assert len(references) == 2 and references[0] == references[1]
    assert Ticket.objects.filter(customer=carol).count() == 1


@pytest.mark.django_db
def test_the_link_no_longer_acts_once_the_email_on_record_changed(carol, client):
    # given Carol's link, mailed to her email on record then
    registration_warnings_sweep()
    (sent,) = deliver_outbox()
    link = fix_link(sent).replace("https://help.exabytes.example", "")
    # when her email on record changes (the old mailbox may no longer be hers) and the link in
    # that old mailbox is pressed
    Customer.objects.filter(pk=carol.pk).update(email="carol.new@example.test")
    response = client.post(link)

    # then it asks nothing in her name, as every link to the old address
    assert response.status_code == 400
    assert REGISTRATION_FIX_INVALID[:20] in response.content.decode()
    assert not Ticket.objects.filter(customer=carol).exists()


@pytest.mark.django_db
def test_a_link_for_a_domain_since_moved_to_another_customer_asks_nothing_of_them(
    carol, bob, client
):
    # given Carol's link for her domain, which then moves to Bob (a transfer, an import)
    registration_warnings_sweep()
    (sent,) = deliver_outbox()
    link = fix_link(sent).replace("https://help.exabytes.example", "")
    Domain.objects.filter(name="stale-mail.test").update(customer=bob)

    # when Carol (or whoever has her mailbox) presses it
    response = client.post(link)

    # then no request is made in Bob's name
    assert response.status_code == 400
    assert not Ticket.objects.filter(customer=bob).exists()
