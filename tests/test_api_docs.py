"""docs/api.md stays true: every declared endpoint and every role's permissions are in it."""

from __future__ import annotations

from pathlib import Path

from webadmin.api import endpoints as _registered  # noqa: F401
from webadmin.api.declare import API
from webadmin.roles import PERMISSIONS, ROLES

DOC = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()


def test_every_endpoint_documented() -> None:
    """Each endpoint's row (method, path, permission) appears in docs/api.md."""
    for e in API.endpoints:
        perm = "public" if e.public else f"`{e.permission}`"
        assert f"| {e.method} | `/api/v1{e.path}` | {perm} |" in DOC, (e.method, e.path)


def test_roles_table_matches_roles() -> None:
    """The roles table in docs/api.md is ROLES, cell by cell."""
    roles = list(ROLES)
    assert "| permission | " + " | ".join(roles) + " | what |" in DOC
    for p, doc in PERMISSIONS.items():
        cells = " | ".join("x" if p in ROLES[r] else "" for r in roles)
        assert f"| `{p}` | {cells} | {doc} |" in DOC, p
