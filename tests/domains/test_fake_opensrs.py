import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from domains.fake_opensrs import FakeOpenSRS
from domains.opensrs import (
    REDACTED,
    DomainNotInAccount,
    OpenSRSClient,
    OpenSRSError,
    OpenSRSRequestError,
    OpenSRSTransientError,
    build_request,
    decode_envelope,
    encode_envelope,
    signature,
)

USERNAME = "test-reseller"
KEY = "test-key-0123456789abcdef"


@pytest.fixture
def fake_opensrs(tmp_path) -> Iterator[FakeOpenSRS]:
    with FakeOpenSRS(username=USERNAME, key=KEY, calls_log=tmp_path / "calls.jsonl") as server:
        yield server


@pytest.fixture
def opensrs(fake_opensrs) -> OpenSRSClient:
    return OpenSRSClient(fake_opensrs.url, USERNAME, KEY, read_timeout=5, read_retries=0)


def _post(url: str, body: bytes, *, key: str = KEY, **headers: str) -> requests.Response:
    sent = {"Content-Type": "text/xml", "X-Username": USERNAME, "X-Signature": signature(body, key)}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    return requests.post(url, data=body, headers=sent, timeout=5)


def _owner_request(domain: str = "alice-shop.test") -> bytes:
    return encode_envelope(build_request("GET", "DOMAIN", {"type": "owner"}, domain=domain))


# --- protocol -------------------------------------------------------------------------------------


def test_replies_are_http_200_ops_envelopes_with_content_length(fake_opensrs):
    response = _post(fake_opensrs.url, _owner_request())

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert b"<version>0.9</version>" in response.content
    reply = decode_envelope(response.content)
    assert (reply["action"], reply["object"], reply["response_code"]) == ("REPLY", "DOMAIN", "200")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_only_post_is_allowed(fake_opensrs, method):
    response = requests.request(method, fake_opensrs.url, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    "headers",
    [
        {"X_Signature": "0" * 32},
        {"X_Username": "stranger"},
        {"X_Signature": ""},
    ],
    ids=["bad-signature", "unknown-user", "no-signature"],
)
def test_bad_credentials_answer_401_in_an_ops_reply(fake_opensrs, headers):
    response = _post(fake_opensrs.url, _owner_request(), **headers)

    reply = decode_envelope(response.content)
    assert response.status_code == 200
    assert (reply["is_success"], reply["response_code"]) == ("0", "401")
    assert reply["response_text"] == "Authentication Failed"


def test_uppercase_signature_is_rejected_like_the_real_server(fake_opensrs):
    body = _owner_request()

    response = _post(fake_opensrs.url, body, X_Signature=signature(body, KEY).upper())

    assert decode_envelope(response.content)["response_code"] == "401"


def test_malformed_xml_answers_400(fake_opensrs):
    response = _post(fake_opensrs.url, b"<OPS_envelope><body>")

    reply = decode_envelope(response.content)
    assert (response.status_code, reply["response_code"], reply["is_success"]) == (200, "400", "0")


def test_wrong_content_type_is_refused(fake_opensrs):
    response = _post(fake_opensrs.url, _owner_request(), Content_Type="application/xml")

    assert decode_envelope(response.content)["response_code"] == "400"


def test_action_and_object_are_compared_case_insensitively_and_object_is_echoed(opensrs):
    reply = opensrs.call(
        "get", "domain", {"type": "owner"}, idempotent=True, domain="alice-shop.test"
    )

    assert reply.attributes["contact_set"]["owner"]["email"] == "alice@example.test"
    assert reply.response_summary["object"] == "domain"


def test_unknown_command_answers_430(opensrs):
    with pytest.raises(OpenSRSRequestError) as excinfo:
        opensrs.call("RENEW", "DOMAIN", {"domain": "alice-shop.test"}, idempotent=False)

    assert (excinfo.value.code, excinfo.value.text) == (430, "Invalid Command")


# --- commands -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info_type", "keys"),
    [
        ("owner", {"contact_set"}),
        ("admin", {"contact_set"}),
        ("billing", {"contact_set"}),
        ("tech", {"contact_set"}),
        ("all_info", {"contact_set", "nameserver_list", "expiredate", "sponsoring_rsp"}),
        ("status", {"lock_state", "can_modify"}),
    ],
)
def test_get_domain_answers_each_info_type(opensrs, info_type, keys):
    reply = opensrs.call(
        "GET", "DOMAIN", {"type": info_type}, idempotent=True, domain="stale-mail.test"
    )

    assert keys <= set(reply.attributes)
    if info_type in {"owner", "admin", "billing", "tech"}:
        assert reply.attributes["contact_set"][info_type]["email"] == "carol@defunct.test"
    if info_type == "all_info":
        assert set(reply.attributes["contact_set"]) == {"owner", "admin", "billing", "tech"}


def test_get_domain_without_type_answers_460(opensrs):
    with pytest.raises(OpenSRSRequestError) as excinfo:
        opensrs.call("GET", "DOMAIN", {}, idempotent=True, domain="alice-shop.test")

    assert (excinfo.value.code, excinfo.value.text) == (460, "Info type not specified")


def test_get_domain_not_in_account_answers_415(fake_opensrs, opensrs):
    fake_opensrs.add_domain("transferred-away.test", "x@example.test", in_account=False)

    with pytest.raises(DomainNotInAccount) as excinfo:
        opensrs.get_owner_contact("transferred-away.test")

    assert (excinfo.value.code, excinfo.value.text) == (415, "Authentication Error.")


@pytest.mark.parametrize(
    ("attributes", "code"),
    [
        ({"send_to": "owner", "sub_user": "0"}, 460),
        ({"domain_name": "unknown.test", "send_to": "owner", "sub_user": "0"}, 415),
        ({"domain_name": "alice-shop.test", "send_to": "owner", "sub_user": "1"}, 480),
        ({"domain_name": "alice-shop.test", "send_to": "billing", "sub_user": "0"}, 465),
    ],
    ids=["no-domain", "unknown-domain", "no-sub-user", "bad-send-to"],
)
def test_send_password_errors_send_no_mail(fake_opensrs, opensrs, mailoutbox, attributes, code):
    with pytest.raises(OpenSRSError) as excinfo:
        opensrs.call("SEND_PASSWORD", "DOMAIN", attributes, idempotent=False)

    assert excinfo.value.code == code
    assert mailoutbox == []
    assert fake_opensrs.sent_mail == []


def test_send_password_defaults_to_the_admin_contact(fake_opensrs, opensrs, mailoutbox):
    fake_opensrs.add_domain("split.test", "owner@split.test", admin_email="admin@split.test")

    opensrs.call("SEND_PASSWORD", "DOMAIN", {"domain_name": "split.test"}, idempotent=False)

    assert [m.to for m in mailoutbox] == [["admin@split.test"]]
    assert fake_opensrs.sent_mail[0]["contact"] == "admin"


def test_send_password_links_are_unique(fake_opensrs, opensrs, mailoutbox):
    opensrs.send_password("alice-shop.test")
    opensrs.send_password("alice-shop.test")

    links = [sent["link"] for sent in fake_opensrs.sent_mail]
    assert len(set(links)) == 2
    assert all(link in message.body for link, message in zip(links, mailoutbox, strict=True))


@pytest.mark.parametrize(
    ("domain", "code", "status"),
    [("alice-shop.test", 211, "taken"), ("free-name.test", 210, "available")],
)
def test_lookup_reports_taken_or_available(opensrs, domain, code, status):
    reply = opensrs.call("LOOKUP", "DOMAIN", {"domain": domain}, idempotent=True)

    assert (reply.code, reply.attributes["status"]) == (code, status)


def test_lookup_rejects_bad_syntax(opensrs):
    with pytest.raises(OpenSRSRequestError) as excinfo:
        opensrs.call("LOOKUP", "DOMAIN", {"domain": "not a domain"}, idempotent=True)

    assert excinfo.value.code == 465


@pytest.mark.parametrize(("domain", "belongs"), [("bob-reseller.test", "1"), ("nope.test", "0")])
def test_belongs_to_rsp(opensrs, domain, belongs):
    reply = opensrs.call("BELONGS_TO_RSP", "DOMAIN", {"domain": domain}, idempotent=True)

    assert reply.attributes["belongs_to_rsp"] == belongs


def test_modify_contact_info_changes_what_get_domain_returns(opensrs):
    found = opensrs.get_domains_contacts(["alice-shop.test"])
    owner = found["alice-shop.test"].contact_set["owner"]

    opensrs.modify_contacts("alice-shop.test", {"owner": {**owner, "email": "alice@new-mail.test"}})

    assert opensrs.get_owner_contact("alice-shop.test").email == "alice@new-mail.test"


def test_modify_contact_info_wants_whole_contacts(opensrs):
    with pytest.raises(OpenSRSRequestError) as caught:
        opensrs.modify_contacts("alice-shop.test", {"owner": {"email": "a@new.test"}})

    assert caught.value.code == 460
    assert opensrs.get_owner_contact("alice-shop.test").email == "alice@example.test"


def test_modify_contact_info_of_a_domain_outside_the_account_answers_415(fake_opensrs, opensrs):
    fake_opensrs.add_domain("elsewhere.test", "x@elsewhere.test", in_account=False)
    contact = fake_opensrs.domains["elsewhere.test"].contacts["owner"]

    with pytest.raises(DomainNotInAccount) as caught:
        opensrs.modify_contacts("elsewhere.test", {"owner": {**contact, "email": "y@z.test"}})

    assert caught.value.code == 415
    assert fake_opensrs.domains["elsewhere.test"].contacts["owner"]["email"] == "x@elsewhere.test"


def test_an_owner_email_change_starts_a_change_of_registrant(fake_opensrs, opensrs):
    # given bob-reseller.test registered to Bob's own address
    fake_opensrs.add_domain("bob-reseller.test", "bob@example.test", first_name="Bob")
    contacts = opensrs.get_domains_contacts(["bob-reseller.test"])["bob-reseller.test"]
    assert contacts.status == "active"

    reply = opensrs.modify_contacts(
        "bob-reseller.test", {"owner": {**contacts.contact_set["owner"], "email": "bob@new.test"}}
    )

    detail = reply.attributes["details"]["bob-reseller.test"]
    assert detail["registrant_status"] == "pending_current_registrant"
    pending = opensrs.get_domains_contacts(["bob-reseller.test"])["bob-reseller.test"]
    assert pending.status == "pending_current_registrant"
    assert pending.email("owner") == "bob@new.test"
    active = opensrs.call(
        "GET_DOMAINS_CONTACTS",
        "DOMAIN",
        {"domain_list": ["bob-reseller.test"], "active_contacts_only": "1"},
        idempotent=True,
    )
    owner = active.attributes["bob-reseller.test"]["contact_set"]["owner"]
    assert owner["email"] == "bob@example.test"
    fake_opensrs.registrant_change_complete("bob-reseller.test")
    assert opensrs.get_domains_contacts(["bob-reseller.test"])["bob-reseller.test"].status == (
        "active"
    )


def test_an_admin_only_change_needs_no_registrant_approval(fake_opensrs, opensrs):
    # given bob-reseller.test registered to Bob's own address
    fake_opensrs.add_domain("bob-reseller.test", "bob@example.test", first_name="Bob")
    admin = opensrs.get_domains_contacts(["bob-reseller.test"])["bob-reseller.test"].contact_set[
        "admin"
    ]

    reply = opensrs.modify_contacts("bob-reseller.test", {"admin": {**admin, "email": "a@b.test"}})

    assert reply.attributes["details"]["bob-reseller.test"]["registrant_status"] == "active"
    contacts = opensrs.get_domains_contacts(["bob-reseller.test"])["bob-reseller.test"]
    assert (contacts.email("owner"), contacts.email("admin")) == ("bob@example.test", "a@b.test")


def test_get_domains_contacts_reads_a_batch_and_answers_415_per_foreign_domain(
    fake_opensrs, opensrs
):
    fake_opensrs.add_domain("elsewhere.test", "x@elsewhere.test", in_account=False)

    found = opensrs.get_domains_contacts(["alice-shop.test", "stale-mail.test", "elsewhere.test"])

    assert found["alice-shop.test"].email("owner") == "alice@example.test"
    assert found["stale-mail.test"].email("admin") == "carol@defunct.test"
    assert found["elsewhere.test"] is None
    reply = opensrs.call(
        "GET_DOMAINS_CONTACTS", "DOMAIN", {"domain_list": ["elsewhere.test"]}, idempotent=True
    )
    assert reply.attributes["elsewhere.test"]["response_code"] == "415"


def test_get_domains_contacts_refuses_more_than_100_domains(opensrs):
    names = [f"d{i}.test" for i in range(101)]

    with pytest.raises(OpenSRSRequestError) as caught:
        opensrs.call("GET_DOMAINS_CONTACTS", "DOMAIN", {"domain_list": names}, idempotent=True)

    assert caught.value.code == 465
    with pytest.raises(ValueError, match="1 to 100"):
        opensrs.get_domains_contacts(names)


def test_modify_and_contacts_reads_are_logged_with_their_codes(fake_opensrs, opensrs, tmp_path):
    contact = fake_opensrs.domains["alice-shop.test"].contacts["admin"]
    opensrs.modify_contacts("alice-shop.test", {"admin": {**contact, "email": "n@alice.test"}})
    opensrs.get_domains_contacts(["alice-shop.test"])

    lines = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]

    assert [(line["action"], line["response_code"]) for line in lines] == [
        ("MODIFY", 200),
        ("GET_DOMAINS_CONTACTS", 200),
    ]
    assert lines[0]["domain"] == "alice-shop.test"
    assert lines[0]["attributes"]["contact_set"]["admin"]["email"] == "n@alice.test"


# --- calls log and faults -------------------------------------------------------------------------


def test_calls_log_gets_one_json_line_per_request(fake_opensrs, opensrs, tmp_path):
    # given
    fake_opensrs.set_fault("http500", count=1)

    # when
    with pytest.raises(OpenSRSTransientError):
        opensrs.get_owner_contact("alice-shop.test")
    opensrs.get_owner_contact("alice-shop.test")
    with pytest.raises(OpenSRSRequestError):
        opensrs.call("CHANGE", "PASSWORD", {"reg_password": "secret-1"}, idempotent=False)
    _post(fake_opensrs.url, _owner_request(), key="wrong")

    # then
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 4
    assert all({"action", "object", "attributes", "response_code"} <= set(e) for e in entries)
    assert [e["response_code"] for e in entries] == [None, 200, 430, 401]
    assert entries[0]["fault"] == "http500"
    assert entries[1]["attributes"] == {"type": "owner"}
    assert entries[2]["attributes"] == {"reg_password": REDACTED}
    assert "secret-1" not in "".join(lines)


def test_fault_count_clears_itself(fake_opensrs, opensrs):
    fake_opensrs.set_fault("code:486", count=2)

    for _ in range(2):
        with pytest.raises(OpenSRSTransientError):
            opensrs.get_owner_contact("alice-shop.test")

    assert opensrs.get_owner_contact("alice-shop.test").email == "alice@example.test"
    assert fake_opensrs.fault is None


@pytest.mark.parametrize("mode", ["slow", "code:abc", "code:42"])
def test_set_fault_rejects_unknown_modes(fake_opensrs, mode):
    with pytest.raises(ValueError, match="unknown fault"):
        fake_opensrs.set_fault(mode)


def test_control_endpoint_sets_and_clears_a_fault(fake_opensrs, opensrs):
    control = fake_opensrs.url + "_control"

    # when: set over HTTP, as a bench script in another process would
    response = requests.post(control, json={"fault": "rate_limit", "count": 1}, timeout=5)

    # then
    assert response.status_code == 200
    assert response.json()["fault"] == "rate_limit"
    assert requests.get(control, timeout=5).json()["count"] == 1
    with pytest.raises(OpenSRSTransientError) as excinfo:
        opensrs.get_owner_contact("alice-shop.test")
    assert excinfo.value.code == 310

    # when: set again and then cleared
    requests.post(control, json={"fault": "http500"}, timeout=5)
    cleared = requests.post(control, json={"fault": None}, timeout=5)

    # then
    assert cleared.json()["fault"] is None
    assert fake_opensrs.fault is None
    assert opensrs.get_owner_contact("alice-shop.test").email == "alice@example.test"


@pytest.mark.parametrize(
    "payload", [{"fault": "explode"}, {"fault": "stall", "count": 0}, ["not", "an", "object"]]
)
def test_control_endpoint_rejects_bad_requests(fake_opensrs, payload):
    response = requests.post(fake_opensrs.url + "_control", json=payload, timeout=5)

    assert response.status_code == 400
    assert fake_opensrs.fault is None


def test_stop_cuts_a_stall_short_without_acting(tmp_path, mailoutbox):
    server = FakeOpenSRS(username=USERNAME, key=KEY).start()
    server.set_fault("stall", delay=30)
    client = OpenSRSClient(server.url, USERNAME, KEY, read_timeout=0.2)
    with pytest.raises(OpenSRSError):
        client.send_password("alice-shop.test")

    server.stop()

    assert mailoutbox == []
    assert server.sent_mail == []


def test_fake_refuses_a_non_loopback_host():
    with pytest.raises(ValueError, match="loopback"):
        FakeOpenSRS(host="0.0.0.0", username=USERNAME, key=KEY)  # noqa: S104


# --- management command ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com", "::"])  # noqa: S104
def test_command_refuses_a_non_loopback_host(host):
    with pytest.raises(CommandError, match="loopback"):
        call_command("fake_opensrs", "--host", host, "--port", "0")


def test_command_serves_requests_and_stops_on_ctrl_c(tmp_path):
    # given
    calls_log = tmp_path / "var" / "calls.jsonl"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "helpdesk.settings"}
    env.setdefault("SECRET_KEY", "test-only-secret")
    env["HELPDESK_TESTING"] = "1"  # the development defaults, which DEBUG=0 would refuse
    command = [sys.executable, "-u", "-m", "django", "fake_opensrs", "--port", "0"]
    command += ["--username", USERNAME, "--key", KEY, "--calls-log", str(calls_log)]
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        command,
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the command printed nothing"
        banner = process.stdout.readline()
        url = banner.split(" listening on ")[1].split()[0]

        # when
        reply = decode_envelope(_post(url, _owner_request()).content)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # then
    assert url.startswith("http://127.0.0.1:")
    assert reply["response_code"] == "200"
    assert process.returncode == 0, err
    assert "stopped" in out
    assert json.loads(calls_log.read_text())["response_code"] == 200
