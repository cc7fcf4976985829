"""accounts.services stands below the tickets services: they import it, it never imports them.

The account writes that mail through the outbox (a login's password reset) live with the
outbox in tickets.services, so no import between the two goes both ways.
"""

import ast
from pathlib import Path

import accounts.services


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_accounts_services_never_imports_the_tickets_services():
    # given
    path = Path(accounts.services.__file__)

    # when
    imported = _imported_modules(path)

    # then
    assert not {m for m in imported if m.startswith("tickets.services")}
