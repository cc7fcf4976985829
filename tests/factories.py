from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory
from knox.crypto import hash_token

from accounts.models import ApiToken, Customer
from domains.models import Domain
from tickets import services
from tickets.models import SLA_PAUSED_STATUSES, Message, Ticket


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    full_name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"customer{n}@example.test")
    phone = "+60312345678"
    address_line1 = "1 Jalan Test"
    city = "Kuala Lumpur"
    postcode = "50000"
    country = "MY"


class DomainFactory(DjangoModelFactory):
    class Meta:
        model = Domain

    name = factory.Sequence(lambda n: f"domain{n}.test")
    customer = factory.SubFactory(CustomerFactory)
    registrant_email = factory.LazyAttribute(lambda o: o.customer.email if o.customer else "")
    registrant_email_status = Domain.EmailStatus.VALID


class TicketFactory(DjangoModelFactory):
    class Meta:
        model = Ticket

    kind = Ticket.Kind.GENERAL
    subject = factory.Faker("sentence", nb_words=5)
    customer = factory.SubFactory(CustomerFactory)
    contact_email = factory.LazyAttribute(
        lambda o: o.customer.email if o.customer else "x@example.test"
    )
    status = Ticket.Status.OPEN
    # A modify ticket is only ever open once its owner is verified: say how, e.g. "session".
    verified_by = ""
    verified_at = factory.LazyAttribute(lambda o: timezone.now() if o.verified_by else None)
    # A ticket waiting on someone else has its SLA clock stopped, as ticket_move does.
    sla_paused_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.status in SLA_PAUSED_STATUSES else None
    )


def staff_reply(ticket: Ticket, agent, body: str, *, internal: bool = False) -> Message:
    """A reply (an internal note when `internal`) as the staff page sends it, via the service."""
    return services.ticket_reply_add(
        ticket=ticket,
        body=body,
        actor=agent,
        author=Message.Author.STAFF,
        channel=Ticket.Channel.STAFF,
        author_user=agent,
        internal=internal,
    )


def api_key_for(user, *, days: int = 1, name: str = "test") -> str:
    """A working API token's key for `user`, made without the service (no limit, no audit)."""
    _token, key = ApiToken.objects.create(user=user, expiry=timedelta(days=days), name=name)
    return key


def api_token_stored(key: str):
    """The ApiToken row a key belongs to (looked up by its digest), or None."""
    return ApiToken.objects.filter(digest=hash_token(key)).first()


def freeze_shown(customer: Customer) -> int:
    """The freeze a supervisor opening the customer's page now sees (its freeze_version)."""
    return Customer.objects.values_list("freeze_version", flat=True).get(pk=customer.pk)
