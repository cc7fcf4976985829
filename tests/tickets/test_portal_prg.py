"""POST-redirect-GET: every portal form answers a success with 303 to a result page, so
reloading that page shows it again and sends nothing."""

import pytest
from django.conf import settings

from tickets import services
from tickets.models import Notification, Ticket

pytestmark = pytest.mark.django_db


FORMS = [
    ("/requests/new/", {"subject": "Hi", "message": "Hello", "email": "x@y.test"}),
    ("/requests/password/", {"domain": "alice-shop.test", "contact_email": "x@y.test"}),
    ("/requests/modify/", {"email_on_record": "alice@example.test", "city": "Ipoh"}),
    ("/requests/opt-out/", {"email": "alice@example.test", "lists": ["product_mailings"]}),
]


@pytest.mark.parametrize(("url", "data"), FORMS)
def test_a_reloaded_result_page_sends_nothing_again(client, alice, fake_opensrs, url, data):
    # when the form is sent
    response = client.post(url, data)
    # then the answer is a redirect to its result page
    assert response.status_code == 303
    assert response["Location"] == f"{url}done/"
    ticket = Ticket.objects.get()
    outbox = Notification.objects.count()
    # when the result page is loaded, and reloaded
    pages = [client.get(response["Location"]) for _ in range(2)]
    # then it shows the reference each time, and nothing more was made or sent
    assert [page.status_code for page in pages] == [200, 200]
    assert all(ticket.reference in page.content.decode() for page in pages)
    assert Ticket.objects.count() == 1
    assert Notification.objects.count() == outbox


def test_the_unsubscribe_button_redirects_too(client, alice):
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")

    response = client.post(f"/unsubscribe/{token}/")

    assert (response.status_code, response["Location"]) == (303, "/unsubscribe/done/")
    assert "no longer receive" in client.get("/unsubscribe/done/").content.decode()


def test_a_one_click_post_from_a_mail_provider_gets_its_answer_directly(client, alice):
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")

    response = client.post(f"/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200


@pytest.mark.parametrize("url", ["/requests/new/done/", "/verify/done/", "/unsubscribe/done/"])
def test_a_result_page_without_a_result_in_the_session_leads_home(client, url):
    response = client.get(url)

    assert (response.status_code, response["Location"]) == (302, "/")


def test_a_form_with_errors_is_answered_directly_not_redirected(client):
    response = client.post("/requests/new/", {"subject": "", "message": ""})

    assert response.status_code == 400
    assert not Ticket.objects.exists()


def test_the_password_result_page_links_the_registrar_sign_in(client, alice, fake_opensrs):
    # when a password resend is asked for
    response = client.post("/requests/password/", {"domain": "alice-shop.test"})

    # then the result page's sign-in address is a link, not text to copy
    page = client.get(response["Location"]).content.decode()
    manage = settings.OPENSRS_MANAGE_URL
    assert f'<a href="{manage}" rel="nofollow">{manage}</a>' in page
