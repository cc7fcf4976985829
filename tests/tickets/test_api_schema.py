"""The OpenAPI schema of REST API v1: valid, complete, served with its docs, and true to the API."""

import io
import re
from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.factories import TicketFactory, api_key_for, api_token_stored
from tests.tickets.verification_helpers import anonymous_lookups, link_token
from tickets.models import FieldChange, Notification, Ticket

SCHEMA = "/api/v1/schema/"
DOCS = "/api/v1/docs/"
FUZZ_EXAMPLES = 20


def schema_json(client: Client) -> dict:
    response = client.get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def api_schema(db):
    """The schema as the running app serves it, with requests going to the same app over WSGI."""
    # As Django's test client does: a request's end must not close the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(SCHEMA, get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# --- the schema itself ---


def test_the_schema_generates_without_warnings_and_validates(db):
    # when: the same command CI can run; warnings fail it
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)

    # then
    assert out.getvalue().startswith("openapi: 3.0.3")


def test_the_served_schema_is_openapi_3_with_every_contract_path(db):
    # when
    schema = schema_json(Client())

    # then
    validate_schema(schema)
    assert schema["openapi"].startswith("3.0")
    assert set(schema["paths"]) >= {
        "/api/v1/requests/password-resend/",
        "/api/v1/requests/modify/",
        "/api/v1/requests/opt-out/",
        "/api/v1/verify/",
        "/api/v1/tickets/",
        "/api/v1/tickets/{reference}/",
        "/api/v1/tickets/{reference}/messages/",
        "/api/v1/tickets/{reference}/confirm/",
        "/api/v1/tickets/{reference}/assign/",
        "/api/v1/tickets/{reference}/approve/",
        "/api/v1/tickets/{reference}/reject/",
        "/api/v1/tickets/{reference}/resolve/",
        "/api/v1/health/",
        "/api/v1/auth/token/",
    }


def test_every_operation_documents_its_errors_as_json_detail_objects(db):
    # given
    schema = schema_json(Client())
    error_ref = "#/components/schemas/Error"
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            label = f"{method.upper()} {path}"
            # then: every operation can be throttled, and says how long to wait
            assert "429" in responses, label
            too_many = responses["429"]
            assert too_many["content"]["application/json"]["schema"]["$ref"] == error_ref
            assert "Retry-After" in too_many.get("headers", {}), label
            if operation.get("requestBody"):
                assert "400" in responses, label
            # Logged-in operations (no anonymous `{}` alternative) document the 401.
            if {} not in operation.get("security", [{}]):
                assert responses["401"]["content"]["application/json"]["schema"]["$ref"] == (
                    error_ref
                ), label
            if "{reference}" in path:
                assert {"404", "401"} <= set(responses), label
            if method == "post" and path.endswith(
                ("/assign/", "/approve/", "/reject/", "/resolve/")
            ):
                assert {"403", "409"} <= set(responses), label


def test_the_ticket_component_has_exactly_the_contract_fields(db):
    schema = schema_json(Client())
    ticket = schema["components"]["schemas"]["Ticket"]
    assert set(ticket["properties"]) == {
        "reference",
        "kind",
        "status",
        "subject",
        "customer",
        "domain",
        "assignee",
        "created_at",
        "updated_at",
        "due_at",
    }
    assert ticket["properties"]["customer"]["nullable"] is True


# --- the docs page ---


def test_the_docs_page_loads_only_same_origin_assets_and_no_inline_script(db):
    # when
    client = Client()
    response = client.get(DOCS)

    # then
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 3
    assert all(body.strip() == "" for _attrs, body in scripts)
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _body in scripts]
    links = re.findall(r'<link[^>]+href="([^"]+)"', html)
    for asset in [*sources, *links]:
        assert asset.startswith("/"), asset
        assert not asset.startswith("//"), asset
    assert "<style" not in html
    assert "style=" not in html
    assert "script-src 'self'" in response["Content-Security-Policy"]
    # The init script is a separate same-origin file that points Swagger UI at our schema.
    init = client.get(sources[-1].replace("&amp;", "&"))
    assert init.status_code == 200
    assert init["Content-Type"].startswith("application/javascript")
    assert SCHEMA in init.content.decode()


def test_the_docs_assets_come_from_the_sidecar_package(db):
    html = Client().get(DOCS).content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "/static/api/swagger_ui.css" in html


# --- fuzzing: every operation, generated from the schema, answered as the schema says ---


def fuzz_operation(
    operation, *, mode: GenerationMode, users: list, references: list[str]
) -> Counter:
    """Send generated requests to one operation; every answer must be documented and no 5xx."""
    statuses: Counter = Counter()
    keys: dict[int, str] = {}
    has_reference = "{reference}" in operation.path
    checks = [not_a_server_error, response_schema_conformance]
    if mode == GenerationMode.NEGATIVE:
        # Invalid input must be refused with a 4xx, never accepted.
        checks.append(negative_data_rejection)

    @given(
        case=operation.as_strategy(generation_mode=mode),
        user=st.sampled_from(users),
        reference=st.sampled_from(references) if has_reference else st.none(),
    )
    @hypothesis_settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case, user, reference):
        if reference is not None:
            case.path_parameters = {**(case.path_parameters or {}), "reference": reference}
        headers = {}
        if user is not None:
            # Checked each time: a fuzzed DELETE /auth/token/ revokes the one in use.
            key = keys.get(user.pk)
            if key is None or api_token_stored(key) is None:
                key = keys[user.pk] = api_key_for(user)
            headers["Authorization"] = f"Token {key}"
        response = case.call(headers=headers)
        case.validate_response(response, checks=checks, headers=headers)
        statuses[response.status_code] += 1

    run()
    return statuses


def modes(operation) -> list[GenerationMode]:
    """Invalid requests only where there is input to make invalid: a body or query parameters."""
    if len(operation.body) or len(operation.query):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


# Every operation of the API in one test (about 100 s on a loaded machine): the suite's
# 120 s limit is there to end a test that hangs, not this one.
@pytest.mark.timeout(480)
def test_fuzzed_requests_never_get_a_5xx_and_every_answer_matches_the_schema(
    api_schema, alice, bob, agent, settings
):
    # given: generous limits so the services really run, and real tickets to aim at
    settings.RATE_LIMITS = {
        scope: (100_000, window) for scope, (_n, window) in settings.RATE_LIMITS.items()
    }
    references = [
        TicketFactory(customer=alice).reference,
        TicketFactory(customer=bob, kind=Ticket.Kind.MODIFY_INFO).reference,
        TicketFactory(customer=None, status=Ticket.Status.CLOSED).reference,
    ]
    users = [agent, alice.user, None]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14

    # when
    seen = {
        (operation.label, mode): fuzz_operation(
            operation, mode=mode, users=users, references=references
        )
        for operation in operations
        for mode in modes(operation)
    }

    # then: the fuzz got past the gates, not only 401s and 404s
    for label in (
        "GET /api/v1/tickets/",
        "GET /api/v1/tickets/{reference}/",
        "POST /api/v1/tickets/{reference}/messages/",
        "DELETE /api/v1/auth/token/",
    ):
        positive = seen[label, GenerationMode.POSITIVE]
        assert any(200 <= code < 300 for code in positive), (label, positive)


# --- a client written only from the schema ---


class SchemaClient:
    """Calls operations by operationId, and checks each answer against the schema."""

    def __init__(self, schema, token: str | None = None) -> None:
        self.schema = schema
        self.headers = {"Authorization": f"Token {token}"} if token else {}

    def call(self, operation_id: str, *, status: int, body=None, query=None, **path) -> dict:
        operation = self.schema.find_operation_by_id(operation_id)
        kwargs = {"path_parameters": path or None, "query": query}
        if body is not None:
            kwargs.update(body=body, media_type="application/json")
        case = operation.Case(**kwargs)
        response = case.call(headers=self.headers)
        case.validate_response(
            response,
            checks=[not_a_server_error, response_schema_conformance],
            headers=self.headers,
        )
        assert response.status_code == status, (operation_id, response.text)
        return response.json() if response.content else {}


def test_a_schema_only_client_files_requests_follows_them_and_staff_work_them(
    api_schema, alice, agent, settings
):
    settings.MODIFY_AUTO_APPLY_LOW_RISK = False
    anonymous = SchemaClient(api_schema)

    # given: the three requests anyone may file, with no login
    resend = anonymous.call(
        "requests_password_resend_create", status=202, body={"domain": "alice-shop.test"}
    )
    modify = anonymous.call(
        "requests_modify_create",
        status=202,
        body={"email": "alice@example.test", "changes": {"phone": "+60 12-345 6789"}},
    )
    opt_out = anonymous.call(
        "requests_opt_out_create",
        status=202,
        body={"email": "alice@example.test", "lists": ["product_mailings"]},
    )
    assert modify["status"] == "awaiting_verification"
    anonymous_lookups()  # the worker finds her record and mails the links

    # when: Alice follows the link mailed to her record, then follows her ticket with a token
    mailed = Notification.objects.get(
        ticket__reference=modify["reference"], template="verify_request"
    )
    verified = anonymous.call("verify_create", status=200, body={"token": link_token(mailed)})
    assert verified == {"reference": modify["reference"], "status": "open"}
    token = anonymous.call(
        "auth_token_create",
        status=200,
        body={"username": "alice@example.test", "password": "alice-demo-pass"},
    )["token"]
    alice_api = SchemaClient(api_schema, token)
    mine = alice_api.call("tickets_list", status=200)
    assert modify["reference"] in {t["reference"] for t in mine["results"]}
    ticket = alice_api.call("tickets_retrieve", status=200, reference=modify["reference"])
    assert [c["field"] for c in ticket["changes"]] == ["phone"]
    alice_api.call(
        "tickets_messages_create",
        status=201,
        reference=modify["reference"],
        body={"body": "Please use the new number from today."},
    )

    # then: staff, with a token, find it in the queue and work it
    staff_token = anonymous.call(
        "auth_token_create", status=200, body={"username": "agent", "password": "agent-demo-pass"}
    )["token"]
    staff = SchemaClient(api_schema, staff_token)
    queue = staff.call("tickets_list", status=200, query={"kind": "modify_info", "status": "open"})
    assert [t["reference"] for t in queue["results"]] == [modify["reference"]]
    assigned = staff.call(
        "tickets_assign_create",
        status=200,
        reference=modify["reference"],
        body={"assignee": "agent"},
    )
    assert assigned["assignee"] == "agent"
    staff.call(
        "tickets_messages_create",
        status=201,
        reference=modify["reference"],
        body={"body": "Caller ID checked.", "internal": True},
    )
    approved = staff.call("tickets_approve_create", status=200, reference=modify["reference"])
    assert approved["status"] == "resolved"
    assert FieldChange.objects.get(ticket__reference=modify["reference"]).applied_at is not None
    staff.call("tickets_approve_create", status=409, reference=modify["reference"])
    # an opt-out is never rejected: only change and password requests are
    staff.call(
        "tickets_reject_create",
        status=409,
        reference=opt_out["reference"],
        body={"reason": "Filed by mistake"},
    )
    staff.call("tickets_resolve_create", status=200, reference=resend["reference"], body={})
    health = anonymous.call("health_retrieve", status=200)
    assert {k: health[k] for k in ("database", "broker", "cache", "sweeps")} == {
        "database": "ok",
        "broker": "ok",
        "cache": "ok",
        "sweeps": "ok",
    }

    # and Alice never sees the internal note; revoking her token locks her out at once
    followed = alice_api.call("tickets_retrieve", status=200, reference=modify["reference"])
    assert "Caller ID checked." not in [m["body"] for m in followed["messages"]]
    alice_api.call("auth_token_destroy", status=204)
    alice_api.call("tickets_list", status=401)
