"""The Django admin shows customer data but cannot write it, not even for a superuser."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from accounts.models import Customer
from domains.models import Domain
from tests.factories import CustomerFactory, DomainFactory, TicketFactory
from tickets.models import ActionLog, Disclosure, Notification, Ticket, Verification


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
