"""Every import between the project's modules names something the target exports.

Like httpx's ``tests/test_exported_members.py``: a module's ``__all__`` is its surface, and an
import of anything else (``from pipeline.replay import _Stored``) is a reach into another
module's insides that the test makes visible. Read statically (``ast``), so nothing is imported
and every import counts, including those inside functions (the lazy ones that avoid cycles).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The installed packages and top-level modules (pyproject.toml), plus the benches.
PACKAGES = ("db", "providers", "pipeline", "tasks", "bench")
MODULES = ("celeryconfig",)


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _exports(path: Path) -> set[str] | None:
    """The names of ``__all__`` (a literal list or tuple, possibly extended), or None."""
    names: set[str] | None = None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = node.value
            assert isinstance(value, ast.List | ast.Tuple), f"{path}: __all__ is not a literal"
            names = (names or set()) | {ast.literal_eval(e) for e in value.elts}
    return names


def _project_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return files + [ROOT / f"{m}.py" for m in MODULES]


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every ``from X import Y`` of a project module in ``path``."""
    here = _module_of(path)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = here.split(".")
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        if module.split(".")[0] not in (*PACKAGES, *MODULES):
            continue
        found += [(node.lineno, module, alias.name) for alias in node.names]
    return found


def _violations() -> list[str]:
    out = []
    for path in _project_files():
        for line, module, name in _imports(path):
            target = _module_file(module)
            if target is None:
                out.append(f"{path.relative_to(ROOT)}:{line}: {module} is not a project module")
                continue
            if name == "*" or _module_file(f"{module}.{name}") is not None:
                continue  # a submodule: its own __all__ is checked where its names are used
            exported = _exports(target)
            if exported is None or name not in exported:
                out.append(
                    f"{path.relative_to(ROOT)}:{line}: from {module} import {name}: "
                    f"not in {module}.__all__"
                )
    return out


def test_every_import_between_project_modules_names_an_exported_member() -> None:
    """``from X import Y`` across db, providers, pipeline, tasks and bench: Y is a submodule
    of X or is listed in X's ``__all__``."""
    assert _violations() == []


def test_the_check_sees_a_private_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: an import of an unexported name, relative or absolute, is
    reported, and an exported name or a submodule is not."""
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text('__all__ = ["shown"]\nshown = 1\n_hidden = 2\n')
    (pkg / "b.py").write_text(
        "from pipeline.a import shown\nfrom pipeline import a\n"
        "def f():\n    from .a import _hidden\n"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGES"]), "PACKAGES", ("pipeline",))
    monkeypatch.setattr(__import__(__name__, fromlist=["MODULES"]), "MODULES", ())
    assert _violations() == ["pipeline/b.py:4: from pipeline.a import _hidden: not in "
                             "pipeline.a.__all__"]
