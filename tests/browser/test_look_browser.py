"""Every portal and staff page in a real browser: accessibility, weight, origin, small screens.

Each page is loaded twice: in English in the light colour scheme and in Malay in the dark one, so
that each language and each scheme is checked (contrast depends on the scheme, layout and labels
on the language; a crossed pair would check nothing more, at twice the time). On every load:
axe-core finds no violation, nothing is fetched from another origin, and the page with its CSS,
scripts and icons weighs at most PAGE_BUDGET once compressed. At 390 px wide nothing scrolls
sideways and every tap target is at least 24 px (or spaced as WCAG 2.5.8 allows).
"""

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, expect

from tests.factories import TicketFactory
from tests.tickets.verification_helpers import anonymous_lookups, link_token, verification_mail
from tickets import services
from tickets.models import Attachment, Message, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE_BUDGET = 60 * 1024
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
MODES = [("en", "light"), ("ms", "dark")]
TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
AXE = Axe()

# A WCAG 2.5.8 check of tap targets: at least 24 x 24 px, or a link inside a sentence, or no other
# target within the 24 px square centred on it.
TAP_TARGETS_JS = """() => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary';
  const visible = e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden';
  };
  const els = [...document.querySelectorAll(selector)].filter(visible);
  const rects = els.map(e => e.getBoundingClientRect());
  const inSentence = e => getComputedStyle(e).display === 'inline' &&
    [...e.parentElement.childNodes].some(n => n !== e && n.nodeType === 3 && n.textContent.trim());
  const small = [];
  els.forEach((e, i) => {
    const r = rects[i];
    if ((r.width >= 24 && r.height >= 24) || inSentence(e)) return;
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const crowded = rects.some((o, j) => j !== i && !els[j].contains(e) && !e.contains(els[j]) &&
      o.left < x + 12 && o.right > x - 12 && o.top < y + 12 && o.bottom > y - 12);
    const size = `${Math.round(r.width)}x${Math.round(r.height)}`;
    if (crowded) small.push(`${e.outerHTML.slice(0, 80)} ${size}`);
  });
  return small;
}"""


@dataclass
class Visit:
    """What one page load fetched: every URL, and the compressed and raw bytes."""

    urls: list[str] = field(default_factory=list)
    compressed: int = 0
    raw: int = 0


@dataclass
class Findings:
    """Problems found over many page loads, reported together."""

    problems: list[str] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)

    def add(self, where: str, what: object) -> None:
        self.problems.append(f"{where}: {what}")


def _session_cookie(user) -> str:
    """The session of `user` (a staff user, or a customer's login) logged in."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _context(browser: Browser, base_url: str, language: str, scheme: str, session: str | None):
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", color_scheme=scheme)
    cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base_url}]
    if session:
        cookies.append({"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url})
    context.add_cookies(cookies)
    return context


def _page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(10_000)
    # Every page is weighed as a first visit: nothing comes from the browser's cache.
    context.new_cdp_session(page).send("Network.setCacheDisabled", {"cacheDisabled": True})
    return page


def _load(page: Page, url: str) -> Visit:
    """Open `url` and weigh what it fetched; bodies are compressed as gzip would send them."""
    visit = Visit()
    responses: list[Response] = []

    def on_request(request: Request) -> None:
        visit.urls.append(request.url)

    def on_response(response: Response) -> None:
        responses.append(response)

    page.on("request", on_request)
    page.on("response", on_response)
    page.goto(url, wait_until="load")
    page.remove_listener("request", on_request)
    page.remove_listener("response", on_response)
    for response in responses:
        if response.status >= 300 and response.status < 400:
            continue
        body = response.body()
        kind = response.headers.get("content-type", "")
        visit.raw += len(body)
        text = kind.startswith(TEXT_TYPES)
        visit.compressed += len(gzip.compress(body, 6)) if text else len(body)
    return visit


def _check_pages(
    browser: Browser, base_url: str, paths: dict[str, str], session: str | None, phone: bool
) -> Findings:
    """Load every page in every mode; return what is wrong (and the heaviest load per page)."""
    findings = Findings()
    for language, scheme in MODES:
        context = _context(browser, base_url, language, scheme, session)
        page = _page(context)
        for name, path in paths.items():
            where = f"{name} ({language}, {scheme})"
            visit = _load(page, base_url + path)
            assert page.locator("html").get_attribute("lang") == language, where
            foreign = [u for u in visit.urls if not u.startswith((base_url, "data:"))]
            if foreign:
                findings.add(where, f"requests to another origin {foreign}")
            findings.weights[name] = max(findings.weights.get(name, 0), visit.compressed)
            if visit.compressed > PAGE_BUDGET:
                findings.add(where, f"{visit.compressed} bytes compressed")
            violations = AXE.run(page).response["violations"]
            for violation in violations:
                targets = [node["target"] for node in violation["nodes"]][:3]
                findings.add(where, f"axe {violation['id']} ({violation['impact']}) at {targets}")
            if phone:
                page.set_viewport_size(PHONE)
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > PHONE["width"]:
                    findings.add(where, f"scrolls sideways at 390 px ({width} px wide)")
                for target in page.evaluate(TAP_TARGETS_JS):
                    findings.add(where, f"tap target under 24 px: {target}")
                page.set_viewport_size(DESKTOP)
        context.close()
    return findings


def _report(findings: Findings, label: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with (SCREENSHOTS / "page-weights.txt").open("a") as out:
        for name, size in sorted(findings.weights.items()):
            out.write(f"{label}\t{name}\t{size}\n")
    assert findings.weights, "no page was weighed"
    assert not findings.problems, "\n".join(findings.problems)


@pytest.fixture
def status_token(db) -> str:
    ticket = Ticket.objects.create(
        kind="general",
        subject="Email bounces",
        contact_email="dan@example.test",
        status="awaiting_customer",
    )
    first = Message.objects.create(ticket=ticket, author="customer", body="Mail bounces.")
    Message.objects.create(ticket=ticket, author="staff", body="Which address bounces?")
    for name, status in (("bounce.png", "clean"), ("log.txt", "pending")):
        Attachment.objects.create(
            message=first,
            filename=name,
            content_type="text/plain",
            size=9,
            content=b"x" * 9,
            scan_status=status,
        )
    link = services.status_link_issue(ticket=ticket, send_to="dan@example.test")
    return link.rstrip("/").rsplit("/", 1)[-1]


def _done_session(base_url: str) -> str:
    """A visitor's session that has just sent a general request and a password resend."""
    client = Client()
    response = client.post(
        "/requests/new/",
        {"subject": "Invoice", "message": "Where is my invoice?", "email": "dan@example.test"},
    )
    assert response.status_code == 303
    response = client.post("/requests/password/", {"domain": "alice-shop.test"})
    assert response.status_code == 303
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_every_public_portal_page_passes_axe_fits_390_px_and_stays_light(
    live_server, browser, alice, status_token, fake_opensrs
):
    # given the pages a visitor without an account reaches, a request just sent among them
    verify = services.request_modify(
        email=alice.email,
        customer=None,
        changes={"city": "Ipoh"},
        note="",
        client_key="10.0.0.9",
        actor="anonymous",
        channel=Ticket.Channel.PORTAL,
    )
    anonymous_lookups()
    paths = {
        "home": "/",
        "general request": "/requests/new/",
        "modify request": "/requests/modify/",
        "password request": "/requests/password/",
        "opt-out request": "/requests/opt-out/",
        "track": "/track/",
        "status page": f"/track/{status_token}/",
        "unknown status link": "/track/not-a-real-token-at-all/",
        "verify": f"/verify/{link_token(verification_mail(verify))}/",
        "request received": "/requests/new/done/",
        "password request received": "/requests/password/done/",
        "log in": "/accounts/login/",
        "password reset": "/accounts/password-reset/",
        "not found": "/no-such-page/",
    }

    # when each is loaded in both languages and both colour schemes
    findings = _check_pages(
        browser, live_server.url, paths, _done_session(live_server.url), phone=True
    )

    # then
    _report(findings, "public")


def test_every_customer_page_passes_axe_fits_390_px_and_stays_light(live_server, browser, alice):
    ticket = TicketFactory(customer=alice, subject="Website is slow", status="awaiting_customer")
    Message.objects.create(ticket=ticket, author="staff", body="Which page is slow?")
    paths = {
        "my requests": "/my/",
        "my request": f"/my/tickets/{ticket.reference}/",
        "preferences": "/my/preferences/",
        "api tokens": "/accounts/tokens/",
    }

    session = _session_cookie(alice.user)
    findings = _check_pages(browser, live_server.url, paths, session, phone=True)

    _report(findings, "customer")


def test_every_staff_page_passes_axe_and_stays_light(
    live_server, browser, supervisor, alice, monkeypatch
):
    # A first visit is weighed up to its load event. On a busy machine the ticket page can take
    # longer to load than its presence poll's period; the poll would then be weighed too and its
    # body, read after the page moved on, be gone. The poll has tests of its own.
    monkeypatch.setattr("tickets.staff.ticket.PRESENCE_POLL_SECONDS", 3600)
    ticket = TicketFactory(customer=alice, subject="Website is slow")
    Message.objects.create(ticket=ticket, author="customer", body="The shop page is slow.")
    TicketFactory(subject="Refund", contact_email="eve@example.test", status="awaiting_customer")
    paths = {
        "queue": "/staff/",
        "empty queue": "/staff/?q=nothing-matches-this",
        "ticket": f"/staff/tickets/{ticket.reference}/",
        "dashboard": "/staff/dashboard/",
        "approvals": "/staff/approvals/",
        "audit log": "/staff/audit/",
        "customer": f"/staff/customers/{alice.number}/",
        "new disclosure": f"/staff/customers/{alice.number}/disclosures/new/",
    }

    findings = _check_pages(
        browser, live_server.url, paths, _session_cookie(supervisor), phone=True
    )

    _report(findings, "staff")


def _shots(page: Page, name: str) -> None:
    """Save the page at 1280 and 390 px wide as var/screenshots/<name>-<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport['width']}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_the_home_cards_line_up_and_the_language_choice_applies_at_once_and_stays(
    live_server, page, alice
):
    # given the home page
    page.goto(f"{live_server.url}/")

    # then the four buttons have one height and one place in cards as tall as their row
    cards = [card.bounding_box() for card in page.locator(".card").all()]
    buttons = [button.bounding_box() for button in page.locator(".card .button").all()]
    assert len(buttons) == 4
    assert len({round(b["height"]) for b in buttons}) == 1, buttons
    rows: dict[int, set[int]] = {}
    for card in cards:
        rows.setdefault(round(card["y"]), set()).add(round(card["height"]))
    assert all(len(heights) == 1 for heights in rows.values()), cards
    gaps = {round(c["y"] + c["height"] - b["y"]) for c, b in zip(cards, buttons, strict=True)}
    assert len(gaps) == 1, (cards, buttons)
    # and every card carries an icon from the page's own sprite (no image request)
    assert page.locator(".card svg.icon use").count() == 4
    assert page.locator("#i-help").count() == 1
    _shots(page, "home")

    # and the keyboard focus ring is visible on a button
    page.locator(".card .button").first.focus()
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert ring[0] != "none" and ring[1] >= 2

    # when the visitor picks Bahasa Melayu: no separate "Change" button, the page changes at once
    expect(page.get_by_role("button", name="Change")).to_have_count(0)
    page.get_by_role("button", name="Bahasa Melayu").click()
    expect(page.locator("html")).to_have_attribute("lang", "ms")

    # then the choice is remembered on the next page
    page.goto(f"{live_server.url}/track/")
    expect(page.locator("html")).to_have_attribute("lang", "ms")
    expect(page.locator(".lang-current")).to_have_text("Bahasa Melayu")


def test_the_dark_scheme_follows_the_system_setting(live_server, browser):
    for scheme, dark in (("light", False), ("dark", True)):
        context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
        page = context.new_page()
        page.goto(f"{live_server.url}/")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(n) for n in re.findall(r"\d+", background)[:3])
        assert (red + green + blue < 3 * 64) is dark, (scheme, background)
        if dark:
            _shots(page, "home-dark")
        context.close()


def test_a_request_form_and_the_status_page_at_1280_and_390_px(live_server, page, status_token):
    page.goto(f"{live_server.url}/requests/new/")
    expect(page.get_by_role("button", name="Send my request")).to_be_visible()
    _shots(page, "request-form")
    # on a phone the submit button spans the form, and is at least the height of a fingertip
    page.set_viewport_size(PHONE)
    button = page.get_by_role("button", name="Send my request").bounding_box()
    form = page.locator("form.request-form").bounding_box()
    assert button["height"] >= 44
    assert button["width"] > form["width"] * 0.8

    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/track/{status_token}/")
    expect(page.locator("[aria-current=step]")).to_contain_text("We are waiting for your reply")
    expect(page.locator(".attachments li")).to_have_count(2)
    expect(page.locator(".attachments a")).to_have_text("bounce.png")
    _shots(page, "status")


def test_my_requests_become_cards_on_a_phone_and_say_so_when_there_are_none(
    live_server, browser, alice, bob
):
    for n in range(3):
        TicketFactory(customer=alice, subject=f"Question {n} about a long invoice reference")
    context = _context(browser, live_server.url, "en", "light", _session_cookie(alice.user))
    page = _page(context)
    page.goto(f"{live_server.url}/my/")
    expect(page.locator("tbody tr")).to_have_count(3)

    # at 1280 px a table with its header row
    expect(page.locator("thead")).to_be_visible()
    _shots(page, "my-requests")

    # at 390 px one card per request, each value named by its column, nothing scrolls sideways
    page.set_viewport_size(PHONE)
    rows = page.locator("tbody tr").all()
    assert all(row.evaluate("r => getComputedStyle(r).display") == "block" for row in rows)
    label = (
        page.locator("tbody td").nth(3).evaluate("td => getComputedStyle(td, '::before').content")
    )
    assert label == '"Status"'
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    widths = [row.bounding_box()["width"] for row in rows]
    assert min(widths) > 300
    context.close()

    # and a customer with no requests sees an empty state that leads to a new one
    context = _context(browser, live_server.url, "en", "light", _session_cookie(bob.user))
    page = _page(context)
    page.goto(f"{live_server.url}/my/")
    expect(page.locator(".empty-state")).to_contain_text("You have no requests yet.")
    page.locator(".empty-state").get_by_role("link", name="Make a new request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("How can we help?")
    context.close()


def test_the_staff_queue_becomes_cards_on_a_phone_says_when_nothing_matches_and_speaks_malay(
    live_server, browser, agent, alice
):
    for n in range(3):
        TicketFactory(customer=alice, subject=f"Website {n} is slow since the move")
    context = _context(browser, live_server.url, "en", "light", _session_cookie(agent))
    page = _page(context)
    page.goto(f"{live_server.url}/staff/")
    expect(page.locator("tbody tr")).to_have_count(3)
    _shots(page, "staff-queue")

    page.set_viewport_size(PHONE)
    rows = page.locator("tbody tr").all()
    assert all(row.evaluate("r => getComputedStyle(r).display") == "block" for row in rows)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # the row's tick box is still there, and big enough to hit
    tick = rows[0].locator("input.bulk-check").bounding_box()
    assert tick["width"] >= 24 and tick["height"] >= 24

    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/staff/?q=nothing-matches-this")
    expect(page.locator(".empty-state")).to_contain_text("No tickets match these filters.")
    page.locator(".empty-state").get_by_role("link", name="Reset").click()
    expect(page.locator("tbody tr")).to_have_count(3)

    # and staff switch the language in one click too (from the footer), and it stays
    page.get_by_role("button", name="Bahasa Melayu").click()
    expect(page.locator("html")).to_have_attribute("lang", "ms")
    page.goto(f"{live_server.url}/staff/dashboard/")
    expect(page.locator("html")).to_have_attribute("lang", "ms")
    context.close()
