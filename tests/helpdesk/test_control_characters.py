"""Text staff pages show refuses control characters whichever path writes it.

A change request's values were checked; a customer created by a service, a command or the
demo data, and names typed in the admin, were not: `Ali\u202eecila` reads as "Aliceila"
reversed on a staff page, so one customer or agent can pass for another.
"""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Customer
from accounts.roles import AGENTS
from accounts.services import customer_ensure, staff_user_ensure
from helpdesk.validators import INVALID_CHARACTERS
from tickets.models import Ticket
from tickets.services.lifecycle import ticket_create

# A right-to-left override, an isolate, a line separator, a byte-order mark, a C0 control.
HIDDEN = ["\u202e", "\u2067", "\u2028", "\ufeff", "\x1b"]
CUSTOMER_TEXT = {
    "full_name": "Ali{}ecila",
    "phone": "+6031234{}5678",
    "address_line1": "1 Jalan{} Test",
    "address_line2": "Block {}B",
    "city": "Kuala{} Lumpur",
    "state": "Selangor{}",
    "postcode": "50{}000",
    "country": "M{}",
}


@pytest.fixture
def admin_client(client, db):
    root = get_user_model().objects.create_superuser(
        username="root", email="root@example.test", password="root-pass-123"
    )
    client.force_login(root)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("char", HIDDEN)
@pytest.mark.parametrize("field", sorted(CUSTOMER_TEXT))
def test_a_customer_created_by_the_service_refuses_a_hidden_character(field, char):
    # given the service every command and the demo data create customers with
    fields = {field: CUSTOMER_TEXT[field].format(char)}
    full_name = fields.pop("full_name", "Alice Tan")

    # when a value holds a character that hides or reverses text
    with pytest.raises(ValidationError) as refused:
        customer_ensure(email="alice@example.test", full_name=full_name, **fields)

    # then it is refused, naming the field, and nothing is stored
    assert refused.value.message_dict[field] == [INVALID_CHARACTERS]
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_a_customer_email_with_an_override_is_refused():
    with pytest.raises(ValidationError) as refused:
        customer_ensure(email="alice@exa\u202emple.test", full_name="Alice Tan")

    assert "email" in refused.value.message_dict
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_names_in_any_script_with_their_joiners_are_still_accepted():
    # Persian and Tamil need the zero-width (non-)joiners that stay allowed
    name = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u0b95\u0bcd\u200d"
    customer = customer_ensure(email="mina@example.test", full_name=name, city="Ipoh")

    assert customer.full_name == name


@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_an_agents_name_with_an_override_is_refused_in_the_admin(admin_client, field):
    # given an agent, whose name staff pages and replies show
    agent = staff_user_ensure(username="agent", password="agent-demo-pass", role=AGENTS)
    form = {
        "username": agent.username,
        "email": agent.email,
        "first_name": "Ali",
        "last_name": "Tan",
        "is_active": "on",
        "is_staff": "on",
        "groups": [str(pk) for pk in agent.groups.values_list("pk", flat=True)],
        "date_joined_0": agent.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": agent.date_joined.strftime("%H:%M:%S"),
    }

    # when a superuser gives them a name that reads backwards
    response = admin_client.post(
        f"/admin/auth/user/{agent.pk}/change/", {**form, field: "Ali\u202eecila"}
    )

    # then the form says why and nothing is saved
    assert response.status_code == 200
    assert INVALID_CHARACTERS in response.content.decode()
    agent.refresh_from_db()
    assert (agent.first_name, agent.last_name) == ("", "")
    # while a plain name is saved
    assert admin_client.post(f"/admin/auth/user/{agent.pk}/change/", form).status_code == 302


def test_a_role_named_with_an_override_is_refused_in_the_admin(admin_client):
    # when a superuser adds a role whose name reads backwards
    response = admin_client.post("/admin/auth/group/add/", {"name": "Agents\u202esrepus"})

    # then it is refused and no such role exists
    assert response.status_code == 200
    assert INVALID_CHARACTERS in response.content.decode()
    assert not Group.objects.filter(name="Agents\u202esrepus").exists()


# --- a ticket's subject, which the staff queue lists ---


@pytest.mark.django_db
def test_a_general_request_whose_subject_reads_backwards_is_refused_on_its_field(client):
    # when someone asks for help with a subject holding a right-to-left override
    response = client.post(
        "/requests/new/",
        {"subject": "Refund for Ali\u202eecila", "message": "Hello", "email": "x@example.test"},
    )

    # then the form says why, on the subject, and no ticket is made
    assert response.status_code == 400
    assert response.context["form"].errors["subject"] == [INVALID_CHARACTERS]
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_every_path_that_opens_a_ticket_refuses_a_subject_that_reads_backwards():
    # when a flow opens a ticket with such a subject (the one service every flow opens through)
    with pytest.raises(ValidationError) as refused, transaction.atomic():
        ticket_create(kind=Ticket.Kind.GENERAL, subject="Ali\u202eecila", actor="system")

    # then
    assert refused.value.message_dict["subject"] == [INVALID_CHARACTERS]
    assert not Ticket.objects.exists()
