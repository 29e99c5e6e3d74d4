"""The admin pages reach the database only through the service layer (webadmin.service)."""

from __future__ import annotations

import ast
from pathlib import Path

ADMIN = Path(__file__).resolve().parents[1] / "webadmin" / "admin"
FORBIDDEN = ("sqlalchemy", "core.db.models", "core.db.access", "billing.models",
             "accounting.models", "pools.models")


def _is_table_or_engine(module: str, name: str) -> bool:
    """An ORM model class (or anything but a plain enum) from a models module."""
    import enum
    import importlib

    value = getattr(importlib.import_module(module), name, None)
    return not (isinstance(value, type) and issubclass(value, enum.Enum))


def imported_modules(path: Path) -> set[str]:
    """Modules imported; ``from X.models import SomeEnum`` (a value type) does not count."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(FORBIDDEN[1:]) and not any(
                    _is_table_or_engine(node.module, a.name) for a in node.names):
                continue
            found.add(node.module)
    return found


def test_admin_pages_import_no_database_modules() -> None:
    """No admin page module imports SQLAlchemy or the ORM models: pages call thd_* services."""
    wrong = [f"{p.name} imports {m}" for p in sorted(ADMIN.glob("*.py"))
             for m in imported_modules(p) if m.startswith(FORBIDDEN)]
    assert len(list(ADMIN.glob("*.py"))) >= 5
    assert wrong == []


def test_the_scan_sees_a_database_import(tmp_path: Path) -> None:
    """The scan finds a forbidden import (so the test above can fail)."""
    sample = tmp_path / "m.py"
    sample.write_text("from sqlalchemy import select\nimport core.db.models\n"
                      "from pools.models import PoolKind\nfrom billing.models import LedgerEntry\n")
    assert {m for m in imported_modules(sample) if m.startswith(FORBIDDEN)} == {
        "sqlalchemy", "core.db.models", "billing.models"}
