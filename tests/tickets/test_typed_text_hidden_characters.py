"""Text one person types and another reads refuses characters that hide or reverse text.

The disclosure register, a satisfaction comment and an API token's name had no such check:
"Royal Malaysia Police\u202e" or a comment holding an override reads otherwise on a
supervisor's page, in the customer's export or the admin than it was written.
"""

import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.models import ApiToken
from accounts.services import api_token_issue
from helpdesk.validators import INVALID_CHARACTERS
from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Disclosure, Notification, Satisfaction, SavedView
from tickets.services.disclosure import disclosure_record

pytestmark = pytest.mark.django_db

# A right-to-left override, an isolate, a paragraph separator, a byte-order mark, a C0 control.
HIDDEN = ["\u202e", "\u2067", "\u2029", "\ufeff", "\x1b"]
DISCLOSURE = {
    "disclosed_to": "Royal Malaysia Police",
    "information": "Name and address on record.\nPhone number.",
    "legal_basis": "Court order 12/2026",
    "reference": "KL-2026-77",
}


@pytest.mark.parametrize("char", HIDDEN)
@pytest.mark.parametrize("field", sorted(DISCLOSURE))
def test_a_disclosure_with_a_hidden_character_is_refused_naming_the_field(
    supervisor, alice, field, char
):
    # when any path records a disclosure whose field holds a character that hides text
    typed = {**DISCLOSURE, field: DISCLOSURE[field][:5] + char + DISCLOSURE[field][5:]}
    with pytest.raises(ValidationError) as refused:
        disclosure_record(customer=alice, actor=supervisor, **typed)

    # then it is refused on that field, and nothing is recorded or audited
    assert refused.value.message_dict == {field: [INVALID_CHARACTERS]}
    assert not Disclosure.objects.exists()
    assert not ActionLog.objects.filter(action="disclosure.recorded").exists()


def test_the_disclosure_page_shows_the_refusal_on_its_field(supervisor_client, alice):
    response = supervisor_client.post(
        f"/staff/customers/{alice.number}/disclosures/new/",
        {**DISCLOSURE, "disclosed_to": "Royal Malaysia \u202eecilop"},
    )

    assert response.status_code == 400
    assert response.context["form"].errors["disclosed_to"] == [INVALID_CHARACTERS]
    assert not Disclosure.objects.exists()


def test_a_disclosure_keeps_its_lines_tabs_and_joiners(supervisor, alice):
    information = "Name:\tMina\nPersian name: \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"

    disclosure = disclosure_record(
        customer=alice, actor=supervisor, **{**DISCLOSURE, "information": information}
    )

    assert disclosure.information == information


def test_a_saved_view_name_with_an_override_is_refused_by_the_model(agent):
    # the service refuses it already; the model does too, for any other path
    view = SavedView(owner=agent, name="Mine\u202eenim", query="")

    with pytest.raises(ValidationError) as refused:
        view.full_clean()

    assert refused.value.message_dict["name"] == [INVALID_CHARACTERS]


LINKS = re.compile(r"(/satisfaction/[A-Za-z0-9_-]+/(yes|no)/)")


def test_a_satisfaction_comment_with_an_override_is_refused_on_its_field(client, agent):
    # given a resolved ticket whose email carries the satisfaction links
    ticket = TicketFactory(contact_email="dan@example.test", customer=None, assignee=agent)
    services.ticket_resolve(ticket=ticket, actor="system", note="Fixed.")
    notification = Notification.objects.get(template="ticket_resolved")
    link = next(path for path, answer in LINKS.findall(str(notification.context)) if answer == "no")

    # when the requester's comment, which staff read, holds a right-to-left override
    response = client.post(link, {"answer": "no", "comment": "Agent was \u202eedur"})

    # then the form says why, on the comment, and no answer is recorded
    assert response.status_code == 400
    assert response.context["form"].errors["comment"] == [INVALID_CHARACTERS]
    assert not Satisfaction.objects.exists()
    # while a comment of several lines is taken
    taken = client.post(link, {"answer": "no", "comment": "Still down.\nSince noon."})
    assert taken.status_code == 302


def test_an_api_token_name_with_an_override_is_refused_by_every_path(alice):
    # the service (the API and the page both call it)
    with pytest.raises(ValidationError) as refused:
        api_token_issue(user=alice.user, name="billing\u202etpircs")
    assert refused.value.message_dict["name"] == [INVALID_CHARACTERS]

    # the API answers 400 naming the field
    response = Client().post(
        "/api/v1/auth/token/",
        {"username": "alice@example.test", "password": "alice-demo-pass", "name": "x\u2067y"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "name" in response.json()

    # the page shows it on the field
    client = Client()
    client.force_login(alice.user)
    response = client.post("/accounts/tokens/", {"name": "x\ufeffy", "expires_in_days": 30})
    assert response.status_code == 400
    assert response.context["form"].errors["name"] == [INVALID_CHARACTERS]
    assert not ApiToken.objects.exists()
