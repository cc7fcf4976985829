"""Imports go one way: views, API, tasks and commands -> services -> selectors -> models.

A selector that imported a service (even a constant) would tie reads to writes and invite the
import cycles that function-level imports then hide.
"""

import ast
from pathlib import Path

import accounts
import domains
import tickets

APPS = [Path(app.__file__).parent for app in (accounts, domains, tickets)]


def _selector_modules() -> list[Path]:
    modules = []
    for app in APPS:
        modules += [p for p in (app / "selectors.py",) if p.exists()]
        if (app / "selectors").is_dir():
            modules += sorted((app / "selectors").rglob("*.py"))
    return modules


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def _is_service(module: str) -> bool:
    parts = module.split(".")
    return (
        len(parts) >= 2
        and parts[0] in {"accounts", "domains", "tickets"}
        and (parts[1] == "services")
    )


def test_selectors_import_no_service():
    modules = _selector_modules()
    assert len(modules) > 5  # the check reads the real tree
    offenders = [
        f"{path.relative_to(path.parents[2])}: {name}"
        for path in modules
        for name in _imported_modules(path)
        if _is_service(name)
    ]
    assert offenders == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "selector.py"
    module.write_text("def f():\n    from tickets.services.opt_out import OPT_OUT_LISTS\n")
    assert [m for m in _imported_modules(module) if _is_service(m)] == ["tickets.services.opt_out"]


def _top_level_imports(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_tasks_import_their_services_inside_the_task_body():
    # Services import the tasks at module level (to queue them); a service imported at the top
    # of a tasks module would make that a cycle.
    modules = [app / "tasks.py" for app in APPS if (app / "tasks.py").exists()]
    assert len(modules) >= 2  # tickets' and domains'
    offenders = [(p.name, m) for p in modules for m in _top_level_imports(p) if _is_service(m)]
    assert offenders == []
