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
