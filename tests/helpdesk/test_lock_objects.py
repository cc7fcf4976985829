"""Row locks come from the `lock_objects.py` helpers of each app, nowhere else.

Then the order in which an action takes its locks can be read in one module per app.
"""

import ast
from pathlib import Path

import accounts
import domains
import helpdesk
import tickets

APPS = [Path(app.__file__).parent for app in (accounts, domains, helpdesk, tickets)]


def _production_modules() -> list[Path]:
    return sorted(path for app in APPS for path in app.rglob("*.py"))


def _locking_lines(path: Path) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "select_for_update"
    ]


def test_only_lock_objects_modules_call_select_for_update():
    locks = {
        f"{path.relative_to(path.parents[1])}:{line}": path.name
        for path in _production_modules()
        for line in _locking_lines(path)
    }
    assert len(locks) > 15  # the check reads the real tree: the helpers' locks are there
    assert [where for where, name in locks.items() if name != "lock_objects.py"] == []


def test_the_lock_helpers_are_seen():
    # given the helpers the services call
    helpers = [path for path in _production_modules() if path.name == "lock_objects.py"]
    # then the check finds the locks they take
    assert all(_locking_lines(path) for path in helpers)
    assert {path.parent.name for path in helpers} == {"accounts", "domains", "tickets"}


def test_the_check_sees_a_lock_inside_a_chain(tmp_path):
    module = tmp_path / "service.py"
    module.write_text(
        "def f(rows):\n    return list(rows.filter(pk=1).order_by('pk').select_for_update()[:5])\n"
    )
    assert _locking_lines(module) == [2]
