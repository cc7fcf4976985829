"""The staff ticket page measured in process: Python calls, CPU time, queries and its HTML.

Not a timing of the machine: figures the load does not move (calls, queries) and one it moves
little (CPU time of this process), for comparing two trees of the code on the same bench
database, used read-only (`bench/queue.py` seeds it):

    .venv/bin/python bench/ticket_profile.py calls [--tree DIR]
    .venv/bin/python bench/ticket_profile.py cpu --requests 40 [--tree DIR]
    .venv/bin/python bench/ticket_profile.py html --out DIR [--tree DIR]

`--tree` runs another checkout's code (a copy of main, say) with this script. The database is
`BENCH_DATABASE_URL`'s (`hd_bench`, or `hd_bench_1m`); the cache is the Redis database that
`BENCH_REDIS_URL` gives the settings (its number counted from the top) and is flushed before
each case, so name one nothing else uses. Sessions are in a signed cookie and the login
signal's receivers are off, so that logging in writes nothing; for `html` the clock is frozen
at 09:00 UTC and the CSRF tokens are masked, so that two trees print comparable pages.
Cases: an agent and a supervisor, each on the three history tickets (1, 51 and 401 messages),
the first seeded closed ticket and the first change request, in English (`calls`, `cpu`) and in
English, Malay and English again (`html`: the words kept per language).
"""

import argparse
import cProfile
import json
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path


def _setup(tree: Path) -> None:
    sys.path[0] = str(tree)  # not bench/, whose queue.py would stand for the standard one
    os.chdir(tree)
    from django.conf import settings

    from bench.common import REDIS_URL, django_setup

    django_setup(REDIS_URL=REDIS_URL, CACHE_KEY_PREFIX="ticket-profile")
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        "-c default_transaction_read_only=on"
    )
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.receivers = []


def _cases() -> list[tuple[str, str]]:
    from bench.queue import HISTORY_ROUNDS, HISTORY_SUBJECT
    from tickets.models import CHANGE_REQUEST_KINDS, Ticket

    cases = []
    for rounds in HISTORY_ROUNDS:
        ticket = Ticket.objects.filter(subject=HISTORY_SUBJECT.format(rounds=rounds)).first()
        if ticket is not None:
            cases.append((f"{2 * rounds + 1} messages", ticket.reference))
    closed = Ticket.objects.filter(status="closed", customer__isnull=False).order_by("id").first()
    if closed is not None:
        cases.append(("a seeded closed ticket", closed.reference))
    change = (
        Ticket.objects.filter(kind__in=CHANGE_REQUEST_KINDS, changes__isnull=False)
        .order_by("id")
        .first()
    )
    if change is not None:
        cases.append(("a change request", change.reference))
    return cases


def _client(who: str, language: str):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=who))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def _get(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def _each_case(languages: tuple[str, ...]):
    from django.core.cache import cache

    cases = _cases()
    for who in ("agent", "supervisor"):
        for language in languages:
            client = _client(who, language)
            for label, reference in cases:
                cache.clear()
                yield f"{who}, {label}, {language}", client, f"/staff/tickets/{reference}/"


def calls(rounds: int = 5) -> dict[str, dict[str, int]]:
    """Calls (cProfile's, primitive or not) and queries of one request, after 3 warm-ups."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    figures = {}
    for case, client, url in _each_case(("en",)):
        for _ in range(3):
            _get(client, url)
        with CaptureQueriesContext(connection) as queries:
            _get(client, url)
        count = len(queries)  # read now: the next request empties the log it reads
        profile = cProfile.Profile()
        for _ in range(rounds):
            profile.runcall(_get, client, url)
        total = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
        figures[case] = {"calls": total // rounds, "queries": count}
    return figures


def cpu(requests: int) -> dict[str, float]:
    """The median CPU time of a request in ms (`time.process_time`), after 3 warm-ups."""
    figures = {}
    for case, client, url in _each_case(("en",)):
        for _ in range(3):
            _get(client, url)
        times = []
        for _ in range(requests):
            start = time.process_time()
            _get(client, url)
            times.append(time.process_time() - start)
        figures[case] = round(statistics.median(times) * 1000, 3)
    return figures


CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def html(out: Path) -> dict[str, int]:
    """Each case's page (and its whole history) in English and Malay, CSRF tokens masked."""
    import time_machine

    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    with time_machine.travel("2026-12-08 09:00:00+00:00", tick=False):
        for case, client, url in _each_case(("en", "ms", "en")):
            for suffix, query in (("", ""), (", whole", "?history=all")):
                page = CSRF.sub('name="csrfmiddlewaretoken" value="…"', _get(client, url + query))
                name = re.sub(r"[^a-z0-9]+", "-", (case + suffix).lower()).strip("-")
                (out / f"{name}.html").write_text(page)
                sizes[case + suffix] = len(page)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("calls", "cpu", "html"))
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("var/bench/ticket-html"))
    args = parser.parse_args()
    out = args.out.resolve()
    _setup(args.tree.resolve())
    if args.what == "calls":
        result: object = calls()
    elif args.what == "cpu":
        result = cpu(args.requests)
    else:
        result = html(out)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
