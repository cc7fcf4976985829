"""Portal accounts: login, throttling, logout, password reset through the outbox, language."""

import contextlib
import re
import threading

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Customer
from accounts.services import customer_language_set
from tests.threads import run_at_once
from tests.tickets.verification_helpers import password_reset_lookups
from tickets import services
from tickets.models import ActionLog, Notification
from tickets.services import login_password_reset

LOGIN = "/accounts/login/"
RESET = "/accounts/password-reset/"


def _login(client, username, password, ip="10.1.1.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_login_page_has_labelled_fields(client):
    body = client.get(LOGIN).content.decode()

    assert '<label for="id_username">' in body
    assert '<label for="id_password">' in body
    assert "csrfmiddlewaretoken" in body


@pytest.mark.django_db
def test_a_customer_lands_on_my_tickets_with_a_new_session(client, alice):
    client.get(LOGIN)
    before = client.session.session_key

    response = _login(client, "alice@example.test", "alice-demo-pass")

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:my-tickets")
    assert client.session[SESSION_KEY] == str(alice.user.pk)
    assert client.session.session_key != before


@pytest.mark.django_db
def test_staff_land_on_the_staff_queue(client, agent):
    response = _login(client, "agent", "agent-demo-pass")

    assert response.status_code == 302
    assert response["Location"] == "/staff/"


@pytest.mark.django_db
def test_a_safe_next_page_is_honoured(client, alice):
    response = client.post(
        LOGIN,
        {"username": "alice@example.test", "password": "alice-demo-pass", "next": "/requests/new/"},
    )

    assert response["Location"] == "/requests/new/"


@pytest.mark.django_db
def test_a_wrong_password_keeps_the_username_and_shows_the_error(client, alice):
    response = _login(client, "alice@example.test", "wrong")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="alice@example.test"' in body
    assert "errorlist" in body
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_login_is_throttled_per_client_address(client, alice, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_client": (3, 300),
        "login_failures_per_username": (3, 300),
    }
    for n in range(3):
        assert _login(client, f"guess{n}@example.test", "wrong").status_code == 200

    # when the same address tries again, even with the right password
    response = _login(client, "alice@example.test", "alice-demo-pass")

    # then it is refused with a clear message and no session
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many login attempts" in response.content.decode()
    assert 'value="alice@example.test"' in response.content.decode()
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_login_is_throttled_per_username_across_addresses(client, alice, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_client": (3, 300),
        "login_failures_per_username_all_clients": (3, 300),
    }
    for n in range(3):
        _login(client, "alice@example.test", "wrong", ip=f"10.2.0.{n}")

    response = _login(client, "ALICE@example.test", "alice-demo-pass", ip="10.9.9.9")

    assert response.status_code == 429
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_logout_needs_a_post(alice_client):
    assert alice_client.get("/accounts/logout/").status_code == 405
    assert SESSION_KEY in alice_client.session

    response = alice_client.post("/accounts/logout/")

    assert response.status_code == 302
    assert SESSION_KEY not in alice_client.session


@pytest.mark.django_db
def test_password_reset_links_use_site_url_even_with_a_forged_host(client, alice, settings):
    # given a request whose Host header an attacker chose
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]

    # when the reset is asked for
    response = client.post(RESET, {"email": "alice@example.test"}, HTTP_HOST="evil.example")

    # then nothing is sent in the request: the outbox holds the email
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []
    [lookup] = Notification.objects.all()  # not even the lookup of the address
    assert lookup.template == "password_reset_lookup"
    password_reset_lookups()
    notification = Notification.objects.get(template="password_reset")
    assert notification.recipient == "alice@example.test"

    # and once the worker sends it, both parts link to SITE_URL only
    services.notification_send(notification_id=notification.pk)
    [message] = mail.outbox
    html = message.alternatives[0][0]
    for part in (message.body, html):
        assert "https://help.exabytes.example/accounts/password-reset/" in part
        assert "evil.example" not in part
    assert "support@exabytes.example" in message.body
    assert ActionLog.objects.filter(action="account.password_reset_mailed").exists()


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_looks_the_same(client, alice):
    known = client.post(RESET, {"email": "alice@example.test"})
    after_known = list(Notification.objects.values_list("template", flat=True))
    unknown = client.post(RESET, {"email": "nobody@example.test"})
    after_both = list(Notification.objects.values_list("template", flat=True))

    # the same answer, and the same work: one lookup row each, nothing sent yet
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert after_known == ["password_reset_lookup"]
    assert after_both == ["password_reset_lookup"] * 2
    assert password_reset_lookups() == ["sent", "sent"]
    assert Notification.objects.filter(template="password_reset").count() == 1


@pytest.mark.django_db
def test_password_reset_link_sets_a_new_password(client, alice):
    client.post(RESET, {"email": "alice@example.test"})
    password_reset_lookups()
    notification = Notification.objects.get(template="password_reset")
    path = re.sub(r"^https://[^/]+", "", notification.context["link"])

    form_page = client.get(path, follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-pass-42", "new_password2": "a-brand-new-pass-42"},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_complete")
    client.logout()
    assert _login(client, "alice@example.test", "a-brand-new-pass-42").status_code == 302


@pytest.mark.django_db
def test_a_malformed_address_on_the_reset_form_is_a_400_with_a_message(client):
    response = client.post(RESET, {"email": "not-an-address"})

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert not Notification.objects.filter(template="password_reset_lookup").exists()


@pytest.mark.django_db
def test_a_used_reset_link_and_a_bad_new_password_are_4xx_with_a_message(client, alice):
    # given a reset link, used once
    client.post(RESET, {"email": "alice@example.test"})
    password_reset_lookups()
    link = Notification.objects.get(template="password_reset").context["link"]
    path = re.sub(r"^https://[^/]+", "", link)
    form_url = client.get(path, follow=True).redirect_chain[-1][0]

    # when the new password is refused, then chosen, and the link is opened again
    mismatch = client.post(form_url, {"new_password1": "a-new-pass-42", "new_password2": "other"})
    chosen = client.post(
        form_url, {"new_password1": "a-brand-new-pass-42", "new_password2": "a-brand-new-pass-42"}
    )
    again = Client().get(path, follow=True)

    # then the refusal is a 400 on the form, and the spent link a 404 saying so
    assert mismatch.status_code == 400
    assert "password fields didn" in mismatch.content.decode()
    assert chosen.status_code == 302
    assert again.status_code == 404
    assert "This link is not valid" in again.content.decode()


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_password_resets_past_the_per_address_limit_are_coalesced_not_refused(
    client, alice, settings
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_email": (2, 3600)}

    statuses = [client.post(RESET, {"email": "alice@example.test"}).status_code for _ in range(3)]
    password_reset_lookups()

    # no 429 names the address; the third request mails no third link
    assert statuses == [302, 302, 302]
    assert Notification.objects.filter(template="password_reset").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_reset_lookups_at_once_never_mail_past_the_per_address_limit(
    alice, settings, monkeypatch
):
    # given room for one more reset link to Alice this hour, and two requests not yet looked up
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_email": (1, 3600)}
    for _ in range(2):
        Client().post(RESET, {"email": "alice@example.test"})
    lookups = Notification.objects.filter(template="password_reset_lookup").order_by("pk")
    # each worker, once it has counted the links already mailed (its next step makes the link),
    # waits a moment for the other to have counted too: both count before either mails, unless
    # they queue
    counted = threading.Barrier(2, timeout=2)
    link = login_password_reset.site_url

    def wait_then_link(*args, **kwargs):
        # Broken when the other worker waits on a lock instead: the intended order.
        with contextlib.suppress(threading.BrokenBarrierError):
            counted.wait()
        return link(*args, **kwargs)

    monkeypatch.setattr(login_password_reset, "site_url", wait_then_link)

    def look_up(pk: int) -> None:
        services.notification_send(notification_id=pk)

    # when two workers look them up at the same moment
    run_at_once(look_up, [(pk,) for pk in lookups.values_list("pk", flat=True)])

    # then both are done and only one link was mailed
    assert set(lookups.values_list("status", flat=True)) == {"sent"}
    assert Notification.objects.filter(template="password_reset").count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_password_reset_is_still_limited_per_client(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}

    responses = [client.post(RESET, {"email": f"n{i}@example.test"}) for i in range(3)]

    assert [r.status_code for r in responses] == [302, 302, 429]
    assert int(responses[-1]["Retry-After"]) > 0


@pytest.mark.django_db
def test_password_reset_mail_is_in_the_customers_language(client, alice):
    customer_language_set(customer=alice, language="ms")

    client.post(RESET, {"email": "alice@example.test"})
    password_reset_lookups()

    notification = Notification.objects.get(template="password_reset")
    assert notification.language == "ms"
    services.notification_send(notification_id=notification.pk)
    assert "kata laluan" in mail.outbox[0].body.lower()


@pytest.mark.django_db
def test_customer_language_set_records_the_change_once(alice):
    customer_language_set(customer=alice, language="ms")
    customer_language_set(customer=alice, language="ms")

    alice.refresh_from_db()
    assert alice.language == Customer.Language.MALAY
    assert ActionLog.objects.filter(action="customer.language_changed").count() == 1


@pytest.mark.django_db
def test_a_customer_logging_in_gets_their_saved_language(client, alice):
    customer_language_set(customer=alice, language="ms")

    _login(client, "alice@example.test", "alice-demo-pass")

    assert client.cookies["django_language"].value == "ms"
