import pytest


@pytest.mark.django_db
def test_each_logged_in_client_fixture_is_its_own_person(alice_client, agent_client, client):
    # One test acting as a customer and as an agent must not end up as whoever logged in last.
    assert alice_client.get("/staff/").status_code != 200
    assert agent_client.get("/staff/").status_code == 200
    assert alice_client.get("/my/").status_code == 200
    assert client.get("/staff/").status_code == 302
