"""The Django admin shows customer data but cannot write it, not even for a superuser."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from accounts.models import Customer
from domains.models import Domain
from tests.factories import CustomerFactory, DomainFactory, TicketFactory
from tests.tickets.test_freeze import staff_reply
from tickets import services
from tickets.models import (
    ActionLog,
    Disclosure,
    Message,
    Notification,
    Ticket,
    Verification,
)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        username="root", email="root@example.test", password="root-pass-123"
    )


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def customer(db):
    return CustomerFactory(
        email="owner@example.test",
        full_name="Owner Person",
        card_brand="visa",
        card_last4="4242",
        card_token="tok_secret_processor_value",
    )


def _customer_form(customer, **changes):
    data = {
        "full_name": customer.full_name,
        "email": customer.email,
        "phone": customer.phone,
        "account_status": customer.account_status,
        "language": customer.language,
        "country": customer.country,
    }
    return {**data, **changes}


@pytest.mark.django_db
def test_a_superuser_cannot_change_a_customers_email(admin_client, customer):
    url = f"/admin/accounts/customer/{customer.pk}/change/"

    response = admin_client.post(url, _customer_form(customer, email="attacker@evil.example"))

    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.email == "owner@example.test"


@pytest.mark.django_db
def test_the_customer_page_is_a_read_only_view_without_the_card_token(admin_client, customer):
    response = admin_client.get(f"/admin/accounts/customer/{customer.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "owner@example.test" in page
    assert "Owner Person" in page
    assert "visa" in page and "4242" in page
    assert "tok_secret_processor_value" not in page
    assert 'name="email"' not in page  # no input: the values are shown, not editable
    assert 'name="_save"' not in page


@pytest.mark.django_db
def test_customers_cannot_be_added_or_deleted_in_the_admin(admin_client, customer):
    assert admin_client.get("/admin/accounts/customer/add/").status_code == 403
    added = admin_client.post(
        "/admin/accounts/customer/add/",
        {"full_name": "New", "email": "new@example.test", "account_status": "active"},
    )
    assert added.status_code == 403
    assert not Customer.objects.filter(email="new@example.test").exists()

    url = f"/admin/accounts/customer/{customer.pk}/delete/"
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()


@pytest.mark.django_db
def test_the_bulk_delete_action_is_refused(admin_client, customer):
    response = admin_client.post(
        "/admin/accounts/customer/",
        {"action": "delete_selected", "_selected_action": [customer.pk], "post": "yes"},
    )

    assert response.status_code == 200  # no action is offered, so none is run
    assert Customer.objects.filter(pk=customer.pk).exists()
    listing = admin_client.get("/admin/accounts/customer/").content.decode()
    assert "delete_selected" not in listing


@pytest.mark.django_db
def test_a_superuser_cannot_change_a_domains_registrant_email(admin_client, customer):
    domain = DomainFactory(name="owner-shop.test", customer=customer)
    url = f"/admin/domains/domain/{domain.pk}/change/"

    page = admin_client.get(url)
    response = admin_client.post(
        url,
        {
            "name": domain.name,
            "customer": customer.pk,
            "registrant_email": "attacker@evil.example",
            "registrant_email_status": "valid",
        },
    )

    assert page.status_code == 200
    assert "owner-shop.test" in page.content.decode()
    assert "owner@example.test" in page.content.decode()
    assert response.status_code == 403
    domain.refresh_from_db()
    assert domain.registrant_email == "owner@example.test"
    assert admin_client.get("/admin/domains/domain/add/").status_code == 403
    assert admin_client.post(f"/admin/domains/domain/{domain.pk}/delete/").status_code == 403
    assert Domain.objects.filter(pk=domain.pk).exists()


@pytest.mark.django_db
def test_a_superuser_cannot_change_a_tickets_contact_customer_or_kind(admin_client, customer):
    ticket = TicketFactory(customer=customer, kind=Ticket.Kind.GENERAL)
    other = CustomerFactory(email="someone-else@example.test")
    url = f"/admin/tickets/ticket/{ticket.pk}/change/"

    response = admin_client.post(
        url,
        {
            "kind": Ticket.Kind.MODIFY_INFO,
            "customer": other.pk,
            "contact_email": "attacker@evil.example",
            "subject": ticket.subject,
            "priority": ticket.priority,
            "channel": ticket.channel,
            "language": "en",
            "version": ticket.version,
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
            "messages-TOTAL_FORMS": "0",
            "messages-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert (ticket.kind, ticket.customer_id, ticket.contact_email) == (
        Ticket.Kind.GENERAL,
        customer.pk,
        "owner@example.test",
    )


@pytest.mark.django_db
def test_the_ticket_page_shows_the_ticket_read_only(admin_client, customer):
    ticket = TicketFactory(customer=customer, subject="Please help with my invoice")

    response = admin_client.get(f"/admin/tickets/ticket/{ticket.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert ticket.reference in page
    assert "Please help with my invoice" in page
    assert "owner@example.test" in page
    assert 'name="contact_email"' not in page
    assert admin_client.get("/admin/tickets/ticket/add/").status_code == 403
    assert admin_client.post(f"/admin/tickets/ticket/{ticket.pk}/delete/").status_code == 403
    assert Ticket.objects.filter(pk=ticket.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    [Customer, Domain, Ticket, Verification, Notification, ActionLog, Disclosure],
    ids=lambda m: m.__name__,
)
def test_no_one_gets_add_change_or_delete_on_customer_data(rf, superuser, model):
    request = rf.get("/admin/")
    request.user = superuser
    model_admin = admin.site._registry[model]

    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    for inline in model_admin.get_inline_instances(request):
        assert not inline.has_add_permission(request, None)
        assert not inline.has_change_permission(request)
        assert not inline.has_delete_permission(request)


@pytest.mark.django_db
def test_superusers_still_manage_users_and_groups(admin_client):
    assert admin_client.get("/admin/auth/user/add/").status_code == 200
    assert admin_client.get("/admin/auth/group/add/").status_code == 200

    response = admin_client.post(
        "/admin/auth/user/add/",
        {
            "username": "new-agent",
            "password1": "a-long-enough-pass-42",
            "password2": "a-long-enough-pass-42",
            "usable_password": "true",
        },
    )

    assert response.status_code == 302
    assert get_user_model().objects.filter(username="new-agent").exists()


def _user_form(user, **changes):
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        "user_permissions": [],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


@pytest.mark.django_db
def test_a_role_given_or_taken_in_the_admin_is_on_the_audit_chain(admin_client, superuser):
    # given an agent
    from accounts.roles import AGENTS, SUPERVISORS
    from accounts.services import roles_ensure, staff_user_ensure
    from tickets.audit import audit_verify

    agent = staff_user_ensure(username="agent", password="agent-demo-pass", role=AGENTS)
    supervisors = roles_ensure()[SUPERVISORS]

    # when a superuser makes them a supervisor
    response = admin_client.post(
        f"/admin/auth/user/{agent.pk}/change/",
        _user_form(agent, groups=[str(supervisors.pk)]),
    )

    # then the change is saved and on the chain, naming who did it and what changed
    assert response.status_code == 302
    assert list(agent.groups.values_list("name", flat=True)) == [SUPERVISORS]
    row = ActionLog.objects.get(action="account.user_changed")
    assert row.actor == "staff:root"
    assert row.details == {
        "user": "agent",
        "changes": {"groups": {"from": [AGENTS], "to": [SUPERVISORS]}},
    }
    assert audit_verify().ok


@pytest.mark.django_db
def test_the_admin_cannot_move_a_customers_login_to_another_address(admin_client, customer):
    # given a customer's portal login, which signs in and is reset by the email on record
    login = get_user_model().objects.create_user(
        username=customer.email, email=customer.email, password="owner-pass-123"
    )
    Customer.objects.filter(pk=customer.pk).update(user=login)

    # when a superuser changes its address (a reset link would then go there)
    admin_client.post(
        f"/admin/auth/user/{login.pk}/change/",
        _user_form(login, username="taken@evil.test", email="taken@evil.test"),
    )

    # then the login still follows the record: only a verified change request moves it
    login.refresh_from_db()
    assert (login.username, login.email) == (customer.email, customer.email)


@pytest.mark.django_db
def test_a_user_deleted_in_the_admin_is_on_the_audit_chain(admin_client):
    doomed = get_user_model().objects.create_user(username="old-agent", is_staff=True)

    response = admin_client.post(f"/admin/auth/user/{doomed.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=doomed.pk).exists()
    row = ActionLog.objects.get(action="account.user_deleted")
    assert (row.actor, row.details) == ("staff:root", {"user": "old-agent"})


@pytest.mark.django_db
@pytest.mark.parametrize("bulk", [False, True])
def test_a_staff_login_the_tickets_name_is_not_deleted_to_unname_them(admin_client, agent, bulk):
    # given a ticket assigned to an agent, who replied on it
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    staff_reply(ticket, agent, "Looking into it.")

    # when a superuser deletes the agent's login, on its page or with the list's bulk action
    if bulk:
        response = admin_client.post(
            "/admin/auth/user/",
            {"action": "delete_selected", "_selected_action": [agent.pk], "post": "yes"},
        )
    else:
        response = admin_client.post(f"/admin/auth/user/{agent.pk}/delete/", {"post": "yes"})

    # then it is refused: the ticket keeps its assignee and its reply its author, none of it
    # changed off the audit chain (the login can be deactivated instead)
    assert response.status_code == 403
    assert get_user_model().objects.filter(pk=agent.pk).exists()
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    assert Message.objects.get(ticket=ticket).author_user == agent
    assert not ActionLog.objects.filter(action="account.user_deleted").exists()


@pytest.mark.django_db
def test_a_permission_added_to_a_role_in_the_admin_is_on_the_audit_chain(admin_client):
    from django.contrib.auth.models import Permission

    from accounts.roles import AGENTS
    from accounts.services import roles_ensure

    agents = roles_ensure()[AGENTS]
    approve = Permission.objects.get(codename="approve_sensitive_change")
    granted = [str(pk) for pk in agents.permissions.values_list("pk", flat=True)] + [
        str(approve.pk)
    ]

    response = admin_client.post(
        f"/admin/auth/group/{agents.pk}/change/", {"name": AGENTS, "permissions": granted}
    )

    assert response.status_code == 302
    row = ActionLog.objects.get(action="account.role_changed")
    assert row.actor == "staff:root"
    assert row.details == {
        "group": AGENTS,
        "changes": {
            "permissions": {
                "from": ["tickets.work_ticket"],
                "to": ["tickets.approve_sensitive_change", "tickets.work_ticket"],
            }
        },
    }


@pytest.mark.django_db
def test_the_admin_never_shows_a_live_link_of_an_email_waiting_to_be_sent(admin_client):
    # given a verification email still in the outbox, its single-use link in its row
    from tickets import services

    ticket = TicketFactory(status=Ticket.Status.AWAITING_VERIFICATION)
    services.verification_start(ticket=ticket, send_to=ticket.customer.email)
    row = Notification.objects.get(ticket=ticket, template="verify_request")
    token = row.context["link"].rstrip("/").rsplit("/", 1)[-1]

    # when a superuser opens the row in the admin
    page = admin_client.get(f"/admin/tickets/notification/{row.pk}/change/").content.decode()

    # then they see the row, but not the link that would confirm the request as its owner
    assert row.recipient in page
    assert token not in page


@pytest.mark.django_db
def test_the_admin_never_shows_a_mailings_one_click_unsubscribe_link(admin_client, customer):
    # given a mailing in the outbox: its signed unsubscribe link in its context and headers
    from tickets import services

    services.mailing_send(
        list_name="product_mailings", subject="New plans", body_text="Here.", actor="test"
    )
    row = Notification.objects.get(template="mailing", recipient=customer.email)
    token = row.context["unsubscribe_url"].rstrip("/").rsplit("/", 1)[-1]
    assert token in row.headers["List-Unsubscribe"]

    # when a superuser opens the row in the admin
    page = admin_client.get(f"/admin/tickets/notification/{row.pk}/change/").content.decode()

    # then they see the row and its headers, but not the link that unsubscribes its recipient
    assert row.recipient in page
    assert "List-Unsubscribe-Post" in page and "mailto:" in page
    assert token not in page
