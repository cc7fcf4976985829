"""The Bahasa Melayu catalogue is complete, keeps every placeholder, and the pages use it."""

import ast
import gettext
import re
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import TicketFactory
from tickets import services
from tickets.emails import render_email

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "ms" / "LC_MESSAGES"
PO_FILE = LOCALE_DIR / "django.po"
MO_FILE = LOCALE_DIR / "django.mo"

# What must survive translation untouched: %(name)s, %s, %d, {name}, HTML tags and entities.
PLACEHOLDER = re.compile(
    r"%\([^)]+\)[#0 +-]*\d*(?:\.\d+)?[sdifr]|%[sdif]|\{[A-Za-z_]\w*\}|<[^>]+>|&#?\w+;"
)
_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")$")


def _unquote(text: str) -> str:
    return ast.literal_eval(text)


def read_po(path: Path) -> list[dict]:
    """Every entry of a .po file: msgid, msgid_plural, msgstr (a list) and its flags."""
    entries: list[dict] = []
    entry: dict | None = None
    field: tuple[str, int] | None = None

    def start() -> dict:
        return {"flags": set(), "msgid": None, "msgid_plural": None, "msgstr": {}}

    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if entry is None or (line.startswith("#") and entry["msgid"] is not None):
            if entry is not None:
                entries.append(entry)
            entry, field = start(), None
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match:
            keyword, index, value = match.groups()
            if keyword == "msgid" and entry["msgid"] is not None:
                entries.append(entry)
                entry = start()
            if keyword.startswith("msgstr"):
                field = ("msgstr", int(index or 0))
                entry["msgstr"][field[1]] = _unquote(value)
            else:
                field = (keyword, -1)
                entry[keyword] = _unquote(value)
        elif line.startswith('"') and field is not None:
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += _unquote(line)
            else:
                entry[field[0]] += _unquote(line)
    if entry is not None and entry["msgid"] is not None:
        entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def catalogue() -> list[dict]:
    entries = read_po(PO_FILE)
    assert entries[0]["msgid"] == ""
    return entries[1:]


def _label(entry: dict) -> str:
    return repr(entry["msgid"][:70])


def test_the_header_keeps_language_charset_and_plural_forms():
    header = read_po(PO_FILE)[0]["msgstr"][0]

    assert "Language: ms\n" in header
    assert "charset=UTF-8" in header
    assert "Plural-Forms: nplurals=1; plural=0;" in header


def test_every_entry_is_translated_and_none_is_fuzzy(catalogue):
    assert len(catalogue) > 100
    fuzzy = [_label(e) for e in catalogue if "fuzzy" in e["flags"]]
    empty = [_label(e) for e in catalogue if not all(e["msgstr"].values())]
    # nplurals=1: a plural entry has exactly one form
    plural_forms = [_label(e) for e in catalogue if e["msgid_plural"] and set(e["msgstr"]) != {0}]

    assert fuzzy == []
    assert empty == []
    assert plural_forms == []


def _edges(text: str) -> tuple[str, str]:
    """The whitespace and newlines a string starts and ends with."""
    return text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]


def test_every_placeholder_and_tag_is_kept(catalogue):
    problems = []
    for entry in catalogue:
        source = entry["msgid_plural"] or entry["msgid"]
        for translation in entry["msgstr"].values():
            if Counter(PLACEHOLDER.findall(source)) != Counter(PLACEHOLDER.findall(translation)):
                problems.append(f"{_label(entry)}: placeholders differ")
            if _edges(source) != _edges(translation):
                problems.append(f"{_label(entry)}: leading or trailing whitespace differs")

    assert problems == []


def test_the_compiled_catalogue_matches_the_po_file(catalogue):
    with MO_FILE.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)

    stale = []
    for entry in catalogue:
        if entry["msgid_plural"]:
            found = compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1)
        else:
            found = compiled.gettext(entry["msgid"])
        if found != entry["msgstr"][0]:
            stale.append(_label(entry))

    assert stale == [], "run `make messages` to recompile django.mo"


# --- pages and emails in Bahasa Melayu ---


def in_malay(client):
    """`client` with the language cookie the language switcher sets."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ms"
    return client


@pytest.fixture
def malay(client):
    return in_malay(client)


def assert_malay(response, malay_texts, english_texts):
    assert response.status_code in (200, 400, 409), response.status_code
    html = response.content.decode()
    assert 'lang="ms"' in html
    for text in malay_texts:
        assert text in html
    for text in english_texts:
        assert text not in html


@pytest.mark.django_db
def test_the_home_page_follows_the_language_cookie(malay):
    assert_malay(
        malay.get("/"),
        ["Bagaimana kami boleh membantu?", "Hentikan kiriman mel"],
        ["How can we help?", "Stop mailings"],
    )


@pytest.mark.django_db
def test_the_opt_out_page_follows_accept_language(client):
    assert_malay(
        client.get("/requests/opt-out/", HTTP_ACCEPT_LANGUAGE="ms"),
        ["Hentikan kiriman mel ini", "Mel produk (berita dan tawaran daripada support@)"],
        ["Stop these mailings", "Every mailing we send also has an unsubscribe link"],
    )


def test_the_mailing_preferences_page_is_in_malay(alice_client):
    malay = in_malay(alice_client)
    assert_malay(
        malay.get("/my/preferences/"),
        ["Pilihan kiriman mel", "Simpan pilihan saya"],
        ["Mailing preferences", "Save my preferences", "Untick a box"],
    )


def test_the_unsubscribe_pages_are_in_malay(malay, alice):
    token = services.unsubscribe_token(customer=alice, list_name="product_mailings")
    assert_malay(
        malay.get(f"/unsubscribe/{token}/"),
        ["Berhenti melanggan", "Tekan butang untuk berhenti menerima mel produk kami."],
        ["Unsubscribe", "Press the button"],
    )
    assert_malay(
        malay.get("/unsubscribe/not-a-token/"),
        ["Pautan berhenti melanggan ini tidak sah."],
        ["This unsubscribe link is not valid", "Stop mailings another way"],
    )


def test_the_staff_queue_and_ticket_pages_are_in_malay(agent_client):
    malay = in_malay(agent_client)
    ticket = TicketFactory()
    assert_malay(
        malay.get("/staff/"),
        ["Baris gilir tiket", "Isih mengikut", "Keutamaan", "ejen"],
        ["Ticket queue", "Sort by", "Apply filters", "Assignee"],
    )
    assert_malay(
        malay.get(f"/staff/tickets/{ticket.reference}/"),
        ["Nota dalaman", "Tugaskan kepada saya", "Balasan sedia ada"],
        ["Internal note", "Assign to me", "Canned response", "Audit trail"],
    )


def test_the_staff_dashboard_is_in_malay(supervisor_client):
    malay = in_malay(supervisor_client)
    assert_malay(
        malay.get("/staff/dashboard/"),
        ["Papan pemuka", "E-mel yang gagal atau melantun", "Mengikut ejen", "penyelia"],
        ["Dashboard", "Approvals waiting", "See them"],
    )


@pytest.mark.parametrize(
    ("template", "context", "malay_text", "english_text"),
    [
        (
            "tickets/opt_out_confirmed",
            {"lists": ["product_mailings"], "preferences_url": "https://x.test/my/preferences/"},
            "Seperti yang anda minta, kami telah berhenti menghantar kepada anda:",
            "As you asked",
        ),
        (
            "tickets/opt_out_link",
            {
                "unsubscribe_links": [{"list": "product_mailings", "url": "https://x.test/u/"}],
                "preferences_url": "https://x.test/my/preferences/",
            },
            "Jika anda yang memintanya, hentikan setiap kiriman mel dengan satu klik:",
            "If you asked for it",
        ),
        (
            "tickets/mailing",
            {
                "subject": "Berita",
                "body": "Teks.",
                "full_name": "Alice Tan",
                "list_name": "product_mailings",
                "unsubscribe_url": "https://x.test/u/",
                "preferences_url": "https://x.test/p/",
            },
            "Berhenti melanggan dengan satu klik",
            "Unsubscribe with one click",
        ),
    ],
)
def test_emails_are_rendered_in_malay(template, context, malay_text, english_text):
    subject, text, html = render_email(template, context, language="ms")

    for part in (text, html):
        assert malay_text in part
        assert english_text not in part
    assert "We will never ask for your password" not in text
    if template == "tickets/opt_out_confirmed":
        assert subject == "Pilihan kiriman mel anda telah dikemas kini"


def test_a_refused_staff_action_says_why_in_malay(agent_client, supervisor, alice):
    malay = in_malay(agent_client)
    # given an agent working in Malay loaded the ticket before a supervisor changed it
    ticket = TicketFactory(customer=alice)
    services.ticket_priority_set(ticket=ticket, priority="high", actor=supervisor)

    # when the agent's older form arrives
    response = malay.post(
        f"/staff/tickets/{ticket.reference}/reply/", {"version": 1, "body": "Draf saya"}
    )

    # then the reason is given in Malay, not in English
    assert_malay(
        response,
        ["Tiket ini telah diubah oleh orang lain sejak anda membukanya."],
        [services.STALE_TICKET],
    )


def test_service_errors_are_translated_but_logged_as_raised():
    from django.utils import translation

    from helpdesk.exceptions import TransitionNotAllowed

    with translation.override("ms"):
        error = TransitionNotAllowed(services.NOTHING_TO_APPROVE)

    assert error.message == "Tiada apa-apa untuk diluluskan pada tiket ini."
    assert str(error) == services.NOTHING_TO_APPROVE
