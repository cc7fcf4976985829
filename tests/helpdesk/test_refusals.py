"""Every HTML page that shows a service's refusal answers with its status; a 429 says when."""

import pytest

from helpdesk.ratelimit import RATE_LIMITED
from tests.factories import TicketFactory
from tickets.models import Ticket
from tickets.services import ticket_actions

S = Ticket.Status
TOKEN = "x" * 43

# Every portal form a limiter guards, with input the form itself accepts.
LIMITED_POSTS = {
    "general help": ("/requests/new/", {"subject": "Hi", "message": "hello", "email": "a@b.test"}),
    "password resend": ("/requests/password/", {"domain": "alice-shop.test"}),
    "modify": ("/requests/modify/", {"email_on_record": "a@b.test", "city": "Ipoh"}),
    "opt-out": ("/requests/opt-out/", {"email": "a@b.test", "lists": ["product_mailings"]}),
    "verify link": (f"/verify/{TOKEN}/", {}),
    "not-me link": (f"/not-me/{TOKEN}/", {}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(LIMITED_POSTS))
@pytest.mark.usefixtures("rate_window_start")
def test_a_portal_form_refused_by_the_limiter_answers_429_with_retry_after(client, settings, name):
    # given: every limit a portal form meets is already used up
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        **dict.fromkeys(("request_per_client", "verify_per_client"), (0, 600)),
    }
    path, data = LIMITED_POSTS[name]

    # when
    response = client.post(path, data)

    # then
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 600
    assert RATE_LIMITED.split(".")[0] in response.content.decode()


@pytest.mark.django_db
def test_a_refused_staff_action_shows_the_reason_with_the_services_status(agent_client):
    # given: a closed ticket cannot be resolved
    ticket = TicketFactory(status=S.CLOSED)

    # when
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/resolve/", {"version": ticket.version}
    )

    # then
    assert response.status_code == 409
    assert "cannot be moved to Resolved" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("status", list(S))
def test_the_staff_page_offers_exactly_the_moves_the_state_machine_allows(agent_client, status):
    # given
    ticket = TicketFactory(status=status)
    actions = ticket_actions(ticket)

    # when
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()

    # then: a button is shown only for an allowed move ...
    for action in ("resolve", "reject", "reopen", "close"):
        shown = f"/staff/tickets/{ticket.reference}/{action}/" in page
        assert shown == getattr(actions, action), action
    # ... and the service accepts closing exactly when the page offers it
    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/close/", {"version": ticket.version}
    )
    ticket.refresh_from_db()
    assert response.status_code == (302 if actions.close else 409)
    assert (ticket.status == S.CLOSED) == (actions.close or status == S.CLOSED)


@pytest.mark.django_db
@pytest.mark.parametrize("status", list(S))
def test_the_portal_offers_close_and_reply_as_the_staff_page_does(client, alice, status):
    # given
    ticket = TicketFactory(status=status, customer=alice, contact_email=alice.email)
    client.force_login(alice.user)
    actions = ticket_actions(ticket)

    # when
    page = client.get(f"/my/tickets/{ticket.reference}/").content.decode()

    # then
    assert (f"/my/tickets/{ticket.reference}/close/" in page) == actions.close
    assert (f"/my/tickets/{ticket.reference}/reply/" in page) == actions.reply
