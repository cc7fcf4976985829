"""Satisfaction: the resolution email's "Did this solve it?" links, the answer, the dashboard."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Notification, Satisfaction, Ticket, Verification
from tickets.redaction import REDACTED
from tickets.selectors.satisfaction import satisfaction_figures

pytestmark = pytest.mark.django_db

K = Ticket.Kind
LINKS = re.compile(r"https://help\.exabytes\.example(/satisfaction/[A-Za-z0-9_-]+/(yes|no)/)")


def _resolve(ticket: Ticket, actor="system") -> dict[str, str]:
    """Resolve `ticket`, send the email; the answer -> path of each satisfaction link in it."""
    services.ticket_resolve(ticket=ticket, actor=actor, note="Your DNS is fixed.")
    for pk in Notification.objects.filter(status="pending").values_list("pk", flat=True):
        services.notification_send(notification_id=pk)
    message = mail.outbox[-1]
    return {answer: path for path, answer in LINKS.findall(message.body)}


@pytest.fixture
def ticket(agent):
    return TicketFactory(contact_email="dan@example.test", customer=None, assignee=agent)


def _audits(ticket: Ticket) -> list[ActionLog]:
    return list(
        ActionLog.objects.filter(ticket=ticket, action__startswith="satisfaction.").order_by("id")
    )


def test_the_resolution_email_carries_both_links_from_site_url(ticket):
    links = _resolve(ticket)

    [message] = mail.outbox
    assert message.to == ["dan@example.test"]
    assert "Did this solve it?" in message.body
    assert set(links) == {"yes", "no"}
    html = message.alternatives[0][0]
    for path in links.values():
        assert f'href="https://help.exabytes.example{path}"' in html
    link = Verification.objects.get(ticket=ticket, purpose="satisfaction")
    assert link.sent_to == "dan@example.test"
    assert link.expires_at > timezone.now() + timedelta(days=29)
    # the token itself is kept only as a hash, neither in the outbox nor the audit log
    token = links["yes"].split("/")[2]
    assert token not in str(Notification.objects.get(template="ticket_resolved").context)
    assert not ActionLog.objects.filter(details__icontains=token).exists()


def test_following_a_link_shows_a_confirm_button_and_records_nothing(client, ticket):
    links = _resolve(ticket)

    response = client.get(links["yes"])

    page = response.content.decode()
    assert response.status_code == 200
    assert ticket.reference in page
    assert re.search(r'<input[^>]*value="yes"[^>]*checked', page)  # the link's answer, chosen
    assert "Send my answer" in page
    assert not Satisfaction.objects.exists()
    assert _audits(ticket) == []


def test_posting_records_the_answer_and_comment_and_audits_it(client, ticket, agent):
    links = _resolve(ticket)

    response = client.post(links["no"], {"answer": "no", "comment": "Still down for me."})

    assert response.status_code == 302
    answer = Satisfaction.objects.get(ticket=ticket)
    assert (answer.answer, answer.comment, answer.agent) == ("no", "Still down for me.", agent)
    [row] = _audits(ticket)
    assert row.action == "satisfaction.recorded"
    assert row.actor == "satisfaction-link:dan@example.test"
    assert row.details["answer"] == "no"
    page = client.get(response["Location"]).content.decode()
    assert "Your answer: no, it is not solved." in page
    assert "Change my answer" in page


def test_a_card_number_in_a_comment_is_never_stored(client, ticket):
    links = _resolve(ticket)

    client.post(links["no"], {"answer": "no", "comment": "You charged 4111 1111 1111 1111 twice"})
    client.post(links["yes"], {"answer": "yes", "comment": "Refunded to 4111-1111-1111-1111."})

    answer = Satisfaction.objects.get(ticket=ticket)
    assert answer.answer == "yes"
    assert answer.comment == f"Refunded to {REDACTED}."


def test_a_second_post_changes_the_answer_and_is_audited(client, ticket):
    links = _resolve(ticket)
    client.post(links["no"], {"answer": "no"})

    client.post(links["yes"], {"answer": "yes", "comment": "Works after the cache cleared."})

    assert Satisfaction.objects.count() == 1
    assert Satisfaction.objects.get(ticket=ticket).answer == "yes"
    _recorded, changed = _audits(ticket)
    assert changed.action == "satisfaction.changed"
    assert (changed.details["from"], changed.details["to"]) == ("no", "yes")


def test_the_same_answer_again_changes_nothing_and_audits_nothing_more(client, ticket):
    links = _resolve(ticket)
    client.post(links["yes"], {"answer": "yes"})
    client.post(links["yes"], {"answer": "yes"})
    assert len(_audits(ticket)) == 1


def test_an_answer_of_a_ticket_is_only_ever_recorded_on_that_ticket(client, ticket, agent):
    other = TicketFactory(contact_email="eve@example.test", customer=None)
    links = _resolve(ticket)
    _resolve(other)

    client.post(links["yes"], {"answer": "yes"})

    assert list(Satisfaction.objects.values_list("ticket_id", flat=True)) == [ticket.pk]


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_or_unknown_token_is_a_404_with_a_message(client, ticket, method):
    links = _resolve(ticket)
    token = links["yes"].split("/")[2]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    for bad in (tampered, "x", "not-a-token-at-all-but-long-enough"):
        response = getattr(client, method)(f"/satisfaction/{bad}/yes/", {"answer": "yes"})
        assert response.status_code == 404
        assert "We do not know this link" in response.content.decode()
    assert not Satisfaction.objects.exists()


def test_a_link_of_another_kind_for_the_ticket_is_refused(client, ticket):
    # the status link of the same ticket is no satisfaction link, and the other way round
    services.ticket_resolve(ticket=ticket, actor="system")
    for pk in Notification.objects.filter(status="pending").values_list("pk", flat=True):
        services.notification_send(notification_id=pk)
    [message] = mail.outbox
    status_token = re.search(r"/track/([A-Za-z0-9_-]+)/", message.body).group(1)
    satisfaction_token = LINKS.search(message.body).group(1).split("/")[2]

    response = client.post(f"/satisfaction/{status_token}/yes/", {"answer": "yes"})
    assert response.status_code == 404
    assert client.get(f"/track/{satisfaction_token}/").status_code == 404
    assert client.post(f"/verify/{satisfaction_token}/").status_code >= 400
    assert not Satisfaction.objects.exists()
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.RESOLVED


def test_an_expired_link_is_a_410_that_says_so(client, ticket):
    links = _resolve(ticket)

    with time_machine.travel(timezone.now() + timedelta(days=31)):
        shown = client.get(links["yes"])
        posted = client.post(links["yes"], {"answer": "yes"})

    for response in (shown, posted):
        assert response.status_code == 410
        assert "This link has expired" in response.content.decode()
    assert not Satisfaction.objects.exists()


def test_a_link_of_a_ticket_reopened_since_is_refused_with_a_page_saying_why(client, ticket, agent):
    # given the resolution's links, then the ticket reopened (the resolution taken back)
    links = _resolve(ticket)
    services.ticket_reopen(ticket=Ticket.objects.get(pk=ticket.pk), actor=agent)

    # when the requester follows one and posts an answer
    shown = client.get(links["no"])
    posted = client.post(links["no"], {"answer": "no", "comment": "Still broken"})

    # then both say the request is open again, and nothing is recorded
    for response in (shown, posted):
        assert response.status_code == 409
        assert "open again" in response.content.decode()
        assert 'name="answer"' not in response.content.decode()
    assert not Satisfaction.objects.exists()
    assert not _audits(ticket)


def test_a_link_rates_only_the_resolution_it_was_mailed_for(client, ticket, agent):
    # given the first resolution's links, then the ticket reopened and resolved again
    first = _resolve(ticket)
    services.ticket_reopen(ticket=Ticket.objects.get(pk=ticket.pk), actor=agent)
    assert client.post(first["yes"], {"answer": "yes"}).status_code == 409
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        second = _resolve(Ticket.objects.get(pk=ticket.pk), actor=agent)

    # when the requester follows and posts the first email's link
    shown = client.get(first["yes"])
    posted = client.post(first["yes"], {"answer": "yes"})

    # then both say it was for an earlier resolution, as "open again" does, and record nothing
    for response in (shown, posted):
        assert response.status_code == 409
        assert "earlier resolution" in response.content.decode()
        assert 'name="answer"' not in response.content.decode()
    assert not Satisfaction.objects.exists()
    # and the latest email's link rates the latest resolution
    assert client.post(second["no"], {"answer": "no"}).status_code == 302
    assert Satisfaction.objects.get().answer == "no"


def test_an_answer_other_than_yes_or_no_is_a_400(client, ticket):
    links = _resolve(ticket)
    response = client.post(links["yes"], {"answer": "maybe"})
    assert response.status_code == 400
    assert not Satisfaction.objects.exists()


def test_a_resolution_without_a_contact_address_issues_no_link():
    ticket = TicketFactory(contact_email="", customer=None)
    services.ticket_resolve(ticket=ticket, actor="system")
    assert not Verification.objects.filter(purpose="satisfaction").exists()


# --- the dashboard -------------------------------------------------------------------------


def _answer(kind: str, agent, answer: str) -> None:
    ticket = TicketFactory(kind=kind, status=Ticket.Status.RESOLVED)
    Satisfaction.objects.create(
        ticket=ticket, answer=answer, agent=agent, answered_at=timezone.now()
    )


def test_the_figures_give_the_share_of_yes_and_the_count_by_kind_and_agent(agent, supervisor):
    _answer(K.GENERAL, agent, "yes")
    _answer(K.GENERAL, agent, "no")
    _answer(K.GENERAL, supervisor, "yes")
    _answer(K.OPT_OUT, agent, "yes")
    _answer(K.OPT_OUT, None, "no")
    old = TicketFactory(kind=K.GENERAL)
    Satisfaction.objects.create(
        ticket=old, answer="no", agent=agent, answered_at=timezone.now() - timedelta(days=40)
    )

    figures = satisfaction_figures(since=timezone.now() - timedelta(days=30))

    by_kind = {r["label"]: (r["share"], r["count"]) for r in figures["by_kind"]}
    assert by_kind == {K.GENERAL.label: (67, 3), K.OPT_OUT.label: (50, 2)}
    by_agent = {r["label"]: (r["share"], r["count"]) for r in figures["by_agent"]}
    assert by_agent == {"agent": (67, 3), "supervisor": (100, 1), "": (0, 1)}
    assert (figures["share"], figures["count"]) == (60, 5)


@pytest.mark.parametrize("answers", [2, 30])
def test_the_figures_take_one_query_whatever_the_answers(
    answers, agent, supervisor, django_assert_num_queries
):
    for i in range(answers):
        _answer([K.GENERAL, K.OPT_OUT][i % 2], [agent, supervisor][i % 2], "yes")
    with django_assert_num_queries(1):
        satisfaction_figures(since=timezone.now() - timedelta(days=30))


def test_the_dashboard_shows_the_figures(agent_client, agent):
    _answer(K.GENERAL, agent, "yes")
    _answer(K.GENERAL, agent, "no")

    page = agent_client.get("/staff/dashboard/").content.decode()

    assert 'id="satisfaction-share">50%' in page
    by_agent = page.split('id="satisfaction-by-agent"')[1].split("</table>")[0]
    assert '<th scope="row">agent</th><td>50%</td><td>2</td>' in by_agent
