"""Anonymous requests take the same time whoever they name: known vs unknown, interleaved.

For each anonymous API request (modify, opt-out, password resend) and each anonymous portal
form (the same three, `/accounts/password-reset/` and `/track/`, posted with the CSRF cookie
and token of one GET, as a browser does), 200 requests naming a target on record (Alice's
address, her domain, a real reference) and 200 naming one that is not, alternating on one
connection to gunicorn (1 sync worker), after a warm-up. The worker is not running: the
lookups wait in Redis, which is flushed afterwards.

Run: .venv/bin/python bench/timing.py [--requests 200]
"""
# ruff: noqa: E402

from __future__ import annotations

import os.path
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import http.client
import json
import re
import subprocess
import time
from urllib.parse import urlencode

from bench.common import (
    BIN,
    DATABASE_URL,
    LOOPBACK,
    PYTHON,
    REDIS_URL,
    ROOT,
    Proc,
    bench_env,
    free_port,
    median,
    migrate,
    percentile,
    record,
    redis_flush,
    row,
    verdict,
    wait_port,
)

TIMING_DATABASE_URL = DATABASE_URL + "_timing"
# (name, path, body naming a target on record, body naming one that is not)
CASES = (
    (
        "modify",
        "/api/v1/requests/modify/",
        {"email": "alice@example.test", "changes": {"city": "Ipoh"}},
        {"email": "nobody@example.test", "changes": {"city": "Ipoh"}},
    ),
    (
        "opt-out",
        "/api/v1/requests/opt-out/",
        {"email": "alice@example.test", "lists": ["product_mailings"]},
        {"email": "nobody@example.test", "lists": ["product_mailings"]},
    ),
    (
        "password resend",
        "/api/v1/requests/password-resend/",
        {"domain": "alice-shop.test", "contact_email": "me@typed.test"},
        {"domain": "nobody-owns-this.test", "contact_email": "me@typed.test"},
    ),
)


# (name, form page, fields naming a target on record, fields naming one that is not); the
# track case's reference is filled in by main() with a ticket made for the purpose.
FORM_CASES = (
    (
        "form: modify",
        "/requests/modify/",
        {"email_on_record": "alice@example.test", "city": "Ipoh"},
        {"email_on_record": "nobody@example.test", "city": "Ipoh"},
    ),
    (
        "form: opt-out",
        "/requests/opt-out/",
        {"email": "alice@example.test", "lists": "product_mailings"},
        {"email": "nobody@example.test", "lists": "product_mailings"},
    ),
    (
        "form: password resend",
        "/requests/password/",
        {"domain": "alice-shop.test", "contact_email": "me@typed.test"},
        {"domain": "nobody-owns-this.test", "contact_email": "me@typed.test"},
    ),
    (
        "form: account password reset",
        "/accounts/password-reset/",
        {"email": "alice@example.test"},
        {"email": "nobody@example.test"},
    ),
    (
        "form: track",
        "/track/",
        {"reference": "", "email": "me@typed.test"},
        {"reference": "HD-00000000", "email": "nobody@example.test"},
    ),
)
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class FormClient:
    """One browser: its cookies, and the CSRF token of the form page it loaded."""

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.cookies: dict[str, str] = {}
        self.token = ""

    def _send(
        self, method: str, path: str, body: str = ""
    ) -> tuple[http.client.HTTPResponse, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body or None, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response, content

    def load(self, path: str) -> None:
        response, content = self._send("GET", path)
        found = CSRF_FIELD.search(content.decode())
        if response.status != 200 or not found:
            raise RuntimeError(f"GET {path}: {response.status}, no CSRF token")
        self.token = found.group(1)

    def post(self, path: str, fields: dict) -> tuple[float, int]:
        body = urlencode({"csrfmiddlewaretoken": self.token, **fields})
        start = time.perf_counter()
        response, _ = self._send("POST", path, body)
        return time.perf_counter() - start, response.status


def _post(conn: http.client.HTTPConnection, path: str, body: dict) -> tuple[float, int]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    start = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    response.read()
    return time.perf_counter() - start, response.status


def _interleaved(send, known: dict, unknown: dict, requests: int) -> dict:
    """Warm up, then `requests` of each, alternating (and which goes first alternates too)."""
    for _ in range(20):
        send(known)
        send(unknown)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    statuses: set[int] = set()
    for i in range(requests * 2):
        which = "known" if (i % 2 == 0) == (i // 2 % 2 == 0) else "unknown"
        took, status = send(known if which == "known" else unknown)
        times[which].append(took)
        statuses.add(status)
    k50, u50 = median(times["known"]), median(times["unknown"])
    return {
        "statuses": sorted(statuses),
        "known_p50": k50 * 1000,
        "known_p95": percentile(times["known"], 95) * 1000,
        "unknown_p50": u50 * 1000,
        "unknown_p95": percentile(times["unknown"], 95) * 1000,
        "gap": abs(k50 - u50) / min(k50, u50),
    }


def measure(port: int, requests: int, reference: str) -> list[dict]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    results = []
    try:
        for name, path, known, unknown in CASES:
            result = _interleaved(
                lambda body, p=path: _post(conn, p, body), known, unknown, requests
            )
            results.append({"name": name, "expected": [202], **result})
        for name, path, known, unknown in FORM_CASES:
            if "reference" in known:
                known = {**known, "reference": reference}
            browser = FormClient(conn)
            browser.load(path)
            result = _interleaved(
                lambda fields, p=path, b=browser: b.post(p, fields), known, unknown, requests
            )
            # Every form answers with a redirect to its done page (POST-redirect-GET): 303,
            # or Django's own 302 for the account password reset.
            expected = [302] if path.startswith("/accounts/") else [303]
            results.append({"name": name, "expected": expected, **result})
    finally:
        conn.close()
    return results


def _reference_for_track(port: int) -> str:
    """A real request whose reference and address the track form's "known" case names."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        body = {"domain": "alice-shop.test", "contact_email": "me@typed.test"}
        conn.request(
            "POST",
            "/api/v1/requests/password-resend/",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        return json.loads(conn.getresponse().read())["reference"]
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="per target and endpoint")
    args = parser.parse_args()

    migrate(TIMING_DATABASE_URL)
    env = bench_env(DATABASE_URL=TIMING_DATABASE_URL, DEBUG="1")
    subprocess.run([PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
    redis_flush(REDIS_URL)
    port = free_port()
    gunicorn = Proc(
        "gunicorn-timing",
        [str(BIN / "gunicorn"), "helpdesk.wsgi", "--bind", f"{LOOPBACK}:{port}", "--workers", "1"],
        env=bench_env(DATABASE_URL=TIMING_DATABASE_URL),
    )
    try:
        if not wait_port(port, 30):
            print("gunicorn did not start; see var/bench/gunicorn-timing.log")
            return 1
        time.sleep(1.0)
        results = measure(port, args.requests, _reference_for_track(port))
    finally:
        gunicorn.stop()
        redis_flush(REDIS_URL)
    rows = []
    for r in results:
        ok = r["gap"] <= 0.10 and r["statuses"] == r["expected"]
        line = (
            f"known p50 {r['known_p50']:.1f} ms p95 {r['known_p95']:.1f} ms; unknown p50 "
            f"{r['unknown_p50']:.1f} ms p95 {r['unknown_p95']:.1f} ms; medians "
            f"{r['gap'] * 100:.1f} % apart"
        )
        print(f"  {r['name']:28s} {line} (statuses {r['statuses']}): {verdict(ok)}")
        rows.append(row(f"timing: {r['name']}", line, "medians within 10 %", verdict(ok)))
    record("timing", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
