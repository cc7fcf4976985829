"""The demo data is CONTRACT.md's "Demo data" table, in seed_demo and in the fake OpenSRS alike.

Other programs are written against that table: a drift in either place is a breaking change.
"""

import io
from typing import NamedTuple

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Customer
from accounts.roles import AGENTS, SUPERVISORS
from domains.fake_opensrs import FakeOpenSRS
from domains.models import Domain
from domains.opensrs import OpenSRSClient
from tests.tickets.resend_helpers import API_URL, calls, full_text, send_outbox
from tickets import services
from tickets.models import Notification, Ticket

LOGIN = "/accounts/login/"


class DemoCustomer(NamedTuple):
    full_name: str
    login: tuple[str, str] | None  # email on record and password; None: no portal login
    reseller: bool
    domain: str
    registration_email: str
    bouncing: bool


# CONTRACT.md, "Demo data", row by row.
STAFF = [
    ("agent", "agent-demo-pass", [AGENTS], False),
    ("supervisor", "supervisor-demo-pass", [SUPERVISORS], False),
    ("admin", "admin-demo-pass", None, True),  # the contract names no group for the superuser
]
CUSTOMERS = [
    DemoCustomer(
        "Alice Tan",
        ("alice@example.test", "alice-demo-pass"),
        False,
        "alice-shop.test",
        "alice@example.test",
        False,
    ),
    DemoCustomer(
        "Bob Lim",
        ("bob@example.test", "bob-demo-pass"),
        True,
        "bob-reseller.test",
        "dns-admin@bob-reseller.test",
        False,
    ),
    DemoCustomer("Carol Wong", None, False, "stale-mail.test", "carol@defunct.test", True),
]
BOB_RESELLER = CUSTOMERS[1]


def seed_demo() -> None:
    call_command("seed_demo", force=True, stdout=io.StringIO())


def signs_in(username: str, password: str) -> bool:
    return Client().post(LOGIN, {"username": username, "password": password}).status_code == 302


@pytest.mark.django_db
def test_seed_demo_is_refused_when_debug_is_off(settings):
    # given
    settings.DEBUG = False

    # when, then it loads no known passwords
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not User.objects.exists() and not Customer.objects.exists()


@pytest.mark.django_db
def test_seed_demo_holds_the_contracts_staff_logins():
    # when seeded twice (it is idempotent)
    seed_demo()
    seed_demo()

    # then each staff login signs in with its password, in its group
    for username, password, groups, superuser in STAFF:
        user = User.objects.get(username=username)
        assert signs_in(username, password)
        assert user.is_staff and user.is_superuser is superuser
        if groups is not None:
            assert sorted(user.groups.values_list("name", flat=True)) == groups


@pytest.mark.django_db
@pytest.mark.parametrize("row", CUSTOMERS, ids=lambda row: row.full_name)
def test_seed_demo_holds_the_contracts_customers_and_their_domains(row):
    # when seeded twice (it is idempotent)
    seed_demo()
    seed_demo()

    # then the customer is on record once, with the contract's login, domain and record
    (customer,) = Customer.objects.filter(full_name=row.full_name)
    if row.login is None:
        assert customer.user is None
    else:
        email, password = row.login
        assert customer.email == customer.user.username == email
        assert signs_in(email, password)
    assert customer.is_reseller is row.reseller
    (domain,) = Domain.objects.filter(customer=customer)
    assert domain.name == row.domain
    assert domain.registrant_email == domain.admin_email == row.registration_email
    assert (domain.registrant_email_status == Domain.EmailStatus.BOUNCING) is row.bouncing


def test_the_fake_opensrs_knows_the_demo_domains_with_their_registration_emails():
    # given the fake as `make run` starts it
    with FakeOpenSRS(username="u", key="k") as fake:
        opensrs = OpenSRSClient(fake.url, "u", "k", read_timeout=5, read_retries=0)

        # when its records of the demo domains are read over the API
        names = [row.domain for row in CUSTOMERS]
        contacts = opensrs.get_domains_contacts(names)
        owners = {name: opensrs.get_owner_contact(name).email for name in names}

    # then it knows exactly these, each owner and admin the contract's registration email
    assert set(fake.domains) == set(names)
    for row in CUSTOMERS:
        assert owners[row.domain] == row.registration_email
        assert contacts[row.domain].email("owner") == row.registration_email
        assert contacts[row.domain].email("admin") == row.registration_email


@pytest.mark.django_db
def test_a_resend_for_bob_reseller_from_a_fresh_seed_is_mailed_to_its_registration_email_only(
    fake_opensrs,
):
    # given the demo data, and Bob asking for his domain's password with his email on record
    seed_demo()
    response = APIClient().post(
        API_URL, {"domain": BOB_RESELLER.domain, "contact_email": "bob@example.test"}, format="json"
    )
    assert response.status_code == 202
    ticket = Ticket.objects.get(reference=response.json()["reference"])

    # when the worker does the OpenSRS work and sends the outbox
    assert services.password_resend_process(ticket_id=ticket.pk) == "sent"
    send_outbox()

    # then the fake mailed the reset link, through Django's backend, to dns-admin@ alone
    assert [c["attributes"]["domain_name"] for c in calls(fake_opensrs, "SEND_PASSWORD")] == [
        "bob-reseller.test"
    ]
    (reset,) = fake_opensrs.sent_mail
    assert (reset["contact"], reset["to"]) == ("owner", "dns-admin@bob-reseller.test")
    (reset_mail,) = [m for m in mail.outbox if reset["link"] in full_text(m)]
    assert reset_mail.to == ["dns-admin@bob-reseller.test"]
    assert reset_mail.cc == reset_mail.bcc == []
    # and of our own mail about it, the notice went there too, Bob only the acknowledgement
    sent = {
        (n.template, n.recipient)
        for n in Notification.objects.filter(ticket=ticket, status=Notification.Status.SENT)
    }
    assert sent == {
        ("password_resend_notice", "dns-admin@bob-reseller.test"),
        ("password_resend_received", "bob@example.test"),
    }


@pytest.mark.django_db
def test_seed_demos_line_for_bob_names_his_registration_email():
    # when seeded
    out = io.StringIO()
    call_command("seed_demo", force=True, stdout=out)

    # then Bob's printed line says where a password resend for his domain goes, as the
    # contract's table does
    login, _password = BOB_RESELLER.login
    (line,) = [line for line in out.getvalue().splitlines() if login in line]
    assert f"{BOB_RESELLER.domain}, registration email {BOB_RESELLER.registration_email}" in line
    lines = out.getvalue().splitlines()
    assert line.index("reseller") == lines[1].index(STAFF[0][2][0])  # in the column of roles


@pytest.mark.django_db
def test_seed_demo_forced_with_debug_off_resets_no_existing_login(settings):
    # given the demo logins, whose passwords their owners then changed (a real `admin`)
    settings.DEBUG = False
    seed_demo()
    for username in ["admin", "agent", "alice@example.test", "bob@example.test"]:
        user = User.objects.get(username=username)
        user.set_password(f"{username}-own-passphrase")
        user.save(update_fields=["password"])

    # when seed_demo is forced again with DEBUG=0
    out = io.StringIO()
    call_command("seed_demo", force=True, stdout=out)

    # then no demo password opens them; their own still do, and the output says so
    demo = {"admin": "admin-demo-pass", "agent": "agent-demo-pass"}
    demo |= {"alice@example.test": "alice-demo-pass", "bob@example.test": "bob-demo-pass"}
    for username, password in demo.items():
        assert not signs_in(username, password)
        assert signs_in(username, f"{username}-own-passphrase")
    assert "passwords unchanged" in out.getvalue()
    assert "admin" in out.getvalue().splitlines()[-1]


@pytest.mark.django_db
def test_seed_demo_with_debug_on_still_resets_the_demo_passwords(settings):
    # given the demo data, an agent password changed
    settings.DEBUG = True
    seed_demo()
    agent = User.objects.get(username="agent")
    agent.set_password("agent-own-passphrase")
    agent.save(update_fields=["password"])

    # when seeded again for development (make run)
    seed_demo()

    # then the contract's logins work again
    assert signs_in("agent", "agent-demo-pass")
