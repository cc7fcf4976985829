import pytest
from django.core.cache import cache

from domains.models import Domain
from domains.opensrs import OpenSRSTransientError, client_from_settings, opensrs_throttle
from domains.services import ContactsRefreshRetry, domain_contacts_refresh, domain_ensure
from domains.tasks import contacts_refresh
from tests.tickets.resend_helpers import calls
from tickets.models import ActionLog


@pytest.fixture
def many_domains(fake_opensrs, bob):
    """120 of Bob's domains, at OpenSRS and in our cache (with an outdated address)."""
    rows = []
    for i in range(120):
        name = f"bob-{i:03}.test"
        fake_opensrs.add_domain(name, "bob@example.test", admin_email=f"admin{i}@bob.test")
        rows.append(
            Domain(
                name=name, customer=bob, registrant_email="old@bob.test", admin_email="old@bob.test"
            )
        )
    Domain.objects.bulk_create(rows)
    return Domain.objects.filter(name__startswith="bob-")


def test_contacts_are_read_in_batches_and_stored_with_when(settings, fake_opensrs, many_domains):
    # given
    settings.OPENSRS_CONTACTS_BATCH = 50

    # when
    result = domain_contacts_refresh()

    # then
    reads = calls(fake_opensrs, "GET_DOMAINS_CONTACTS")
    assert len(reads) == 3
    assert (result.read, result.changed, result.calls) == (120, 120, 3)
    domain = Domain.objects.get(name="bob-007.test")
    assert (domain.registrant_email, domain.admin_email) == ("bob@example.test", "admin7@bob.test")
    assert domain.registrant_change == "active"
    assert domain.synced_at is not None
    assert ActionLog.objects.filter(action="domain.contacts_changed").count() == 120


def test_a_second_refresh_changes_nothing_and_audits_nothing(settings, fake_opensrs, many_domains):
    settings.OPENSRS_CONTACTS_BATCH = 100
    domain_contacts_refresh()
    before = ActionLog.objects.count()

    result = domain_contacts_refresh()

    assert (result.read, result.changed) == (120, 0)
    assert ActionLog.objects.count() == before


def test_a_changed_owner_address_is_no_longer_known_to_bounce(fake_opensrs, db):
    stale = domain_ensure(
        name="stale-mail.test", customer=None, registrant_email="carol@defunct.test", bouncing=True
    )
    domain_contacts_refresh()
    stale.refresh_from_db()
    assert stale.registrant_email_status == Domain.EmailStatus.BOUNCING  # same dead address

    fake_opensrs.add_domain("stale-mail.test", "carol@alive.test")
    domain_contacts_refresh()

    stale.refresh_from_db()
    assert stale.registrant_email == "carol@alive.test"
    assert stale.registrant_email_status == "unknown"


def test_a_domain_outside_the_account_is_counted_and_left_alone(fake_opensrs, db):
    fake_opensrs.add_domain("gone.test", "x@gone.test", in_account=False)
    gone = domain_ensure(name="gone.test", customer=None, registrant_email="x@gone.test")

    result = domain_contacts_refresh()

    assert result.not_in_account == 1
    gone.refresh_from_db()
    assert gone.admin_email == "x@gone.test"


def test_a_run_stops_after_its_batches_and_says_where_to_go_on(
    settings, fake_opensrs, many_domains
):
    settings.OPENSRS_CONTACTS_BATCH = 50

    first = domain_contacts_refresh(max_batches=2)
    rest = domain_contacts_refresh(after_pk=first.next_after_pk)

    assert (first.read, rest.read, rest.next_after_pk) == (100, 20, None)


def test_opensrs_down_raises_a_retry_from_the_batch_it_stopped_at(
    settings, fake_opensrs, many_domains
):
    # given: the first batch reads, then OpenSRS answers 500 to everything
    settings.OPENSRS_READ_RETRIES = 1
    settings.OPENSRS_CONTACTS_BATCH = 100
    first = domain_contacts_refresh(max_batches=1)
    fake_opensrs.set_fault("http500")

    # when
    with pytest.raises(ContactsRefreshRetry) as caught:
        domain_contacts_refresh(after_pk=first.next_after_pk)

    # then: both tries of the batch were made, with back-off, and nothing was skipped
    assert caught.value.after_pk == first.next_after_pk
    assert [c.get("fault") for c in calls(fake_opensrs, "GET_DOMAINS_CONTACTS")[1:]] == [
        "http500",
        "http500",
    ]


def test_the_task_queues_the_next_run_until_every_domain_is_read(
    settings, fake_opensrs, many_domains, monkeypatch
):
    # given: the task runs in line, 1 batch per run
    settings.OPENSRS_CONTACTS_BATCH = 50
    settings.OPENSRS_CONTACTS_BATCHES_PER_TASK = 1
    queued = []
    monkeypatch.setattr(contacts_refresh, "apply_async", lambda kwargs: queued.append(kwargs))

    # when
    contacts_refresh.run(after_pk=0)
    while queued:
        contacts_refresh.run(**queued.pop())

    # then
    assert len(calls(fake_opensrs, "GET_DOMAINS_CONTACTS")) == 3
    assert not Domain.objects.filter(name__startswith="bob-", admin_email="old@bob.test").exists()


def test_the_throttle_never_lets_more_calls_than_the_limit_into_a_minute(
    settings, fake_opensrs, many_domains
):
    # given: 2 calls a minute, no waiting
    settings.OPENSRS_MAX_CALLS_PER_MINUTE = 2
    settings.OPENSRS_THROTTLE_MAX_WAIT = 0
    settings.OPENSRS_READ_RETRIES = 0
    settings.OPENSRS_CONTACTS_BATCH = 50

    # when
    with pytest.raises(ContactsRefreshRetry) as caught:
        domain_contacts_refresh()

    # then: the third call was not sent at all
    assert len(calls(fake_opensrs, "GET_DOMAINS_CONTACTS")) == 2
    assert "call limit" in str(caught.value)
    assert Domain.objects.filter(name__startswith="bob-", admin_email="old@bob.test").count() == 20


def test_the_throttle_waits_for_a_slot_when_it_may(settings, monkeypatch):
    settings.OPENSRS_MAX_CALLS_PER_MINUTE = 1
    settings.OPENSRS_THROTTLE_MAX_WAIT = 120
    slept: list[float] = []
    monkeypatch.setattr("domains.opensrs.time.sleep", slept.append)

    opensrs_throttle()
    opensrs_throttle()

    assert len(slept) == 1
    assert 60 < slept[0] <= 61


def test_the_throttle_is_shared_through_the_cache(settings, fake_opensrs):
    settings.OPENSRS_READ_RETRIES = 0
    settings.OPENSRS_MAX_CALLS_PER_MINUTE = 1
    settings.OPENSRS_THROTTLE_MAX_WAIT = 0
    opensrs_throttle()

    with pytest.raises(OpenSRSTransientError):
        client_from_settings().get_domains_contacts(["alice-shop.test"])
    assert calls(fake_opensrs, "GET_DOMAINS_CONTACTS") == []
    cache.clear()  # a new minute for everyone
    assert client_from_settings().get_domains_contacts(["alice-shop.test"])["alice-shop.test"]


def test_a_resend_queues_a_refresh_of_its_domain(
    fake_opensrs, alice, django_capture_on_commit_callbacks, monkeypatch
):
    # given
    from tickets import services

    domain = domain_ensure(name="alice-shop.test", customer=alice, registrant_email="a@old.test")
    queued: list[dict] = []
    monkeypatch.setattr(contacts_refresh, "delay", lambda **kwargs: queued.append(kwargs))
    with django_capture_on_commit_callbacks():
        ticket = services.request_password_resend(
            domain="alice-shop.test", client_key="t", actor="anonymous", channel="portal"
        )

    # when
    with django_capture_on_commit_callbacks(execute=True):
        assert services.password_resend_process(ticket_id=ticket.pk) == "sent"

    # then
    assert queued == [{"domain_ids": [domain.pk]}]
    contacts_refresh.run(**queued[0])
    domain.refresh_from_db()
    assert domain.admin_email == "alice@example.test"
