"""The audit log only records: no service or selector reads it back to decide what to do."""

import ast
import re
from pathlib import Path

import tickets

TICKETS = Path(tickets.__file__).parent
# Reads that show the log to people, and nothing else: a ticket's history (page and API; the
# staff page's latest part of it and the class that holds it), the customer export, the staff
# audit-trail page. The audit module and the verify command are outside the modules checked.
DISPLAY_READS = frozenset(
    {
        "ticket_events",
        "ticket_events_visible",
        "staff_ticket_history",
        "TicketHistory",
        "customer_audit_rows",
        "audit_log_page",
        "audit_actions",
    }
)
# The model by name, a reverse lookup through a ticket's `events`, or a query on its actions.
LOG_READ = re.compile(r"\bActionLog\b|\bevents__|\.events\.|\baction__(startswith|in|exact)\b")


def _checked_modules() -> list[Path]:
    modules = sorted((TICKETS / "services").rglob("*.py"))
    modules += sorted(TICKETS.glob("selectors*.py"))
    package = TICKETS / "selectors"
    if package.is_dir():  # the selectors split by area: its audit module is the display
        modules += sorted(p for p in package.rglob("*.py") if p.name != "audit.py")
    return modules


def _log_reads(path: Path) -> list[str]:
    """`line: code` for every use of the log outside an import and a display read."""
    source = path.read_text()
    allowed: list[tuple[int, int]] = []
    for node in ast.walk(ast.parse(source)):
        is_display = isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in DISPLAY_READS
        if is_display or isinstance(node, ast.ImportFrom | ast.Import):
            allowed.append((node.lineno, node.end_lineno or node.lineno))
    return [
        f"{number}: {line.strip()}"
        for number, line in enumerate(source.splitlines(), start=1)
        if LOG_READ.search(line) and not any(a <= number <= b for a, b in allowed)
    ]


def test_no_service_or_selector_reads_the_audit_log_to_decide():
    reads = {
        str(path.relative_to(TICKETS.parent)): found
        for path in _checked_modules()
        if (found := _log_reads(path))
    }
    assert reads == {}


def test_the_check_sees_the_flows_and_finds_a_read_when_there_is_one(tmp_path):
    # The check would pass vacuously if it found no module or missed a read.
    names = {str(path.relative_to(TICKETS)) for path in _checked_modules()}
    verification = {"selectors_verification.py", "selectors/verification.py"}
    assert {"services/password_resend.py", "services/opt_out.py"} <= names
    assert verification & names
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from tickets.models import ActionLog\n"
        "def ticket_events(ticket):\n    return ActionLog.objects.filter(ticket=ticket)\n"
        "def stage(ticket):\n    return ActionLog.objects.filter(ticket=ticket).last()\n"
        "def due():\n    return Ticket.objects.exclude(events__action__startswith='x')\n"
    )
    assert _log_reads(sample) == [
        "5: return ActionLog.objects.filter(ticket=ticket).last()",
        "7: return Ticket.objects.exclude(events__action__startswith='x')",
    ]
