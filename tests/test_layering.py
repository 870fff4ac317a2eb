"""The layering rules of DESIGN.md / STYLE.md, enforced.

- ``api_schemas`` is a leaf: pydantic and the standard library only, so the CLI and
  any client can use it without the server.
- the science (``workers/dln``, ``workers/theory``, ``workers/nets``, ``workers/config``)
  imports no Ray,
  no database, no web framework.
- routes hold no SQL: no ``select(`` / ``session.execute`` in ``service/routes``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def python_files(*parts: str) -> list[Path]:
    base = ROOT.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.is_dir() else [base]


@pytest.mark.parametrize("path", python_files("api_schemas"), ids=lambda p: p.name)
def test_api_schemas_is_a_leaf(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"pydantic", "api_schemas", "__future__"}
    assert imported_modules(path) <= allowed, imported_modules(path) - allowed


SCIENCE = (
    python_files("workers", "dln")
    + python_files("workers", "theory")
    + python_files("workers", "nets")
    + python_files("workers", "config.py")
)


@pytest.mark.parametrize("path", SCIENCE, ids=lambda p: str(p.relative_to(ROOT)))
def test_science_is_pure(path: Path) -> None:
    forbidden = {"ray", "sqlalchemy", "fastapi", "service", "httpx", "starlette", "alembic"}
    assert not imported_modules(path) & forbidden


@pytest.mark.parametrize("path", python_files("service", "routes"), ids=lambda p: p.name)
def test_routes_hold_no_sql(path: Path) -> None:
    text = path.read_text()
    assert "select(" not in text and "session.execute" not in text
    assert "raise HTTPException" not in text


def test_domain_never_raises_http_exception() -> None:
    for path in python_files("service"):
        if "routes" in path.parts or path.name == "app.py":
            continue
        assert "raise HTTPException" not in path.read_text(), path
