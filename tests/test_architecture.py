"""The pure science core imports no database, web or CLI code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "exotrace"
PURE = ["physics.py", "errors.py", "_yaml.py", "nta", "instruments", "flow", "characterization", "quality",
        "clinic"]
FORBIDDEN = ("sqlalchemy", "alembic", "fastapi", "starlette", "typer", "click", "uvicorn",
             "exotrace.records", "exotrace.cli", "exotrace.api", "exotrace.web")


def _files(entry: str):
    path = SRC / entry
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = "exotrace." + ".".join(path.relative_to(SRC).parent.parts) if path.parent != SRC else "exotrace"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rstrip(".").split(".")
                base = base[: len(base) - (node.level - 1)]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


@pytest.mark.parametrize("entry", PURE)
def test_pure_core_imports_no_persistence_or_interface(entry):
    bad = []
    for f in _files(entry):
        for name in _imports(f):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                bad.append(f"{f.relative_to(SRC)} imports {name}")
    assert not bad, bad


# Routes parse, call the records services and render: no query of their own.
_ROUTE_MODULES = sorted(p for entry in ("web", "api") for p in (SRC / entry).glob("*.py")
                        if not (entry == "api" and p.name.startswith("_")))
_QUERY_NAMES = {"repositories", "quality_repositories", "clinic_repositories"}


@pytest.mark.parametrize("path", _ROUTE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_routes_run_no_queries_of_their_own(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if node.module.startswith("sqlalchemy") or (names & _QUERY_NAMES):
                bad.append(f"line {node.lineno}: from {node.module} import "
                           f"{', '.join(sorted(names))}")
        elif isinstance(node, ast.Import):
            bad += [f"line {node.lineno}: import {a.name}" for a in node.names
                    if a.name.startswith("sqlalchemy")]
    assert not bad, bad
