"""No Celery task shares its name with a domain function (issue 16, "a surface a test can
check"): ``tasks.maintenance.sweep_stalled`` called ``pipeline.maintenance.sweep_stalled`` and a
reader could not tell from a call which one ran (a task body or a database step). The tasks keep
their names (operators, beat and scrapers use them); the domain functions got their own.
Read with ``ast``: a module-level function in ``tasks/`` decorated with ``app.task``, against
every module-level function and class in ``pipeline/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _is_task(node: ast.FunctionDef) -> bool:
    for deco in node.decorator_list:
        call = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(call, ast.Attribute) and call.attr == "task":
            return True
    return False


def _defs(folder: str, only_tasks: bool) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if only_tasks and not (isinstance(node, ast.FunctionDef) and _is_task(node)):
                continue
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                found.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    return found


def test_no_task_shares_a_name_with_a_domain_function() -> None:
    tasks = _defs("tasks", only_tasks=True)
    domain = _defs("pipeline", only_tasks=False)
    assert len(tasks) >= 15, "the task scan found the tasks"
    assert "find_stalled_work" in domain, "the domain scan found the domain functions"
    clashes = {name: (tasks[name], domain[name]) for name in tasks if name in domain}
    assert clashes == {}
