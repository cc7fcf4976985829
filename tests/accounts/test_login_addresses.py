"""A login's address is its customer's alone: no other login may hold a customer's email.

An admin could give a staff login (or a new login) the email of a customer on record, in any
case or Unicode spelling: a password reset for that address then mailed the customer a link
for the staff login, and a sign-in by the address could reach an account its owner never
made. Every path that makes or changes a login passes `login_addresses_check`.
"""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import Customer
from accounts.roles import AGENTS
from accounts.services import customer_ensure, staff_user_ensure
from helpdesk.exceptions import ApplicationError
from tests.factories import CustomerFactory
from tests.tickets.test_staff import confirmed_email_change
from tickets import services
from tickets.models import ActionLog, Notification
from tickets.services.login_password_reset import password_reset_resolve
from tickets.services.modify_approval import MODIFY_EMAIL_TAKEN

User = get_user_model()
pytestmark = pytest.mark.django_db

# Alice's address as typed otherwise: case, a full-width letter in the domain (which IDNA
# maps to the same domain, so mail to it reaches her).
VARIANTS = ["alice@example.test", "Alice@Example.TEST", "alice@\uff45xample.test"]


@pytest.fixture
def admin_client(client, db):
    root = User.objects.create_superuser(
        username="root", email="root@ops.test", password="root-pass-123"
    )
    client.force_login(root)
    return client


def change_form(user):
    return {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "is_staff": "on" if user.is_staff else "",
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }


@pytest.mark.parametrize("address", VARIANTS)
def test_the_admin_cannot_give_a_staff_login_a_customers_email(admin_client, alice, agent, address):
    # when a superuser gives the agent's login Alice's address, however spelt
    response = admin_client.post(
        f"/admin/auth/user/{agent.pk}/change/", {**change_form(agent), "email": address}
    )

    # then the form refuses it on the email field and nothing is saved
    assert response.status_code == 200
    assert alice.number in str(response.context["adminform"].form.errors["email"])
    agent.refresh_from_db()
    assert agent.email == ""
    # so a password reset for Alice's address mails her own login's link only
    assert password_reset_resolve(email="alice@example.test") == 1
    assert list(Notification.objects.values_list("context__username", flat=True)) == [
        "alice@example.test"
    ]


@pytest.mark.parametrize("address", ["Alice@Example.test", "alice@\uff45xample.test"])
def test_the_admin_cannot_add_a_login_named_after_a_customers_address(admin_client, alice, address):
    # Django's own form refuses a name its login has in another case or width already
    response = admin_client.post(
        "/admin/auth/user/add/",
        {"username": address, "usable_password": "false"},
    )

    assert response.status_code == 200
    assert "username" in response.context["adminform"].form.errors
    assert User.objects.count() == 2  # root and Alice's own


def test_the_admin_cannot_add_a_login_for_a_customer_who_has_none(admin_client):
    # Carol is on record with no portal login: a login named after her address is not hers
    carol = CustomerFactory(email="carol@defunct.test")

    response = admin_client.post(
        "/admin/auth/user/add/", {"username": "carol@defunct.test", "usable_password": "false"}
    )

    assert response.status_code == 200
    assert carol.number in str(response.context["adminform"].form.errors["username"])
    assert not User.objects.filter(username="carol@defunct.test").exists()


def test_the_admin_cannot_give_two_logins_one_address(admin_client, agent, supervisor):
    agent.email = "team@exabytes.example"
    agent.save(update_fields=["email"])

    response = admin_client.post(
        f"/admin/auth/user/{supervisor.pk}/change/",
        {**change_form(supervisor), "email": "Team@exabytes.example"},
    )

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    supervisor.refresh_from_db()
    assert supervisor.email == ""


def test_a_staff_login_keeps_an_address_of_its_own(admin_client, agent):
    response = admin_client.post(
        f"/admin/auth/user/{agent.pk}/change/",
        {**change_form(agent), "email": "agent@exabytes.example"},
    )

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.email == "agent@exabytes.example"
    assert ActionLog.objects.filter(action="account.user_changed").exists()


def test_a_customers_own_login_keeps_its_address(admin_client, alice):
    user = alice.user
    response = admin_client.post(
        f"/admin/auth/user/{user.pk}/change/", {**change_form(user), "first_name": "Alice"}
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.first_name, user.email) == ("Alice", "alice@example.test")


def test_a_staff_login_named_after_a_customers_address_is_refused_by_the_service(alice):
    # a command or the demo data making a staff login with Alice's address as its name
    with pytest.raises(ValidationError) as refused:
        staff_user_ensure(username="alice@example.test", password="x-pass-12345", role=AGENTS)

    assert "username" in refused.value.message_dict
    user = User.objects.get(username="alice@example.test")
    assert (user.is_staff, user.pk) == (False, alice.user_id)  # Alice's login untouched
    assert user.check_password("alice-demo-pass")


def test_a_customer_whose_address_a_staff_login_holds_gets_no_login_of_it(agent):
    # given a staff login named after an address
    agent.username = "dan@example.test"
    agent.save(update_fields=["username"])

    # when a customer with that address is made with a portal login
    with pytest.raises(ValidationError) as refused:
        customer_ensure(email="Dan@example.test", full_name="Dan Lee", password="dan-pass-123")

    # then it is refused: the staff login is not taken over, and no customer is half-made
    assert "email" in refused.value.message_dict
    agent.refresh_from_db()
    assert agent.is_staff and agent.check_password("agent-demo-pass")
    assert not Customer.objects.exists()


@pytest.mark.parametrize("address", VARIANTS[1:])
def test_a_second_customer_with_the_same_address_in_another_spelling_is_the_same(alice, address):
    customer = customer_ensure(email=address, full_name="Someone Else", password="other-pass-1")

    assert customer.pk == alice.pk
    assert Customer.objects.count() == 1
    assert User.objects.count() == 1
    alice.user.refresh_from_db()
    assert alice.user.username == "alice@example.test"


def test_createsuperuser_refuses_a_customers_address(alice):
    with pytest.raises(CommandError, match=alice.number):
        call_command(
            "createsuperuser",
            "--noinput",
            username="root2",
            email="ALICE@example.test",
            stdout=StringIO(),
        )
    assert not User.objects.filter(username="root2").exists()

    with pytest.raises(CommandError, match=alice.number):
        call_command(
            "createsuperuser",
            "--noinput",
            username="Alice@Example.test",
            email="root2@ops.test",
            stdout=StringIO(),
        )
    assert not User.objects.filter(
        username__iexact="alice@example.test", is_superuser=True
    ).exists()


def test_createsuperuser_still_makes_a_superuser_of_its_own_address(db):
    call_command(
        "createsuperuser", "--noinput", username="root2", email="root2@ops.test", stdout=StringIO()
    )

    assert User.objects.get(username="root2").is_superuser


def test_an_email_change_to_an_address_a_staff_login_holds_is_not_applied(
    alice, supervisor, agent, settings
):
    # given a staff login whose email is the address Alice confirmed as her new one
    agent.email = "Alice.New@example.net"
    agent.save(update_fields=["email"])
    ticket = confirmed_email_change(alice, settings)

    # when a supervisor approves it
    with pytest.raises(ApplicationError) as refused:
        services.ticket_approve(ticket=ticket, actor=supervisor, expected_version=ticket.version)

    # then it is refused, and Alice's record and login keep the old address
    assert refused.value.message == MODIFY_EMAIL_TAKEN
    alice.refresh_from_db()
    alice.user.refresh_from_db()
    assert (alice.email, alice.user.username) == ("alice@example.test", "alice@example.test")


def test_a_reset_for_a_customers_address_mails_only_their_own_login(alice, agent):
    # given a staff login that was given Alice's address before the rule (straight in the table)
    User.objects.filter(pk=agent.pk).update(email="Alice@Example.test")

    # when a password reset for her address is looked up
    mailed = password_reset_resolve(email="alice@example.test")

    # then only her own login's link is mailed to her, not the staff login's
    assert mailed == 1
    assert list(Notification.objects.values_list("context__username", flat=True)) == [
        "alice@example.test"
    ]


# --- logins made before the rule ---


def shared_listing() -> list[str]:
    out = StringIO()
    call_command("login_addresses_shared", stdout=out)
    return out.getvalue().splitlines()


def test_logins_sharing_an_address_from_before_the_rule_are_listed(alice, agent, bob):
    # given two logins made straight in the database, around the rule: one in another case and
    # width of a third's address, one holding Alice's email on record (not her login)
    User.objects.create(username="ops1", email="ops@Helpdesk.test")
    User.objects.create(username="ops2", email="OPS@helpdesk.test")
    User.objects.create(username="OPS@\uff48elpdesk.test", email="")
    User.objects.filter(pk=agent.pk).update(email=VARIANTS[1])

    # when an administrator asks
    listed = shared_listing()

    # then each shared address is named once, with every login holding it, and nothing else
    assert listed == [
        f"alice@example.test (email on record of customer {alice.number}): "
        f"logins {alice.user.username}, agent",
        "ops@helpdesk.test: logins ops1, ops2, OPS@\uff48elpdesk.test",
        "2 addresses held against the rule.",
    ]


def test_a_customers_own_login_holding_her_address_twice_is_not_listed(alice, bob, agent):
    # given customers whose logins hold their own emails (as username and as email)
    # then nothing is listed
    assert shared_listing() == ["No login shares an address."]


@pytest.mark.parametrize(
    "address", ['"alice@example.test,"@evil.example', "agent@[192.0.2.1]", "agent%evil.test@x.test"]
)
def test_the_admin_cannot_give_a_login_an_address_another_program_reads_otherwise(
    admin_client, agent, address
):
    # when a superuser gives the agent's login an address Django's EmailValidator takes
    response = admin_client.post(
        f"/admin/auth/user/{agent.pk}/change/", {**change_form(agent), "email": address}
    )

    # then the form refuses it on the email field by the one rule, and nothing is saved
    assert response.status_code == 200
    assert "no quotes, spaces, comments" in str(response.context["adminform"].form.errors["email"])
    agent.refresh_from_db()
    assert agent.email == ""
