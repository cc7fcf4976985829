import pickle
import socket
import time
from collections.abc import Iterator

import pytest

from domains import opensrs as opensrs_module
from domains.fake_opensrs import FakeOpenSRS, ops_reply
from domains.opensrs import (
    REDACTED,
    DomainNotInAccount,
    EnvelopeError,
    OpenSRSAuthError,
    OpenSRSClient,
    OpenSRSExchange,
    OpenSRSOutcomeUnknown,
    OpenSRSRequestError,
    OpenSRSTimeout,
    OpenSRSTransientError,
    OwnerContact,
    build_request,
    client_from_settings,
    decode_envelope,
    encode_envelope,
    redact,
    signature,
)

USERNAME = "test-reseller"
KEY = "test-key-0123456789abcdef"

# opensrs.md §2.3: 478 bytes, one line, no trailing newline.
VECTOR_BODY = (
    b"<?xml version='1.0' encoding='UTF-8' standalone='no' ?>"
    b"<!DOCTYPE OPS_envelope SYSTEM 'ops.dtd'><OPS_envelope><header><version>0.9</version>"
    b'</header><body><data_block><dt_assoc><item key="protocol">XCP</item>'
    b'<item key="action">SEND_PASSWORD</item><item key="object">DOMAIN</item>'
    b'<item key="attributes"><dt_assoc><item key="domain_name">example.com</item>'
    b'<item key="send_to">owner</item><item key="sub_user">0</item></dt_assoc></item>'
    b"</dt_assoc></data_block></body></OPS_envelope>"
)
VECTOR_KEY = "0123456789abcdef"
VECTOR_SIGNATURE = "fe44303b44785b394230c48643e9ad41"


@pytest.fixture
def fake_opensrs(tmp_path) -> Iterator[FakeOpenSRS]:
    with FakeOpenSRS(username=USERNAME, key=KEY, calls_log=tmp_path / "calls.jsonl") as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


# A reply whose containers nest past Python's recursion limit (OPS replies nest five or six).
DEEPLY_NESTED = (
    b"<OPS_envelope><body><data_block>"
    + b"<dt_assoc><item key='a'>" * 2000
    + b"x"
    + b"</item></dt_assoc>" * 2000
    + b"</data_block></body></OPS_envelope>"
)


@pytest.fixture
def opensrs(fake_opensrs, sleeps) -> OpenSRSClient:
    return OpenSRSClient(
        fake_opensrs.url, USERNAME, KEY, read_timeout=5, read_retries=2, sleep=sleeps.append
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- codec ----------------------------------------------------------------------------------------


def test_encode_envelope_reproduces_the_documented_test_vector():
    data = build_request(
        "SEND_PASSWORD",
        "DOMAIN",
        {"domain_name": "example.com", "send_to": "owner", "sub_user": "0"},
    )

    body = encode_envelope(data)

    assert body == VECTOR_BODY
    assert len(body) == 478
    assert signature(body, VECTOR_KEY) == VECTOR_SIGNATURE


def test_signature_is_lowercase_double_md5_hex():
    assert signature(VECTOR_BODY, VECTOR_KEY) == VECTOR_SIGNATURE.lower()
    assert signature(VECTOR_BODY + b"\x00", VECTOR_KEY) != VECTOR_SIGNATURE


def test_codec_round_trips_nested_data_as_strings():
    data = {
        "protocol": "XCP",
        "attributes": {
            "name": "Tan & <Sons> 'Ltd' \"Co\"",
            "count": 3,
            "flag": True,
            "empty": "",
            "nothing": None,
            "unicode": "Zoë 東京",
            "list": ["a", {"b": "c"}, ["d"]],
            "empty_dict": {},
            'key "with" <markup>': "x",
        },
    }

    decoded = decode_envelope(encode_envelope(data))

    assert decoded == {
        "protocol": "XCP",
        "attributes": {
            "name": "Tan & <Sons> 'Ltd' \"Co\"",
            "count": "3",
            "flag": "1",
            "empty": "",
            "nothing": "",
            "unicode": "Zoë 東京",
            "list": ["a", {"b": "c"}, ["d"]],
            "empty_dict": {},
            'key "with" <markup>': "x",
        },
    }


def test_encode_escapes_markup_and_quotes():
    body = encode_envelope({"k&<>": "a&b<c>d'e\"f", "empty": {}})

    assert b'<item key="k&amp;&lt;&gt;">a&amp;b&lt;c&gt;d&apos;e&quot;f</item>' in body
    assert b'<item key="empty"><dt_assoc/></item>' in body


def test_encode_refuses_characters_xml_cannot_carry():
    with pytest.raises(EnvelopeError):
        encode_envelope({"bad": "a\x00b"})


def test_decode_sorts_array_items_numerically_and_reads_empty_items():
    raw = b"""<?xml version='1.0' encoding='UTF-8' standalone='no' ?>
<!DOCTYPE OPS_envelope SYSTEM 'ops.dtd'>
<OPS_envelope>
  <header><version>0.9</version></header>
  <body>
    <data_block>
      <dt_assoc>
        <item key="is_success">1</item>
        <item key="permission"/>
        <item key="encoding_type"></item>
        <item key="text">  R&amp;D &lt;team&gt;  </item>
        <item key="list">
          <dt_array>
            <item key="10">ten</item>
            <item key="2">two</item>
            <item key="0">zero</item>
            <item key="1"><dt_assoc><item key="name">one</item></dt_assoc></item>
          </dt_array>
        </item>
      </dt_assoc>
    </data_block>
  </body>
</OPS_envelope>"""

    decoded = decode_envelope(raw)

    assert decoded == {
        "is_success": "1",
        "permission": "",
        "encoding_type": "",
        "text": "R&D <team>",
        "list": ["zero", {"name": "one"}, "two", "ten"],
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not xml",
        b"<OPS_envelope><body><data_block>",
        b"<other><body><data_block><dt_assoc/></data_block></body></other>",
        b"<OPS_envelope><body><data_block><dt_scalar>x</dt_scalar></data_block></body>"
        b"</OPS_envelope>",
        b"<OPS_envelope><body><data_block><dt_array><item key='x'>1</item></dt_array>"
        b"</data_block></body></OPS_envelope>",
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><OPS_envelope><body><data_block><dt_assoc>'
        b"<item key='a'>&a;</item></dt_assoc></data_block></body></OPS_envelope>",
        DEEPLY_NESTED,
    ],
    ids=["empty", "text", "truncated", "wrong-root", "scalar", "bad-array-key", "entity", "deep"],
)
def test_decode_rejects_anything_but_an_envelope_holding_a_dt_assoc(raw):
    with pytest.raises(EnvelopeError):
        decode_envelope(raw)


def test_errors_survive_pickling_with_code_text_and_exchange(fake_opensrs, opensrs):
    with pytest.raises(DomainNotInAccount) as excinfo:
        opensrs.get_owner_contact("unknown-domain.test")

    copy = pickle.loads(pickle.dumps(excinfo.value))  # noqa: S301 - our own bytes

    assert type(copy) is DomainNotInAccount
    assert (copy.code, copy.text, str(copy)) == (
        415,
        "Authentication Error.",
        "415 Authentication Error.",
    )
    assert copy.exchange == excinfo.value.exchange
    assert type(copy)(*copy.args).code == 415


def test_redact_hides_passwords_and_cookies_at_any_depth():
    data = {"cookie": "c", "attributes": {"reg_password": "p", "list": [{"password": "q"}]}}

    assert redact(data) == {
        "cookie": REDACTED,
        "attributes": {"reg_password": REDACTED, "list": [{"password": REDACTED}]},
    }


# --- client over HTTP -----------------------------------------------------------------------------


def test_get_owner_contact_returns_the_address_on_the_registration_record(fake_opensrs, opensrs):
    # when
    contact = opensrs.get_owner_contact("bob-reseller.test")

    # then
    assert contact == OwnerContact(
        email="dns-admin@bob-reseller.test",
        first_name="Bob",
        last_name="Lim",
        org_name="Bob Lim Reseller",
    )
    assert fake_opensrs.calls[-1]["domain"] == "bob-reseller.test"
    assert opensrs.last_exchange is not None
    assert opensrs.last_exchange.response_code == 200


def test_wrong_key_raises_auth_error_and_is_not_retried(fake_opensrs, sleeps):
    client = OpenSRSClient(fake_opensrs.url, USERNAME, "wrong-key", sleep=sleeps.append)

    with pytest.raises(OpenSRSAuthError) as excinfo:
        client.get_owner_contact("alice-shop.test")

    assert excinfo.value.code == 401
    assert fake_opensrs.request_count == 1
    assert sleeps == []


def test_unknown_user_raises_auth_error(fake_opensrs):
    client = OpenSRSClient(fake_opensrs.url, "someone-else", KEY)

    with pytest.raises(OpenSRSAuthError):
        client.get_owner_contact("alice-shop.test")


@pytest.mark.parametrize("domain", ["unknown-domain.test", "elsewhere.test"])
def test_domain_we_do_not_manage_raises_domain_not_in_account(fake_opensrs, opensrs, domain):
    fake_opensrs.add_domain("elsewhere.test", "x@elsewhere.test", in_account=False)

    with pytest.raises(DomainNotInAccount) as excinfo:
        opensrs.get_owner_contact(domain)

    assert excinfo.value.code == 415
    assert fake_opensrs.request_count == 1


def test_http_500_once_is_retried_and_then_succeeds(fake_opensrs, opensrs, sleeps):
    # given
    fake_opensrs.set_fault("http500", count=1)

    # when
    contact = opensrs.get_owner_contact("alice-shop.test")

    # then
    assert contact.email == "alice@example.test"
    assert fake_opensrs.request_count == 2
    assert len(sleeps) == 1


def test_persisting_transient_error_is_raised_after_read_retries(fake_opensrs, opensrs, sleeps):
    fake_opensrs.set_fault("rate_limit")

    with pytest.raises(OpenSRSTransientError) as excinfo:
        opensrs.get_owner_contact("alice-shop.test")

    assert excinfo.value.code == 310
    assert fake_opensrs.request_count == 1 + opensrs.read_retries
    # exponential backoff with jitter: attempt n waits between backoff*2^(n-1) and twice that
    assert len(sleeps) == opensrs.read_retries
    for attempt, delay in enumerate(sleeps, start=1):
        base = opensrs.backoff * 2 ** (attempt - 1)
        assert base <= delay <= 2 * base


@pytest.mark.parametrize(
    ("fault", "code"),
    [("empty", None), ("truncated", None), ("drop", None), ("code:705", 705), ("code:400", 400)],
)
def test_transport_and_server_trouble_is_transient(fake_opensrs, fault, code):
    fake_opensrs.set_fault(fault)
    client = OpenSRSClient(fake_opensrs.url, USERNAME, KEY, read_retries=0)

    with pytest.raises(OpenSRSTransientError) as excinfo:
        client.get_owner_contact("alice-shop.test")

    assert excinfo.value.code == code
    assert not isinstance(excinfo.value, OpenSRSTimeout)


@pytest.mark.parametrize("code", [420, 430, 435, 460, 465])
def test_other_error_codes_raise_request_error(fake_opensrs, opensrs, sleeps, code):
    fake_opensrs.set_fault(f"code:{code}")

    with pytest.raises(OpenSRSRequestError) as excinfo:
        opensrs.get_owner_contact("alice-shop.test")

    assert excinfo.value.code == code
    assert sleeps == []


def test_stalled_server_raises_timeout_quickly(fake_opensrs):
    # given
    fake_opensrs.set_fault("stall", delay=30)
    client = OpenSRSClient(
        fake_opensrs.url, USERNAME, KEY, read_timeout=0.5, read_retries=1, sleep=lambda _: None
    )
    started = time.monotonic()

    # when
    with pytest.raises(OpenSRSTimeout):
        client.get_owner_contact("alice-shop.test")

    # then
    assert time.monotonic() - started < 5
    assert fake_opensrs.request_count == 2


def test_connection_refused_is_transient():
    client = OpenSRSClient(f"http://127.0.0.1:{_closed_port()}/", USERNAME, KEY, read_retries=0)

    with pytest.raises(OpenSRSTransientError):
        client.get_owner_contact("alice-shop.test")


def test_send_password_emails_the_owner_once_and_no_one_else(
    fake_opensrs, opensrs, mailoutbox, settings
):
    # when
    reply = opensrs.send_password("alice-shop.test")

    # then
    assert (reply.code, reply.text, reply.is_success) == (200, "Message sent", True)
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["alice@example.test"]
    assert message.cc == []
    assert message.bcc == []
    assert message.subject == "Password reset request for alice-shop.test"
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert settings.OPENSRS_MANAGE_URL.rstrip("/") + "/" in message.body
    assert fake_opensrs.sent_mail[0]["link"] in message.body
    assert reply.request_summary["attributes"] == {
        "domain_name": "alice-shop.test",
        "send_to": "owner",
        "sub_user": "0",
    }


def test_send_password_to_admin_uses_the_admin_contact(fake_opensrs, opensrs, mailoutbox):
    fake_opensrs.add_domain("split.test", "owner@split.test", admin_email="admin@split.test")

    opensrs.send_password("split.test", send_to="admin")

    assert [m.to for m in mailoutbox] == [["admin@split.test"]]


def test_send_password_rejects_other_recipients_before_calling(fake_opensrs, opensrs):
    with pytest.raises(ValueError, match="send_to"):
        opensrs.send_password("alice-shop.test", send_to="someone@example.test")

    assert fake_opensrs.request_count == 0


def test_send_password_for_foreign_domain_raises_domain_not_in_account(opensrs, mailoutbox):
    with pytest.raises(DomainNotInAccount):
        opensrs.send_password("not-ours.test")

    assert mailoutbox == []


def test_send_password_read_timeout_is_outcome_unknown_and_not_retried(
    fake_opensrs, sleeps, mailoutbox
):
    # given: the fake answers (and mails) after the client has given up
    fake_opensrs.set_fault("stall", delay=1.0)
    client = OpenSRSClient(
        fake_opensrs.url, USERNAME, KEY, read_timeout=0.3, read_retries=3, sleep=sleeps.append
    )

    # when
    with pytest.raises(OpenSRSOutcomeUnknown) as excinfo:
        client.send_password("alice-shop.test")

    # then
    assert not isinstance(excinfo.value, OpenSRSTransientError)
    assert excinfo.value.exchange is not None
    assert excinfo.value.exchange.outcome == "unknown"
    assert fake_opensrs.wait_idle(timeout=5)
    assert fake_opensrs.request_count == 1
    assert sleeps == []
    assert [m.to for m in mailoutbox] == [["alice@example.test"]]


def test_send_password_dropped_connection_is_outcome_unknown(fake_opensrs, opensrs, sleeps):
    fake_opensrs.set_fault("drop")

    with pytest.raises(OpenSRSOutcomeUnknown):
        opensrs.send_password("alice-shop.test")

    assert fake_opensrs.request_count == 1
    assert sleeps == []


def test_send_password_connection_refused_is_transient_so_the_caller_may_retry(mailoutbox):
    client = OpenSRSClient(f"http://127.0.0.1:{_closed_port()}/", USERNAME, KEY)

    with pytest.raises(OpenSRSTransientError) as excinfo:
        client.send_password("alice-shop.test")

    assert not isinstance(excinfo.value, OpenSRSOutcomeUnknown)
    assert mailoutbox == []


def test_send_password_server_error_is_outcome_unknown_and_not_retried(
    fake_opensrs, opensrs, sleeps
):
    # given OpenSRS answers HTTP 500 to the request it was sent (whether it acted, no client
    # can tell)
    fake_opensrs.set_fault("http500", count=1)

    # when, then: not "nothing was sent", which a caller may retry into a second email
    with pytest.raises(OpenSRSOutcomeUnknown):
        opensrs.send_password("alice-shop.test")

    assert fake_opensrs.request_count == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 503])
def test_a_read_answered_with_a_server_error_is_still_retried(
    fake_opensrs, opensrs, sleeps, status
):
    # given a read answered once with a server error
    answer_with_status(fake_opensrs, status, action=b"GET", count=1)

    # when, then: a read does no harm twice, so it is tried again and succeeds
    assert opensrs.get_owner_contact("alice-shop.test").email == "alice@example.test"
    assert fake_opensrs.request_count == 2
    assert len(sleeps) == 1


def answer_with_status(server, status: int, *, action: bytes = b"SEND_PASSWORD", count=None):
    """Make OpenSRS act on `action` (SEND_PASSWORD mails the owner), then answer HTTP `status`.

    The first `count` such requests (every one when None).
    """
    original = server.handle_http
    answered = []

    def handle(method, path, headers, body):
        reply = original(method, path, headers, body)
        if action in body and (count is None or len(answered) < count):
            answered.append(status)
            reply.status, reply.body, reply.content_type = status, b"Server Error", "text/plain"
        return reply

    server.handle_http = handle


def answer_send_password_with(server, raw: bytes) -> None:
    """Make OpenSRS act on SEND_PASSWORD (mail the owner), then answer it with `raw`."""
    original = server.handle_http

    def handle(method, path, headers, body):
        reply = original(method, path, headers, body)
        if b"SEND_PASSWORD" in body:
            reply.body = raw
        return reply

    server.handle_http = handle


@pytest.mark.parametrize(
    "answer", ["truncated", "no_outcome", "deep", "too_long", "empty", "blank", "other_object"]
)
def test_send_password_answered_unreadably_is_outcome_unknown_and_not_retried(
    fake_opensrs, opensrs, sleeps, mailoutbox, monkeypatch, answer
):
    # given: OpenSRS acted on the request (mailed the owner) and then answered HTTP 200 with
    # a reply that says nothing we can read: cut short, without is_success, nested too deep,
    # too long to read, with no body at all, or a success for another command's object
    if answer in {"empty", "blank"}:
        answer_send_password_with(fake_opensrs, b"" if answer == "empty" else b" \r\n\t")
    elif answer == "other_object":
        answer_send_password_with(
            fake_opensrs, encode_envelope(ops_reply("COOKIE", 200, attributes={"cookie": "x"}))
        )
    elif answer == "truncated":
        fake_opensrs.set_fault("truncated", count=1)
    elif answer == "deep":
        answer_send_password_with(fake_opensrs, DEEPLY_NESTED)
    elif answer == "too_long":
        monkeypatch.setattr(opensrs_module, "MAX_REPLY_BYTES", 64 * 1024, raising=False)
        answer_send_password_with(fake_opensrs, b" " * (65 * 1024))
    else:
        original = fake_opensrs._send_password

        def acted_without_outcome(*args, **kwargs):
            reply = original(*args, **kwargs)
            return {k: v for k, v in reply.items() if k != "is_success"}

        fake_opensrs._send_password = acted_without_outcome

    # when
    with pytest.raises(OpenSRSOutcomeUnknown) as excinfo:
        opensrs.send_password("alice-shop.test")

    # then: not "nothing was sent", which a caller may retry into a second email
    assert excinfo.value.exchange is not None
    assert excinfo.value.exchange.outcome == "unknown"
    assert fake_opensrs.request_count == 1
    assert sleeps == []
    assert [m.to for m in mailoutbox] == [["alice@example.test"]]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_send_password_answered_with_a_server_error_is_outcome_unknown_and_not_retried(
    fake_opensrs, opensrs, sleeps, mailoutbox, status
):
    # given: OpenSRS acted on the request (mailed the owner), and then it, or the gateway in
    # front of it, answered with a server error instead of its reply
    answer_with_status(fake_opensrs, status)

    # when
    with pytest.raises(OpenSRSOutcomeUnknown) as excinfo:
        opensrs.send_password("alice-shop.test")

    # then: not "nothing was sent", which a caller may retry into a second email
    assert excinfo.value.exchange.outcome == "unknown"
    assert fake_opensrs.request_count == 1
    assert sleeps == []
    assert [m.to for m in mailoutbox] == [["alice@example.test"]]


def test_a_contact_change_answered_for_another_domain_is_outcome_unknown(fake_opensrs, opensrs):
    # given: OpenSRS's success reply to our MODIFY carries the per-domain result of another
    # domain, not ours (an answer to another request)
    original = fake_opensrs._modify

    def answer_for_another_domain(*args, **kwargs):
        reply = original(*args, **kwargs)
        details = reply["attributes"]["details"]
        reply["attributes"]["details"] = {"other-shop.test": details.popitem()[1]}
        return reply

    fake_opensrs._modify = answer_for_another_domain
    owner = fake_opensrs.domains["alice-shop.test"].contacts["owner"]

    # when, then: not a success, and not "nothing was done" either (a caller may not retry it)
    with pytest.raises(OpenSRSOutcomeUnknown) as excinfo:
        opensrs.modify_contacts("alice-shop.test", {"owner": {**owner, "email": "n@alice.test"}})
    assert "alice-shop.test" in str(excinfo.value)
    assert fake_opensrs.request_count == 1


def test_a_read_behind_a_failed_gateway_is_tried_again(fake_opensrs, opensrs, sleeps):
    original = fake_opensrs.handle_http
    failed = []

    def handle(method, path, headers, body):
        reply = original(method, path, headers, body)
        if not failed:
            failed.append(True)
            reply.status, reply.body, reply.content_type = 502, b"Bad Gateway", "text/plain"
        return reply

    fake_opensrs.handle_http = handle

    assert opensrs.get_owner_contact("alice-shop.test")
    assert fake_opensrs.request_count == 2


def test_a_reply_past_the_size_limit_is_not_read(fake_opensrs, opensrs, sleeps, monkeypatch):
    # given OpenSRS answers a read with a body past the limit (made small here)
    monkeypatch.setattr(opensrs_module, "MAX_REPLY_BYTES", 64 * 1024, raising=False)
    original = fake_opensrs.handle_http

    def handle(method, path, headers, body):
        reply = original(method, path, headers, body)
        reply.body = reply.body + b" " * (65 * 1024)
        return reply

    fake_opensrs.handle_http = handle

    # when, then: a transient failure of a read, tried again, never held whole
    with pytest.raises(OpenSRSTransientError) as excinfo:
        opensrs.get_owner_contact("alice-shop.test")
    assert "bytes" in str(excinfo.value)
    assert fake_opensrs.request_count == 1 + opensrs.read_retries


def test_audit_hook_sees_every_attempt(fake_opensrs):
    exchanges: list[OpenSRSExchange] = []
    client = OpenSRSClient(
        fake_opensrs.url, USERNAME, KEY, sleep=lambda _: None, audit_hook=exchanges.append
    )
    fake_opensrs.set_fault("http500", count=1)

    client.get_owner_contact("alice-shop.test")

    assert [(e.attempt, e.outcome, e.response_code) for e in exchanges] == [
        (1, "transient", None),
        (2, "success", 200),
    ]
    assert {(e.action, e.object, e.domain) for e in exchanges} == {
        ("GET", "DOMAIN", "alice-shop.test")
    }
    assert all(e.duration_ms >= 0 for e in exchanges)
    assert client.last_exchange == exchanges[-1]


def test_summaries_redact_passwords_and_cookies(fake_opensrs, opensrs):
    with pytest.raises(OpenSRSRequestError) as excinfo:
        opensrs.call(
            "CHANGE",
            "PASSWORD",
            {"reg_password": "new-secret"},
            idempotent=False,
            domain="alice-shop.test",
            cookie="session-cookie",
        )

    exchange = excinfo.value.exchange
    assert excinfo.value.code == 430
    assert exchange is not None
    assert exchange.request_summary["cookie"] == REDACTED
    assert exchange.request_summary["attributes"] == {"reg_password": REDACTED}
    assert "new-secret" not in repr(exchange)
    assert fake_opensrs.calls[-1]["attributes"] == {"reg_password": REDACTED}


def test_lookup_of_a_taken_domain_is_a_success_with_code_211(opensrs):
    reply = opensrs.call("LOOKUP", "DOMAIN", {"domain": "alice-shop.test"}, idempotent=True)

    assert (reply.is_success, reply.code, reply.attributes["status"]) == (True, 211, "taken")


def test_client_from_settings_reads_the_opensrs_settings(fake_opensrs, settings):
    settings.OPENSRS_URL = fake_opensrs.url
    settings.OPENSRS_USERNAME = USERNAME
    settings.OPENSRS_KEY = KEY
    settings.OPENSRS_CONNECT_TIMEOUT = 2
    settings.OPENSRS_READ_TIMEOUT = 3

    client = client_from_settings()

    assert (client.connect_timeout, client.read_timeout) == (2, 3)
    assert client.get_owner_contact("stale-mail.test").email == "carol@defunct.test"
