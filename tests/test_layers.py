"""Imports flow one way: core at the bottom, the domain packages above, the faces, then radbill."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# webadmin presents aaa's admin operations, so it sits just above aaa; nothing below
# webadmin may import it, and only radbill (the CLI and the wiring) imports everything.
LEVEL = {"core": 0, "billing": 1, "pools": 1, "accounting": 1, "aaa": 2, "webadmin": 3,
         "radbill": 4}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(LEVEL)


def test_no_package_imports_a_layer_above_it() -> None:
    """Every module of a package imports only its own layer and the ones below it."""
    wrong = []
    for package, level in LEVEL.items():
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for imported in _imports(path):
                if LEVEL[imported] > level:
                    wrong.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert wrong == []


def test_the_check_can_fail(tmp_path: Path) -> None:
    """The import scan sees both plain and from-imports (so the layering test can fail)."""
    sample = tmp_path / "m.py"
    sample.write_text("import radbill.cli\nfrom webadmin.roles import may\nimport os\n")
    assert _imports(sample) == {"radbill", "webadmin"}
