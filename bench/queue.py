"""Staff queue and API list on 100,000 tickets in PostgreSQL: server time and query counts.

Run: .venv/bin/python bench/queue.py [--reseed] [--tickets 100000] [--repeat 15]
"""
# ruff: noqa: E402

from __future__ import annotations

import os.path
import sys

# This folder must not shadow the standard library (bench/queue.py vs `queue`).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import html
import json
import random
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from bench.common import (
    django_setup,
    drop_database,
    median,
    migrate,
    percentile,
    record,
    row,
    verdict,
)

BUDGET_MS = 30.0
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
# the seeded random stream, which stays as it was). One in 40 asks about "DNS records", one in
# 997 about "nameserver glue"; some are in Malay.
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
            "tickets_fieldchange",
            "tickets_message",
            "tickets_actionlog",
            "accounts_customer",
            "domains_domain",
        ):
            cur.execute(f"VACUUM (ANALYZE) {table}")


def seed(total: int) -> float:
    """Add `total` tickets with changes, messages and chained audit rows; return seconds."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from accounts.models import Customer
    from accounts.services import roles_ensure
    from domains.models import Domain
    from tickets.audit import _canonical, _row_hash
    from tickets.models import REFERENCE_ALPHABET, AuditChainHead, Ticket
    from tickets.services import ticket_due_at

    started = time.perf_counter()
    rng = random.Random(SEED_RANDOM)
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
        for i in range(CUSTOMERS)
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
        "sla_paused_total",
    ]
    with transaction.atomic():
        raw = connection.connection
        first_ticket = _reserve_ids(raw, "tickets_ticket", total)
        tickets, changes, messages, events = [], [], [], []
        for n in range(total):
            pk = first_ticket + n
            while True:
                reference = "HD-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
                if reference not in references:
                    references.add(reference)
                    break
            kind = _weighted(rng, KIND_WEIGHTS)
            status = _weighted(rng, STATUS_WEIGHTS)
            priority = _weighted(rng, PRIORITY_WEIGHTS)
            cid, _number = customers[rng.randrange(len(customers))]
            anonymous = kind == "resend_password" and rng.random() < 0.3
            customer_id = None if anonymous else cid
            domain_id = domain_of.get(cid) if kind in ("resend_password", "general") else None
            domain_name = f"shop-{cid}.bench.test"
            created = now - timedelta(seconds=rng.uniform(60, 365 * 86400))
            updated = min(now, created + timedelta(seconds=rng.uniform(0, 5 * 86400)))
            is_open = status in ("new", "awaiting_verification", "open", "awaiting_customer")
            assignee = staff[rng.randrange(len(staff))].pk if rng.random() < 0.6 else None
            resolved = updated if status in ("resolved", "closed") else None
            closed = updated if status == "closed" else None
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
                    assignee if (is_open or rng.random() < 0.5) else None,
                    ticket_due_at(kind=kind, priority=priority, start=created),
                    resolved,
                    closed,
                    "en",
                    2 if status != "new" else 1,
                    "",
                    timedelta(0),
                )
            )
            if kind == "modify_info":
                for field in rng.sample(["phone", "address_line1", "city"], rng.randint(1, 2)):
                    changes.append(
                        (created, updated, pk, field, "old value", "new value", resolved)
                    )
            text = RARE_MESSAGE if n % 997 == 0 else MESSAGE_TEXTS[n % len(MESSAGE_TEXTS)]
            messages.append(
                (created, created, pk, "customer", None, f"{reference}: {text}", False, "portal")
            )
            if not is_open or rng.random() < 0.5:
                messages.append(
                    (updated, updated, pk, "staff", assignee, "We are on it.", False, "staff")
                )
            customer_number = number_of[cid] if customer_id else ""
            events.append(
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
                events.append(
                    (
                        updated,
                        "ticket.status_changed",
                        pk,
                        reference,
                        customer_id,
                        customer_number,
                        {"from": "new", "to": status},
                    )
                )
        _copy(raw, "tickets_ticket", ticket_cols, tickets)
        _copy(
            raw,
            "tickets_fieldchange",
            [
                "created_at",
                "updated_at",
                "ticket_id",
                "field",
                "old_value",
                "new_value",
                "applied_at",
            ],
            changes,
        )
        _copy(
            raw,
            "tickets_message",
            [
                "created_at",
                "updated_at",
                "ticket_id",
                "author",
                "author_user_id",
                "body",
                "internal",
                "channel",
            ],
            messages,
        )
        # The audit rows continue the existing chain under the head row's lock, in time order.
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        sequence, last_hash = head.sequence, head.last_hash
        audit_rows = []
        events.sort(key=lambda event: event[0])
        for created, action, pk, reference, customer_id, customer_number, details in events:
            sequence += 1
            canonical = _canonical(
                sequence=sequence,
                created_at=created.isoformat(),
                actor="system",
                action=action,
                ticket=reference,
                customer=customer_number,
                details=details,
            )
            row_hash = _row_hash(last_hash, canonical)
            audit_rows.append(
                (
                    sequence,
                    created,
                    "system",
                    action,
                    pk,
                    customer_id,
                    json.dumps(details),
                    last_hash,
                    row_hash,
                )
            )
            last_hash = row_hash
        _copy(
            raw,
            "tickets_actionlog",
            [
                "sequence",
                "created_at",
                "actor",
                "action",
                "ticket_id",
                "customer_id",
                "details",
                "prev_hash",
                "hash",
            ],
            audit_rows,
        )
        AuditChainHead.objects.filter(pk=1).update(sequence=sequence, last_hash=last_hash)
    vacuum()
    seconds = time.perf_counter() - started
    print(
        f"seeded {len(tickets)} tickets, {len(changes)} changes, {len(messages)} messages, "
        f"{len(audit_rows)} audit rows in {seconds:.1f} s"
    )
    return seconds


def _time(client, url: str, repeat: int) -> dict:
    from django.db import connection
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
    sample = Ticket.objects.filter(customer__isnull=False).order_by("-id").first()
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
        ("search: message text (2.5 %)", "/staff/?q=DNS%20records"),
        ("search: message text (0.1 %)", "/staff/?q=nameserver%20glue"),
        ("search: message word (Malay)", "/staff/?q=kemaskini"),
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reseed", action="store_true", help="drop the bench database first")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per case")
    args = parser.parse_args()

    if args.reseed:
        drop_database()
    migrate()
    django_setup()
    from tickets.models import Ticket

    have = Ticket.objects.count()
    seeded_seconds = None
    if have < args.tickets:
        seeded_seconds = seed(args.tickets)
        from tickets.audit import audit_verify

        started = time.perf_counter()
        report = audit_verify()
        print(
            f"audit chain: {'intact' if report.ok else 'BROKEN: ' + report.problem} "
            f"({report.rows} rows, verified in {time.perf_counter() - started:.1f} s)"
        )
        if not report.ok:
            return 1
    else:
        print(f"reusing {have} tickets already in the bench database (--reseed to start over)")
        vacuum()  # the other scripts have written to it since
    total = Ticket.objects.count()

    results = measure(args.repeat)
    rows = []
    if seeded_seconds is not None:
        rows.append(row("seeding", f"{args.tickets} tickets in {seeded_seconds:.1f} s"))
    print(f"\n{total} tickets; {args.repeat} timed requests per case (in-process client)")
    print(f"{'case':40s} {'median':>8s} {'p95':>8s} {'queries':>8s}")
    worst = {"staff": 0.0, "api": 0.0}
    for item in results:
        if item["status"] != 200:
            print(f"{item['group']:5s} {item['label']:34s} HTTP {item['status']}")
            continue
        med, p95 = median(item["times"]), percentile(item["times"], 95)
        worst[item["group"]] = max(worst[item["group"]], med)
        flag = "" if med <= BUDGET_MS else "  > 30 ms"
        print(
            f"{item['group']:5s} {item['label']:34s} {med:8.1f} {p95:8.1f} "
            f"{item['queries']:8d}{flag}"
        )
    sizes = {i["label"]: i["queries"] for i in results if i["label"].startswith("size=")}
    constant = len(set(sizes.values())) == 1 if sizes else None
    api_sizes = {i["label"]: i["queries"] for i in results if "page_size" in i["label"]}
    api_constant = len(set(api_sizes.values())) == 1 if api_sizes else None
    print(f"\nstaff queue query count by page size: {sizes} -> constant: {constant}")
    print(f"api list query count by page size: {api_sizes} -> constant: {api_constant}")
    for group in ("staff", "api"):
        measured = [i for i in results if i["group"] == group and i["status"] == 200]
        if not measured:
            print(f"{group}: not measured: no case answered 200")
            rows.append(row(f"{group} list", "not measured", "median <= 30 ms", "not measured"))
            continue
        slow = [i["label"] for i in measured if median(i["times"]) > BUDGET_MS]
        all_times = [t for i in measured for t in i["times"]]
        print(f"{group}: worst case median {worst[group]:.1f} ms; over budget: {slow or 'none'}")
        rows.append(
            row(
                f"{group} list, {len(measured)} filter/sort cases",
                f"median of all {median(all_times):.1f} ms, p95 {percentile(all_times, 95):.1f}"
                f" ms, worst case median {worst[group]:.1f} ms ({len(slow)} cases > 30 ms)",
                "every case median <= 30 ms",
                verdict(not slow),
            )
        )
    rows.append(
        row(
            "staff queue queries vs page size",
            ", ".join(f"{k}: {v}" for k, v in sizes.items()),
            "constant",
            verdict(constant),
        )
    )
    rows.append(
        row(
            "api list queries vs page size",
            ", ".join(f"{k}: {v}" for k, v in api_sizes.items()),
            "constant",
            verdict(api_constant),
        )
    )
    record("queue", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
