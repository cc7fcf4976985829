"""Saved views: a named queue filter and sort per staff member, shared by its address."""

import re

import pytest
from django.test import Client

from helpdesk.exceptions import ApplicationError
from tests.factories import TicketFactory
from tests.markers import postgresql_only
from tests.threads import meet_after, run_at_once
from tickets.models import ActionLog, SavedView, Ticket
from tickets.services import saved_views
from tickets.services.saved_views import SAVED_VIEW_GONE, SAVED_VIEWS_MAX

S = Ticket.Status


def logged_in(user) -> Client:
    """A client of its own (the client fixtures share one session)."""
    client = Client()
    client.force_login(user)
    return client


def saved_links(response) -> list[tuple[str, str]]:
    """(href, name) of the saved views listed on the queue page."""
    page = response.content.decode()
    nav = re.search(r'<nav class="saved-views".*?</nav>', page, re.S).group(0)
    return [
        (href.replace("&amp;", "&"), name)
        for href, name in re.findall(r'<li><a href="\?([^"]*)"[^>]*>([^<]*)</a>', nav)
    ]


@pytest.mark.django_db
def test_an_agent_saves_the_current_filters_under_a_name_and_finds_them_listed(agent_client, agent):
    # given the queue filtered and sorted, on a later page (with a cursor and an unknown key)
    query = "view=all&status=resolved&sort=-created&size=50&cursor=abc&order_by=password"

    # when
    response = agent_client.post("/staff/views/", {"name": "  Resolved,   newest ", "query": query})

    # then the view is kept without the cursor or the unknown key, and listed by name
    saved = SavedView.objects.get(owner=agent)
    assert saved.name == "Resolved, newest"
    assert saved.query == "view=all&status=resolved&sort=-created&size=50"
    assert response.status_code == 302
    assert response["Location"] == f"/staff/?{saved.query}"
    page = agent_client.get(response["Location"])
    assert saved_links(page) == [(saved.query, "Resolved, newest")]
    assert 'aria-current="page">Resolved, newest</a>' in page.content.decode()
    row = ActionLog.objects.get(action="saved_view.created")
    assert row.actor == "staff:agent"
    assert row.details == {"name": "Resolved, newest", "to": saved.query}


@pytest.mark.django_db
def test_saving_under_a_name_already_used_changes_that_view(agent_client, agent):
    agent_client.post("/staff/views/", {"name": "Mine", "query": "view=mine"})
    agent_client.post("/staff/views/", {"name": "Mine", "query": "view=mine&sort=-priority"})
    assert list(SavedView.objects.values_list("name", "query")) == [
        ("Mine", "view=mine&sort=-priority&size=25")
    ]
    assert ActionLog.objects.filter(action="saved_view.changed").count() == 1


@pytest.mark.django_db
def test_a_shared_view_address_shows_a_colleague_the_same_tickets(agent_client, supervisor):
    # given
    supervisor_client = logged_in(supervisor)
    resolved = TicketFactory(status=S.RESOLVED, subject="Done one")
    TicketFactory(status=S.OPEN)
    agent_client.post("/staff/views/", {"name": "Resolved", "query": "status=resolved"})
    (href, _name), *_ = saved_links(agent_client.get("/staff/"))

    # when the supervisor opens the same address
    page = supervisor_client.get(f"/staff/?{href}").content.decode()

    # then
    assert re.findall(r'data-reference="(HD-\w+)"', page) == [resolved.reference]


@pytest.mark.django_db
def test_views_are_each_agents_own(agent_client, supervisor):
    # given
    supervisor_client = logged_in(supervisor)
    agent_client.post("/staff/views/", {"name": "Agent's", "query": "view=mine"})
    theirs = SavedView.objects.get()

    # when the supervisor looks and tries to delete it
    listed = saved_links(supervisor_client.get("/staff/"))
    deleted = supervisor_client.post(f"/staff/views/{theirs.pk}/delete/")

    # then
    assert listed == []
    assert deleted.status_code == 404
    assert SavedView.objects.filter(pk=theirs.pk).exists()


@pytest.mark.django_db
def test_an_agent_deletes_its_own_view(agent_client, agent):
    agent_client.post("/staff/views/", {"name": "Old", "query": "view=all"})
    view = SavedView.objects.get()

    response = agent_client.post(f"/staff/views/{view.pk}/delete/")

    assert response.status_code == 302
    assert not SavedView.objects.exists()
    row = ActionLog.objects.get(action="saved_view.deleted")
    assert (row.actor, row.details) == (
        "staff:agent",
        {"name": "Old", "from": "view=all&sort=urgency&size=25"},
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   ", "x" * 81, "bad\x00name"])
def test_a_view_needs_a_usable_name(agent_client, name):
    response = agent_client.post("/staff/views/", {"name": name, "query": "view=all"}, follow=True)
    assert response.status_code == 200
    assert "Give the view a name" in response.content.decode()
    assert not SavedView.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "view=all&q=" + "\u20ac" * 200,  # a search the queue takes, 1,800 characters written out
        "assignee=" + "\u00e9" * 150 + "&q=" + "\u4e2d" * 60,
    ],
)
def test_a_view_whose_filters_are_too_long_to_keep_is_refused_with_the_reason(agent_client, query):
    # given filters the queue accepts, whose querystring is longer than a view keeps
    # when an agent saves them
    response = agent_client.post("/staff/views/", {"name": "Long", "query": query}, follow=True)
    # then they are told why, and nothing is kept (was a 500)
    assert response.status_code == 200
    assert "too long to save" in response.content.decode()
    assert not SavedView.objects.exists()
    assert not ActionLog.objects.filter(action="saved_view.created").exists()


@pytest.mark.django_db
def test_there_is_a_limit_to_how_many_views_one_agent_keeps(agent_client, agent):
    SavedView.objects.bulk_create(
        SavedView(owner=agent, name=f"v{n}", query="view=all") for n in range(SAVED_VIEWS_MAX)
    )
    response = agent_client.post("/staff/views/", {"name": "one more", "query": ""}, follow=True)
    assert "delete one first" in response.content.decode()
    assert SavedView.objects.count() == SAVED_VIEWS_MAX


@pytest.mark.django_db
def test_a_view_name_is_shown_escaped(agent_client):
    agent_client.post("/staff/views/", {"name": "<b>bold</b>", "query": ""})
    page = agent_client.get("/staff/").content.decode()
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


@pytest.mark.django_db
def test_customers_and_visitors_cannot_save_views(alice_client, client):
    assert alice_client.post("/staff/views/", {"name": "x", "query": ""}).status_code == 404
    assert Client().post("/staff/views/", {"name": "x", "query": ""}).status_code == 302
    assert not SavedView.objects.exists()


@pytest.mark.django_db
def test_saving_a_view_needs_the_csrf_token(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post("/staff/views/", {"name": "x", "query": ""}).status_code == 403
    assert not SavedView.objects.exists()


@pytest.mark.django_db
def test_a_get_changes_nothing(agent_client):
    assert agent_client.get("/staff/views/").status_code == 405


@postgresql_only("two transactions at once, each on its own connection")
@pytest.mark.django_db(transaction=True)
def test_one_name_saved_twice_at_once_is_one_view_and_no_error(agent, monkeypatch):
    # given each save, once it has looked for a view of that name, waiting (up to a moment) for
    # the other to have looked too: both find none and both insert, unless they queue
    meet_after(monkeypatch, saved_views, "saved_view_lock")
    errors: list[Exception] = []

    def save(query: str) -> None:
        try:
            saved_views.saved_view_save(owner=agent, name="Mine", query=query)
        except Exception as exc:
            errors.append(exc)

    # when the agent's double click sends the same new name twice
    run_at_once(save, [("status=open",), ("status=resolved",)])

    # then neither fails: the second save changes the view the first one made
    assert errors == []
    [view] = SavedView.objects.filter(owner=agent)
    assert view.name == "Mine"
    actions = sorted(
        ActionLog.objects.filter(action__startswith="saved_view.").values_list("action", flat=True)
    )
    assert actions == ["saved_view.changed", "saved_view.created"]


@pytest.mark.django_db
def test_a_view_deleted_again_from_a_stale_read_is_refused_and_recorded_once(agent):
    # given the view as two requests read it, one of which deletes it
    view = saved_views.saved_view_save(owner=agent, name="Old", query="status=open")
    stale = SavedView.objects.get(pk=view.pk)
    saved_views.saved_view_delete(view=view, actor=agent)

    # when the other deletes it too
    with pytest.raises(ApplicationError) as refused:
        saved_views.saved_view_delete(view=stale, actor=agent)

    # then it says so, and the record has the one deletion
    assert refused.value.message == SAVED_VIEW_GONE
    assert ActionLog.objects.filter(action="saved_view.deleted").count() == 1


@postgresql_only("two transactions at once, each on its own connection")
@pytest.mark.django_db(transaction=True)
def test_one_view_deleted_twice_at_once_is_deleted_once_on_the_record(agent, monkeypatch):
    # given the view read by both requests of a double click, each waiting (up to a moment),
    # once it has looked the view up to delete it, for the other to have looked too
    view = saved_views.saved_view_save(owner=agent, name="Old", query="status=open")
    reads = [SavedView.objects.get(pk=view.pk) for _ in range(2)]
    meet_after(monkeypatch, saved_views, "saved_view_lock_by_pk")
    refusals: list[str] = []

    def delete(read: SavedView) -> None:
        try:
            saved_views.saved_view_delete(view=read, actor=agent)
        except ApplicationError as exc:
            refusals.append(exc.message)

    # when both delete it at once
    run_at_once(delete, [(read,) for read in reads])

    # then one deletes it and the other is told it is gone: one deletion on the record
    assert not SavedView.objects.filter(pk=view.pk).exists()
    assert refusals == [SAVED_VIEW_GONE]
    assert ActionLog.objects.filter(action="saved_view.deleted").count() == 1


@pytest.mark.django_db
def test_deleting_a_view_already_deleted_is_a_404(agent_client, agent):
    # given a view deleted in another tab
    view = saved_views.saved_view_save(owner=agent, name="Old", query="status=open")
    assert agent_client.post(f"/staff/views/{view.pk}/delete/").status_code == 302

    # when this tab deletes it again
    response = agent_client.post(f"/staff/views/{view.pk}/delete/")

    # then it is not found, and nothing more is recorded
    assert response.status_code == 404
    assert ActionLog.objects.filter(action="saved_view.deleted").count() == 1
