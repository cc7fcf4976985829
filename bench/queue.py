"""Staff queue and API list on 100,000 tickets in PostgreSQL: server time and query counts.

Run: .venv/bin/python bench/queue.py [--reseed] [--tickets 100000] [--repeat 15]
[--only queue,dashboard,ticket,bulk]
"""

from __future__ import annotations

import os.path
import sys

if __name__ == "__main__":
    # Run as a script, this folder must not shadow the standard library (bench/queue.py vs
    # `queue`); imported as bench.queue (the seeder's test), sys.path is left alone.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import heapq
import html
import json
import random
import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from bench.common import (
    DATABASE_URL,
    OUT,
    PYTHON,
    django_setup,
    drop_database,
    median,
    migrate,
    percentile,
    record,
    row,
    verdict,
)

STAFF = ["agent", "supervisor", *[f"agent{n:02d}" for n in range(1, 9)]]
CUSTOMERS = 5000
SEED_RANDOM = 20260101


def _weighted(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


STATUS_WEIGHTS = {
    "new": 2,
    "awaiting_verification": 5,
    "open": 15,
    "awaiting_customer": 8,
    "resolved": 25,
    "closed": 35,
    "rejected": 4,
    "referred": 2,
    "expired": 4,
}
KIND_WEIGHTS = {"modify_info": 35, "resend_password": 35, "opt_out": 15, "general": 15}
PRIORITY_WEIGHTS = {"low": 15, "normal": 60, "high": 20, "urgent": 5}
# The customers' first messages, for the message-text search: chosen by ticket number (not by
# the seeded random stream). One in 40 asks about "DNS records", one in 997 about
# "nameserver glue"; some are in Malay.
MESSAGE_TEXTS = [
    "Please update the DNS records for my shop.",
    "My website shows an error since this morning.",
    "Tolong kemaskini alamat saya.",
    "I cannot log in to the control panel.",
    "Bila domain saya akan diperbaharui?",
    "The invoice amount looks wrong.",
    "Email to my customers bounces back.",
    "Sila hantar semula kata laluan domain.",
    *[f"Question number {n} about hosting." for n in range(32)],
]
RARE_MESSAGE = "The nameserver glue for my domain is missing."
SUBJECTS = {
    "modify_info": "Change my details",
    "resend_password": "Password resend for {domain}",
    "opt_out": "Stop mailings",
    "general": "Question about {domain}",
}


def _copy(raw, table: str, columns: list[str], rows) -> None:
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for values in rows:
            copy.write_row(values)


def _reserve_ids(raw, table: str, count: int) -> int:
    """Move the id sequence past `count` new ids; return the first one."""
    with raw.cursor() as cur:
        cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        cur.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
        sequence = cur.fetchone()[0]
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        start = int(cur.fetchone()[0]) + 1
        cur.execute("SELECT setval(%s, %s)", [sequence, start + count - 1])
    return start


def vacuum() -> None:
    """VACUUM (ANALYZE) what the queue reads, as autovacuum would have done by now.

    Autovacuum may be off on the bench server; index-only scans need the visibility map, and
    the trigram indexes' pending lists grow with every insert until a vacuum merges them.
    """
    from django.db import connection

    with connection.cursor() as cur:
        for table in (
            "tickets_ticket",
            "tickets_ticketdailystat",
            "tickets_ticketmonthlystat",
            "tickets_fieldchange",
            "tickets_message",
            "tickets_actionlog",
            "tickets_notification",  # the ticket page's emails; the bulk cases write some
            "accounts_customer",
            "domains_domain",
        ):
            cur.execute(f"VACUUM (ANALYZE) {table}")


# Tickets are written in chunks: a million tickets' rows never sit in memory at once.
SEED_CHUNK = 50_000
# Tickets seeded through the services with this many reply rounds (a staff reply and the
# customer's answer each), for the staff ticket page whatever the length of its history.
HISTORY_ROUNDS = (0, 25, 200)
HISTORY_PREFIX = "Bench history "
HISTORY_SUBJECT = HISTORY_PREFIX + "{rounds}"
# Tables whose secondary indexes are dropped during the COPY and built again afterwards
# (one sort per index instead of a million inserts into each, GIN ones included).
SEEDED_TABLES = ("tickets_ticket", "tickets_message", "tickets_fieldchange", "tickets_actionlog")


class _StatSource(NamedTuple):
    kind: str
    created_at: datetime
    first_response_at: datetime | None
    first_response_by_id: int | None
    resolved_at: datetime | None
    assignee_id: int | None
    due_at: datetime | None
    closed_at: datetime | None


def _indexes_dropped(raw) -> list[str]:
    """Drop the seeded tables' secondary indexes (not those of constraints); return their DDL."""
    with raw.cursor() as cur:
        cur.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            [list(SEEDED_TABLES)],
        )
        found = cur.fetchall()
        for name, _ddl in found:
            cur.execute(f'DROP INDEX "{name}"')
    return [ddl for _name, ddl in found]


def _reference(rng: random.Random, alphabet: str) -> str:
    bits = rng.getrandbits(40)
    return "HD-" + "".join(alphabet[(bits >> (5 * i)) & 31] for i in range(8))


def seed(
    total: int,
    *,
    customer_count: int = CUSTOMERS,
    history_rounds: tuple[int, ...] = HISTORY_ROUNDS,
    vacuumed: bool = True,
) -> dict:
    """Add `total` tickets with changes, messages, chained audit rows and daily figures.

    `customer_count`, `history_rounds` and `vacuumed=False` (VACUUM cannot run in a transaction)
    are for the seeder's test, which seeds a few tickets into the test database.
    Returns the seconds taken and the row counts.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from accounts.models import Customer
    from accounts.services import roles_ensure
    from domains.models import Domain
    from tickets.audit import audit_canonical, audit_row_hash
    from tickets.models import REFERENCE_ALPHABET, AuditChainHead, Ticket
    from tickets.services import ticket_due_at
    from tickets.services.search import ticket_search_documents_rebuild
    from tickets.services.stats import STAT_FIELDS, stat_rows_add, ticket_stat_figures

    started = time.perf_counter()
    rng = random.Random(SEED_RANDOM + total)
    groups = roles_ensure()
    user_model = get_user_model()
    staff = []
    for name in STAFF:
        user, _created = user_model.objects.get_or_create(
            username=name, defaults={"is_staff": True, "password": "!"}
        )
        user.groups.set([groups["supervisors" if name == "supervisor" else "agents"]])
        staff.append(user)
    existing = set(Customer.objects.values_list("email", flat=True))
    new_customers = [
        Customer(
            number=f"C{80_000_000 + i}",
            full_name=f"Bench Customer {i}",
            email=f"bench-customer-{i}@example.test",
            phone=f"+6012{i:07d}",
            city="Kuala Lumpur",
            country="MY",
        )
        for i in range(customer_count)
        if f"bench-customer-{i}@example.test" not in existing
    ]
    Customer.objects.bulk_create(new_customers, batch_size=2000, ignore_conflicts=True)
    customers = list(
        Customer.objects.filter(email__startswith="bench-customer-").values_list("id", "number")
    )
    Domain.objects.bulk_create(
        [
            Domain(
                name=f"shop-{cid}.bench.test",
                customer_id=cid,
                registrant_email=f"owner-{cid}@example.test",
            )
            for cid, _number in customers
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    domain_of = dict(
        Domain.objects.filter(name__endswith=".bench.test").values_list("customer_id", "id")
    )
    number_of = dict(customers)
    references = set(Ticket.objects.values_list("reference", flat=True))
    now = datetime.now(UTC)
    # Creation times in order, so ids grow with time as in production, and the audit rows
    # (each ticket's creation, then its later change) are appended in time order.
    ages = sorted((rng.uniform(60, 365 * 86400) for _ in range(total)), reverse=True)
    ticket_cols = [
        "id",
        "created_at",
        "updated_at",
        "reference",
        "kind",
        "status",
        "customer_id",
        "domain_id",
        "contact_email",
        "requested_domain",
        "subject",
        "priority",
        "channel",
        "assignee_id",
        "due_at",
        "resolved_at",
        "closed_at",
        "language",
        "version",
        "verified_by",
        "sla_paused_at",
        "sla_paused_total",
        "first_response_at",
        "first_response_by_id",
        "requester_version",
        "requester_updated_at",
    ]
    message_cols = [
        "created_at",
        "updated_at",
        "ticket_id",
        "author",
        "author_user_id",
        "body",
        "internal",
        "channel",
    ]
    change_cols = [
        "created_at",
        "updated_at",
        "ticket_id",
        "field",
        "old_value",
        "new_value",
        "applied_at",
    ]
    audit_cols = [
        "sequence",
        "created_at",
        "actor",
        "action",
        "ticket_id",
        "customer_id",
        "details",
        "prev_hash",
        "hash",
    ]
    counts = dict.fromkeys(("tickets", "changes", "messages", "audit rows", "daily rows"), 0)
    stats: dict = {}
    with transaction.atomic():
        raw = connection.connection
        with raw.cursor() as cur:
            # No foreign-key triggers per row: the rows are made consistent here.
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        indexes = _indexes_dropped(raw)
        first_ticket = _reserve_ids(raw, "tickets_ticket", total)
        # The audit rows continue the existing chain under the head row's lock, in time order.
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        chain = {"sequence": head.sequence, "last": head.last_hash}
        later: list = []  # heap of (time, ticket number, event) still to append
        audit_rows: list = []

        def append(event) -> None:
            created, action, pk, reference, customer_id, customer_number, details = event
            chain["sequence"] += 1
            canonical = audit_canonical(
                sequence=chain["sequence"],
                created_at=created.isoformat(),
                actor="system",
                action=action,
                ticket=reference,
                customer=customer_number,
                details=details,
            )
            row_hash = audit_row_hash(chain["last"], canonical)
            audit_rows.append(
                (
                    chain["sequence"],
                    created,
                    "system",
                    action,
                    pk,
                    customer_id,
                    json.dumps(details),
                    chain["last"],
                    row_hash,
                )
            )
            chain["last"] = row_hash

        for chunk_start in range(0, total, SEED_CHUNK):
            tickets, changes, messages = [], [], []
            for n in range(chunk_start, min(total, chunk_start + SEED_CHUNK)):
                pk = first_ticket + n
                reference = _reference(rng, REFERENCE_ALPHABET)
                while reference in references:
                    reference = _reference(rng, REFERENCE_ALPHABET)
                references.add(reference)
                kind = _weighted(rng, KIND_WEIGHTS)
                status = _weighted(rng, STATUS_WEIGHTS)
                priority = _weighted(rng, PRIORITY_WEIGHTS)
                cid, _number = customers[rng.randrange(len(customers))]
                anonymous = kind == "resend_password" and rng.random() < 0.3
                customer_id = None if anonymous else cid
                domain_id = domain_of.get(cid) if kind in ("resend_password", "general") else None
                domain_name = f"shop-{cid}.bench.test"
                created = now - timedelta(seconds=ages[n])
                updated = min(now, created + timedelta(seconds=rng.uniform(0, 5 * 86400)))
                is_open = status in ("new", "awaiting_verification", "open", "awaiting_customer")
                worker = staff[rng.randrange(len(staff))].pk if rng.random() < 0.6 else None
                assignee = worker if (is_open or rng.random() < 0.5) else None
                resolved = updated if status in ("resolved", "closed") else None
                closed = updated if status == "closed" else None
                answered = not is_open or rng.random() < 0.5
                due = ticket_due_at(kind=kind, priority=priority, start=created)
                paused = (
                    updated if status in ("awaiting_customer", "awaiting_verification") else None
                )
                tickets.append(
                    (
                        pk,
                        created,
                        updated,
                        reference,
                        kind,
                        status,
                        customer_id,
                        domain_id,
                        f"contact-{cid}@example.test",
                        domain_name if kind == "resend_password" else "",
                        SUBJECTS[kind].format(domain=domain_name),
                        priority,
                        rng.choice(["portal", "email", "api"]),
                        assignee,
                        due,
                        resolved,
                        closed,
                        "en",
                        2 if status != "new" else 1,
                        "",
                        paused,
                        timedelta(0),
                        updated if answered else None,
                        worker if answered else None,
                        2 if status != "new" else 1,
                        updated,
                    )
                )
                source = _StatSource(
                    kind,
                    created,
                    updated if answered else None,
                    worker if answered else None,
                    resolved,
                    assignee,
                    due,
                    closed,
                )
                for key, amounts in ticket_stat_figures(source).items():
                    row = stats.setdefault(key, dict.fromkeys(STAT_FIELDS, 0))
                    for field, amount in amounts.items():
                        row[field] += amount
                if kind == "modify_info":
                    for field in rng.sample(["phone", "address_line1", "city"], rng.randint(1, 2)):
                        changes.append(
                            (created, updated, pk, field, "old value", "new value", resolved)
                        )
                text = RARE_MESSAGE if n % 997 == 0 else MESSAGE_TEXTS[n % len(MESSAGE_TEXTS)]
                messages.append(
                    (
                        created,
                        created,
                        pk,
                        "customer",
                        None,
                        f"{reference}: {text}",
                        False,
                        "portal",
                    )
                )
                if answered:
                    messages.append(
                        (updated, updated, pk, "staff", worker, "We are on it.", False, "staff")
                    )
                customer_number = number_of[cid] if customer_id else ""
                while later and later[0][0] <= created:
                    append(heapq.heappop(later)[2])
                append(
                    (
                        created,
                        "ticket.created",
                        pk,
                        reference,
                        customer_id,
                        customer_number,
                        {"kind": kind, "status": "new", "channel": "portal"},
                    )
                )
                if status != "new":
                    event = (
                        updated,
                        "ticket.status_changed",
                        pk,
                        reference,
                        customer_id,
                        customer_number,
                        {"from": "new", "to": status},
                    )
                    heapq.heappush(later, (updated, n, event))
            _copy(raw, "tickets_ticket", ticket_cols, tickets)
            _copy(raw, "tickets_fieldchange", change_cols, changes)
            _copy(raw, "tickets_message", message_cols, messages)
            _copy(raw, "tickets_actionlog", audit_cols, audit_rows)
            counts["tickets"] += len(tickets)
            counts["changes"] += len(changes)
            counts["messages"] += len(messages)
            counts["audit rows"] += len(audit_rows)
            audit_rows.clear()
            print(
                f"  {counts['tickets']} tickets written at {time.perf_counter() - started:.1f} s",
                flush=True,
            )
        while later:
            append(heapq.heappop(later)[2])
        _copy(raw, "tickets_actionlog", audit_cols, audit_rows)
        counts["audit rows"] += len(audit_rows)
        AuditChainHead.objects.filter(pk=1).update(
            sequence=chain["sequence"], last_hash=chain["last"]
        )
        # The daily figures of the seeded tickets (and their months'), added to any already there.
        keys = sorted(stats)
        for batch in range(0, len(keys), 2000):
            stat_rows_add({key: stats[key] for key in keys[batch : batch + 2000]})
        counts["daily rows"] = len(stats)
        print(f"  rows written at {time.perf_counter() - started:.1f} s", flush=True)
        with raw.cursor() as cur:
            # Statistics first: the join of new tickets and messages is planned from them.
            cur.execute("ANALYZE tickets_ticket, tickets_message")
            documents = ticket_search_documents_rebuild(cur, from_id=first_ticket)
        print(
            f"  {documents} search documents written at {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        built = time.perf_counter()
        with raw.cursor() as cur:
            for ddl in indexes:
                cur.execute(ddl)
        print(f"  {len(indexes)} indexes built in {time.perf_counter() - built:.1f} s", flush=True)
    histories = _seed_histories(history_rounds)
    print(f"  history tickets made at {time.perf_counter() - started:.1f} s", flush=True)
    if vacuumed:
        vacuum()
    seconds = time.perf_counter() - started
    print(
        f"seeded {counts['tickets']} tickets, {counts['changes']} changes, "
        f"{counts['messages']} messages, {counts['audit rows']} audit rows, "
        f"{counts['daily rows']} daily rows and {histories} history tickets in {seconds:.1f} s"
    )
    return {"seconds": seconds, **counts}


def _seed_histories(history_rounds: tuple[int, ...]) -> int:
    """Tickets with each of `history_rounds` reply rounds, made through the services."""
    from django.contrib.auth import get_user_model

    from accounts.models import Customer
    from tickets import services
    from tickets.models import Ticket

    agent = get_user_model().objects.get(username="agent")
    customer = Customer.objects.filter(email__startswith="bench-customer-").order_by("id").first()
    made = 0
    for rounds in history_rounds:
        subject = HISTORY_SUBJECT.format(rounds=rounds)
        if Ticket.objects.filter(subject=subject).exists():
            continue
        ticket = services.ticket_create(
            kind="general",
            subject=subject,
            actor=customer,
            customer=customer,
            contact_email=customer.email,
            body="My site is down.",
            status="open",
        )
        services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
        for n in range(rounds):
            common = {"ticket": ticket, "channel": "staff"}
            services.ticket_reply_add(
                **common, body=f"Reply {n}", actor=agent, author="staff", author_user=agent
            )
            services.ticket_reply_add(
                **common, body=f"Answer {n}", actor=customer, author="customer"
            )
        made += 1
    return made


def _time(client, url: str, repeat: int) -> dict:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        response = client.get(url)
    if response.status_code != 200:
        return {"status": response.status_code, "times": [], "queries": 0, "body": b""}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    # The staff queue keeps its view counts a few seconds: the request that refills them makes
    # one query more. Of two requests in a row at most one refills, so take the smaller count.
    counts = []
    for _ in range(2):
        reset_queries()  # a full query log (9,000 entries) would count nothing
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        counts.append(len(captured.captured_queries))
    return {
        "status": response.status_code,
        "times": times,
        "queries": min(counts),
        "body": response.content,
    }


def _next_staff(body: bytes) -> str | None:
    found = re.search(r'href="\?([^"]*cursor=[^"]*)" rel="next"', body.decode())
    return "/staff/?" + html.unescape(found.group(1)) if found else None


def _next_api(body: bytes) -> str | None:
    url = json.loads(body).get("next")
    return url.split("testserver", 1)[-1] if url else None


def measure(repeat: int) -> list[dict]:
    from urllib.parse import quote

    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.models import Customer
    from tickets.models import Ticket

    user = get_user_model().objects.get(username="agent")
    client = Client()
    client.force_login(user)
    # The newest ticket of the seeded mix: not a history ticket, whose customer is the first
    # one (its name and email share their trigrams with thousands of others).
    sample = (
        Ticket.objects.filter(customer__isnull=False)
        .exclude(subject__startswith=HISTORY_PREFIX)
        .order_by("-id")
        .first()
    )
    customer = Customer.objects.get(pk=sample.customer_id)
    resolved = Ticket.objects.filter(status="resolved").order_by("id").first()
    # Part of a seeded name ("Bench Customer 4711") and of an email, as an agent types them.
    name_part = quote(customer.full_name[1:])
    email_part = quote(customer.email.split("@")[0][2:] + "@exa")
    staff_cases = [
        *[
            (f"view={v}", f"/staff/?view={v}")
            for v in ("open", "mine", "unassigned", "overdue", "awaiting_verification", "all")
        ],
        *[
            (f"view=all sort={s}", f"/staff/?view=all&sort={s}")
            for s in (
                "urgency",
                "due",
                "-due",
                "priority",
                "-priority",
                "created",
                "-created",
                "updated",
                "-updated",
            )
        ],
        ("status=closed", "/staff/?status=closed"),
        ("status=open sort=-created", "/staff/?status=open&sort=-created"),
        ("kind=resend_password", "/staff/?kind=resend_password"),
        ("assignee=agent01", "/staff/?view=all&assignee=agent01"),
        ("q=customer email", f"/staff/?view=all&q={customer.email}"),
        ("q=customer number", f"/staff/?view=all&q={customer.number}"),
        ("q=domain part", "/staff/?view=all&q=shop-12"),
        ("q=no match", "/staff/?view=all&q=zzz-nothing"),
        ("search: name trigram", f"/staff/?q={name_part}"),
        ("search: partial email", f"/staff/?q={email_part}"),
        # A part of most addresses and customers: walked in the page's order, not sorted.
        ("search: address part in most", "/staff/?q=example"),
        ("search: message text (2.5 %)", "/staff/?q=DNS%20records"),
        ("search: message text (0.1 %)", "/staff/?q=nameserver%20glue"),
        ("search: message word (Malay)", "/staff/?q=kemaskini"),
        # Typed otherwise than stored: its English stem `custom` is in 2.5 % of the documents
        # (and the word in every seeded name and address).
        ("search: a common word's stem", "/staff/?q=customer"),
        ("search: in the Open tab", "/staff/?view=open&in_view=1&q=DNS%20records"),
        ("size=25", "/staff/?view=open&size=25"),
        ("size=50", "/staff/?view=open&size=50"),
        ("size=100", "/staff/?view=open&size=100"),
    ]
    api_cases = [
        ("api (no filter)", "/api/v1/tickets/"),
        ("api status=open", "/api/v1/tickets/?status=open"),
        ("api kind=opt_out", "/api/v1/tickets/?kind=opt_out"),
        ("api assignee=agent01", "/api/v1/tickets/?assignee=agent01"),
        ("api q=reference", f"/api/v1/tickets/?q={sample.reference}"),
        ("api q=domain part", "/api/v1/tickets/?q=shop-12"),
        ("api q=no match", "/api/v1/tickets/?q=zzz-nothing"),
        ("api q=name trigram", f"/api/v1/tickets/?q={name_part}"),
        ("api q=message text", "/api/v1/tickets/?q=nameserver%20glue"),
        ("api page_size=25", "/api/v1/tickets/?page_size=25"),
        ("api page_size=100", "/api/v1/tickets/?page_size=100"),
    ]
    results = []
    for group, cases, next_of in (
        ("staff", staff_cases, _next_staff),
        ("api", api_cases, _next_api),
    ):
        for label, url in cases:
            figures = _time(client, url, repeat)
            results.append({"group": group, "label": label, **figures})
            if label in ("view=open", "api (no filter)", "view=all sort=-priority"):
                following = next_of(figures["body"]) if figures["status"] == 200 else None
                if following:
                    page2 = _time(client, following, repeat)
                    results.append({"group": group, "label": f"{label}, page 2", **page2})
    # The search box's jump: a reference answers with a redirect to its ticket (timed alone).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    jump = f"/staff/?q={resolved.reference.lower()}"
    times = []
    for i in range(repeat + 2):
        started = time.perf_counter()
        response = client.get(jump)
        if i >= 2:
            times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(jump)
    results.append(
        {
            "group": "staff",
            "label": "search: reference jump (302)",
            # Counted as answered when it is the redirect to the ticket.
            "status": 200 if response.status_code == 302 else response.status_code,
            "times": times,
            "queries": len(captured.captured_queries),
            "body": b"",
        }
    )
    return results


def _timed_get(client, label: str, group: str, url: str, repeat: int) -> dict:
    return {"group": group, "label": label, **_time(client, url, repeat)}


def measure_dashboard(repeat: int) -> list[dict]:
    """The dashboard over each range, as a supervisor (every agent) and as an agent."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tickets.selectors.dashboard import dashboard_today

    today = dashboard_today()
    year_ago = today - timedelta(days=365)
    cases = [
        ("dashboard (30 days)", "/staff/dashboard/"),
        ("dashboard range=7", "/staff/dashboard/?range=7"),
        ("dashboard range=90", "/staff/dashboard/?range=90"),
        (
            "dashboard custom 366 days",
            f"/staff/dashboard/?range=custom&start={year_ago:%Y-%m-%d}&end={today:%Y-%m-%d}",
        ),
    ]
    results = []
    for who in ("supervisor", "agent"):
        client = Client()
        client.force_login(get_user_model().objects.get(username=who))
        for label, url in cases:
            if who == "agent" and label != "dashboard range=90":
                continue
            results.append(_timed_get(client, f"{label}, {who}", "dashboard", url, repeat))
    return results


def measure_ticket_pages(repeat: int) -> list[dict]:
    """The staff ticket page of tickets with short and long histories."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tickets.models import Ticket

    client = Client()
    client.force_login(get_user_model().objects.get(username="agent"))
    results = []
    for rounds in HISTORY_ROUNDS:
        ticket = Ticket.objects.filter(subject=HISTORY_SUBJECT.format(rounds=rounds)).first()
        if ticket is None:
            continue
        url = f"/staff/tickets/{ticket.reference}/"
        label = f"ticket page, {2 * rounds + 1} messages"
        results.append(_timed_get(client, label, "ticket", url, repeat))
    seeded = Ticket.objects.filter(status="closed", customer__isnull=False).order_by("id").first()
    url = f"/staff/tickets/{seeded.reference}/"
    results.append(_timed_get(client, "ticket page, a seeded closed ticket", "ticket", url, repeat))
    return results


BULK_SIZE = 100
BULK_RUNS = 3


def measure_bulk() -> list[dict]:
    """POST /staff/bulk/ on 100 open tickets: assign, priority, resolve (fresh tickets each run)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tickets.models import Ticket

    client = Client()
    client.force_login(get_user_model().objects.get(username="agent"))
    # Not the history tickets, the newest open ones: the ticket page cases read them, and each
    # run would leave them changed (unassigned, 8 audit rows more) for the next one.
    open_ids = list(
        Ticket.objects.filter(status="open")
        .exclude(subject__startswith=HISTORY_PREFIX)
        .order_by("-id")
        .values_list("reference", flat=True)[: BULK_SIZE * (2 + BULK_RUNS + 1)]
    )
    same = open_ids[:BULK_SIZE]
    fresh = [open_ids[BULK_SIZE * (n + 1) : BULK_SIZE * (n + 2)] for n in range(1 + BULK_RUNS)]
    cases = [
        ("bulk assign to me, 100", [("assign_me", same), ("unassign", same)] * 2),
        ("bulk priority, 100", [("priority:high", same), ("priority:normal", same)] * 2),
        ("bulk resolve, 100", [("resolve", refs) for refs in fresh]),
    ]
    results = []
    for label, runs in cases:
        times, queries, failed = [], 0, 0
        for n, (action, refs) in enumerate(runs[: 1 + BULK_RUNS]):
            # The versions the queue would show: a ticket posted without its own is refused.
            versions = dict(
                Ticket.objects.filter(reference__in=refs).values_list("reference", "version")
            )
            form = {f"version-{ref}": str(version) for ref, version in versions.items()}
            reset_queries()
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as captured:
                response = client.post(
                    "/staff/bulk/",
                    {"action": action, "ticket": refs, "back": "view=open", **form},
                )
            took = (time.perf_counter() - started) * 1000
            # Timed only if it acted on every ticket: a refusal per ticket is a 302 too.
            after = dict(
                Ticket.objects.filter(reference__in=refs).values_list("reference", "version")
            )
            acted = sum(after[ref] != versions[ref] for ref in refs)
            if response.status_code != 302 or acted != len(refs):
                failed += 1
            if n:  # the first run warms up
                times.append(took)
                queries = len(captured.captured_queries)
        results.append(
            {
                "group": "bulk",
                "label": label,
                "status": 302 if not failed else 500,
                "times": times,
                "queries": queries,
                "body": b"",
            }
        )
    return results


# Median budgets (ms) by group, at 100,000 tickets and at 1,000,000 and more.
BUDGETS = {
    "staff": (30.0, 45.0),
    "api": (30.0, 45.0),
    "dashboard": (30.0, 30.0),
    "ticket": (15.0, 15.0),
    "bulk": (2000.0, 2000.0),
}
MESSAGE_TEXT_BUDGET_1M = 50.0


def budget_ms(group: str, label: str, tickets: int) -> float:
    small, large = BUDGETS[group]
    if tickets < 1_000_000:
        return small
    if "message text" in label:
        return MESSAGE_TEXT_BUDGET_1M
    return large


def database_url_for(tickets: int) -> str:
    """Each size has its database: the bench one for 100,000, `<it>_1m` for a million."""
    if tickets == 100_000:
        return DATABASE_URL
    suffix = f"{tickets // 1_000_000}m" if tickets % 1_000_000 == 0 else f"{tickets // 1000}k"
    return f"{DATABASE_URL}_{suffix}"


PARTS = ("queue", "dashboard", "ticket", "bulk")


def _prepare(tickets: int, reseed: bool) -> dict | None:
    """Seed (or reuse) the database of this size; return what seeding did (None: reused).

    Raises SystemExit when the seeded audit chain does not verify.
    """
    if reseed:
        drop_database()
    migrate()
    django_setup()
    from tickets.audit import audit_verify
    from tickets.models import Ticket

    have = Ticket.objects.count()
    seeded = None
    if have < tickets:
        seeded = seed(tickets - have)
        started = time.perf_counter()
        report = audit_verify()
        seeded["verify_seconds"] = time.perf_counter() - started
        seeded["chain"] = "intact" if report.ok else "BROKEN: " + report.problem
        print(
            f"audit chain: {seeded['chain']} ({report.rows} rows, verified in "
            f"{seeded['verify_seconds']:.1f} s)"
        )
        if not report.ok:
            raise SystemExit(1)
    else:
        print(f"reusing {have} tickets already in the bench database (--reseed to start over)")
        vacuum()  # the other scripts have written to it since
    # Each size's process has its own cache key prefix (the search keeps the planner's
    # statistics of its database in the cache for an hour: the 1,000,000 run must not plan with
    # the 100,000 one's); the cache starts empty.
    from django.core.cache import cache

    cache.clear()
    return seeded


def _part(name: str, repeat: int) -> list[dict]:
    runs = {
        "queue": lambda: measure(repeat),
        "dashboard": lambda: measure_dashboard(repeat),
        "ticket": lambda: measure_ticket_pages(repeat),
        "bulk": measure_bulk,
    }
    results = runs[name]()
    for item in results:
        item.pop("body", None)
    return results


READY = "@@bench-ready"
DONE = "@@bench-done"


def serve_size(tickets: int, repeat: int, reseed: bool, out: str) -> int:
    """A child process for one size: prepare its database, then time the parts asked for.

    Writes {"tickets", "seeded"} to `out` and prints READY; then reads lines "<part> <path>"
    on stdin, writes that part's results to <path> and prints DONE, until stdin closes.
    """
    seeded = _prepare(tickets, reseed)
    from tickets.models import Ticket

    with open(out, "w") as handle:
        json.dump({"tickets": Ticket.objects.count(), "seeded": seeded}, handle)
    print(READY, flush=True)
    for line in sys.stdin:
        name, path = line.split()
        with open(path, "w") as handle:
            json.dump(_part(name, repeat), handle)
        print(DONE, flush=True)
    return 0


def _constant(results: list[dict], group: str, pick) -> tuple[dict, bool | None]:
    counts = {i["label"]: i["queries"] for i in results if i["group"] == group and pick(i)}
    return counts, (len(set(counts.values())) == 1 if counts else None)


def report(sizes: list[int], runs: dict[int, dict], repeat: int) -> list[dict]:
    """Print every case at every size with its growth; return the summary rows."""
    rows = []
    for size in sizes:
        seeded = runs[size]["seeded"]
        if seeded:
            rows.append(
                row(
                    f"seeding {size:,} tickets",
                    f"{seeded['seconds']:.1f} s: {seeded['changes']:,} changes, "
                    f"{seeded['messages']:,} messages, {seeded['audit rows']:,} audit rows, "
                    f"{seeded['daily rows']:,} daily rows; chain {seeded['chain']} "
                    f"(verified in {seeded['verify_seconds']:.1f} s)",
                )
            )
    labels: list[tuple[str, str]] = []
    for size in sizes:
        for item in runs[size]["results"]:
            if (item["group"], item["label"]) not in labels:
                labels.append((item["group"], item["label"]))
    header = "".join(f" {f'{s // 1000}k median':>12s} {'p95':>7s} {'q':>3s}" for s in sizes)
    growth = " growth" if len(sizes) > 1 else ""
    print(f"\n{repeat} timed requests per case (3 per bulk case and round); ms, q = queries")
    print(f"{'case':44s}{header}{growth}")
    missed: dict[tuple[str, int], list[str]] = {}
    # The same table in Markdown, for bench/README.md.
    markdown = [
        "| case |"
        + "".join(f" {s // 1000}k median ms (p95, queries) |" for s in sizes)
        + (" growth |" if len(sizes) > 1 else ""),
        "|---|" + "---:|" * (len(sizes) + (len(sizes) > 1)),
    ]
    for group, label in labels:
        line = f"{group:9s} {label[:34]:34s}"
        cells = f"| {group}: {label} |"
        medians = []
        for size in sizes:
            found = [i for i in runs[size]["results"] if (i["group"], i["label"]) == (group, label)]
            item = found[0] if found else None
            if item is None or item["status"] not in (200, 302) or not item["times"]:
                line += f" {'HTTP ' + str(item['status']) if item else 'n/a':>24s}"
                cells += f" {'HTTP ' + str(item['status']) if item else 'n/a'} |"
                medians.append(None)
                continue
            med = median(item["times"])
            medians.append(med)
            flag = "*" if med > budget_ms(group, label, size) else " "
            if flag == "*":
                missed.setdefault((group, size), []).append(label)
            p95 = percentile(item["times"], 95)
            line += f" {med:11.1f}{flag} {p95:7.1f} {item['queries']:3d}"
            cells += f" {med:.1f}{' over' if flag == '*' else ''} ({p95:.1f}, {item['queries']}) |"
        if len(sizes) > 1:
            growth = medians[-1] / medians[0] if medians[0] and medians[-1] else None
            line += f" {growth:5.2f}x" if growth else ""
            cells += f" {growth:.2f}x |" if growth else " |"
        print(line)
        markdown.append(cells)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "queue-growth.md").write_text("\n".join(markdown) + "\n")
    print("* over its budget")
    for group in BUDGETS:
        for size in sizes:
            measured = [
                i
                for i in runs[size]["results"]
                if i["group"] == group and i["status"] in (200, 302) and i["times"]
            ]
            if not measured:
                continue
            worst = max(median(i["times"]) for i in measured)
            slow = missed.get((group, size), [])
            small, large = BUDGETS[group]
            budget = small if size < 1_000_000 else large
            rows.append(
                row(
                    f"{group}, {len(measured)} cases, {size:,} tickets",
                    f"worst median {worst:.1f} ms" + (f"; over: {', '.join(slow)}" if slow else ""),
                    f"every median <= {budget:g} ms"
                    + (" (message text 50)" if group == "staff" and size >= 1_000_000 else ""),
                    verdict(not slow),
                )
            )
    for size in sizes:
        results = runs[size]["results"]
        for group, pick, what in (
            ("staff", lambda i: i["label"].startswith("size="), "staff queue queries vs page size"),
            ("api", lambda i: "page_size" in i["label"], "api list queries vs page size"),
            ("ticket", lambda i: "messages" in i["label"], "ticket page queries vs history"),
            ("dashboard", lambda i: True, "dashboard queries vs range"),
        ):
            counts, constant = _constant(results, group, pick)
            print(f"{what} ({size:,}): {counts} -> constant: {constant}")
            rows.append(
                row(
                    f"{what} ({size // 1000}k)",
                    ", ".join(f"{k}: {v}" for k, v in counts.items()),
                    "constant",
                    verdict(constant),
                )
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reseed", action="store_true", help="drop the bench databases first")
    parser.add_argument(
        "--tickets",
        default="100000",
        help="ticket counts, comma-separated (e.g. 100000,1000000): one database each",
    )
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per case")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the sizes in turn this many times (100k, 1M, 100k, 1M...); each case's "
        "figures are the requests of every round together",
    )
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"the parts to time, comma-separated (default all: {','.join(PARTS)})",
    )
    parser.add_argument("--json", help=argparse.SUPPRESS)  # one size, in a child process
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(n.replace("_", "")) for n in args.tickets.split(",") if n.strip()]
    only = [part for part in args.only.split(",") if part]
    if unknown := set(only) - set(PARTS):
        parser.error(f"--only: no part named {', '.join(sorted(unknown))}")
    if args.serve:
        return serve_size(sizes[0], args.repeat, args.reseed, args.json)
    return run_sizes(sizes, args.repeat, max(args.rounds, 1), args.reseed, only)


def _until(child: subprocess.Popen, marker: str) -> bool:
    """Pass the child's output on until it prints `marker`; False if it ended first."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.rstrip("\n") == marker:
            return True
        print(line, end="", flush=True)
    return False


def run_sizes(sizes: list[int], repeat: int, rounds: int, reseed: bool, only: list[str]) -> int:
    """Time every part at every size: one process per size, the sizes in turn part by part.

    Each size's process prepares its database first (seeding, or the vacuum and the page cache
    it refills), all before the first timed request. Then each part runs at each size in turn,
    `rounds` times (queue at 100k, at 1M, at 100k, at 1M, then the dashboard...): the two
    sizes' figures of a part come from the same minutes of the machine.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    children: dict[int, subprocess.Popen] = {}
    runs: dict[int, dict] = {}
    try:
        for size in sizes:
            out = OUT / f"queue-{size}.json"
            out.unlink(missing_ok=True)
            print(
                f"\n--- {size:,} tickets ({database_url_for(size).rsplit('/', 1)[1]}) ---",
                flush=True,
            )
            command = [PYTHON, __file__, "--tickets", str(size), "--repeat", str(repeat)]
            children[size] = child = subprocess.Popen(
                [*command, "--serve", "--json", str(out), *(["--reseed"] if reseed else [])],
                env={
                    **os.environ,
                    "BENCH_DATABASE_URL": database_url_for(size),
                    "CACHE_KEY_PREFIX": f"hd-bench-{size}",
                },
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            if not _until(child, READY) or not out.exists():
                print(f"{size} tickets: the run failed (exit {child.wait()})")
                return child.returncode or 1
            runs[size] = {**json.loads(out.read_text()), "results": []}
        for name in only:
            for round_ in range(rounds):
                for size in sizes:
                    print(f"{name} at {size:,} tickets, round {round_ + 1}", flush=True)
                    child = children[size]
                    assert child.stdin is not None
                    out = OUT / f"queue-{size}-{name}.json"
                    out.unlink(missing_ok=True)
                    child.stdin.write(f"{name} {out}\n")
                    child.stdin.flush()
                    if not _until(child, DONE):
                        print(f"{size} tickets: the run failed (exit {child.wait()})")
                        return child.returncode or 1
                    runs[size] = _rounds_merged(
                        runs[size], {"results": json.loads(out.read_text())}
                    )
    finally:
        for child in children.values():
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    record("queue", report(sizes, runs, repeat * rounds))
    return 0


def _rounds_merged(earlier: dict, later: dict) -> dict:
    """One size's figures so far with a part's next round: each case's requests of all of them.

    A case that failed in any round keeps that round's status.
    """
    cases = {(i["group"], i["label"]): i for i in earlier["results"]}
    for item in later["results"]:
        before = cases.get((item["group"], item["label"]))
        if before is None:
            earlier["results"].append(item)
            cases[(item["group"], item["label"])] = item
        elif before["status"] in (200, 302):
            before["times"] += item["times"]
            before["queries"] = max(before["queries"], item["queries"])
            before["status"] = item["status"]
    return earlier


if __name__ == "__main__":
    sys.exit(main())
