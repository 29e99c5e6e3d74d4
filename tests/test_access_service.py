"""Operators, tokens, resellers and the audit log through the service layer and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from aaa.admin.passwords import hash_credentials
from core.db import schema
from core.db.access import ApiToken, AuditEntry, Operator
from core.db.models import Subscriber
from core.db.pool import DBPool
from core.errors import AlreadyExists, InvalidInput, NotFound
from radbill.cli import main
from webadmin.errors import Forbidden
from webadmin.roles import PERMISSIONS, ROLES, Caller, cli_caller
from webadmin.service import audit, catalog, operators, resellers, subscribers, tokens
from webadmin.service.tokens import token_hash

ADMIN = cli_caller("tester")
CREDS = hash_credentials("secret-pw")


def _audit(dbpool: DBPool) -> list[AuditEntry]:
    def fn(s: Session) -> list[AuditEntry]:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    return dbpool.run_sync(fn)


def _reseller_caller(dbpool: DBPool, name: str) -> Caller:
    info = dbpool.run_sync(resellers.thd_get_reseller, ADMIN, name)
    return Caller(actor=f"operator:{name}-op", role="reseller", reseller_id=info.id,
                  reseller=name)


@pytest.fixture
def two_resellers(dbpool: DBPool) -> tuple[Caller, Caller]:
    """Resellers a and b, each with a plan and a subscriber; plus the operator's own."""
    run = dbpool.run_sync
    for r in ("a", "b"):
        run(resellers.thd_add_reseller, ADMIN, r)
        run(catalog.thd_add_plan, ADMIN, f"plan-{r}", reseller=r)
        run(subscribers.thd_add, ADMIN, f"sub-{r}", CREDS, f"plan-{r}", reseller=r)
    run(catalog.thd_add_plan, ADMIN, "shared")
    run(subscribers.thd_add, ADMIN, "own", CREDS, "shared")
    return _reseller_caller(dbpool, "a"), _reseller_caller(dbpool, "b")


def test_migration_matches_models_and_downgrades(engine: Engine) -> None:
    """0400_access creates exactly the models' tables and columns, and drops them again."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import core.db.access  # noqa: F401
    from core.db.base import Base

    ours = {"reseller", "operator", "api_token", "api_session", "audit_entry"}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    def table_of(d: Any) -> str | None:
        entry = d[0] if isinstance(d, list) else d
        if entry[0].endswith("_table"):
            return str(entry[1].name)
        if entry[0] in ("add_column", "remove_column") or entry[0].startswith("modify_"):
            return str(entry[2])
        table = getattr(entry[1], "table", None)
        return None if table is None else str(table.name)

    assert [d for d in diff if table_of(d) in ours | {"subscriber", "plan"}] == []
    schema.downgrade(engine, "access@0001")
    assert not ours & set(inspect(engine).get_table_names())
    assert "reseller_id" not in {c["name"] for c in inspect(engine).get_columns("subscriber")}
    schema.upgrade(engine)
    assert ours <= set(inspect(engine).get_table_names())


def test_role_table_matches_the_issue() -> None:
    """Each built-in role holds what issue 10 gives it, and only that."""
    assert ROLES["admin"] >= {"operator.admin", "token.admin", "audit.read", "nas.write"}
    assert "operator.admin" not in ROLES["manager"]
    assert {"subscriber.write", "plan.write", "nas.write", "pool.write",
            "session.disconnect"} <= ROLES["manager"]
    assert {"payment.write", "account.credit", "subscriber.read"} <= ROLES["cashier"]
    assert not {"subscriber.write", "nas.read", "plan.write"} & ROLES["cashier"]
    support = ROLES["support"]
    assert "session.disconnect" in support
    assert not {p for p in support if not p.endswith(".read")} - {"session.disconnect"}
    assert not {"audit.read", "operator.admin", "token.admin"} & support
    assert not {"nas.read", "pool.read", "operator.admin"} & ROLES["reseller"]
    assert ROLES["subscriber"] == {"self.read", "self.write", "me.read"}
    assert ROLES["selfcare-frontend"] == {"selfcare.login"}
    for perms in ROLES.values():
        assert perms <= set(PERMISSIONS)


def test_reseller_isolation_in_the_service_layer(dbpool: DBPool,
                                                 two_resellers: tuple[Caller, Caller]) -> None:
    """A reseller sees and changes only its own rows; others answer exactly like missing ones."""
    a, _b = two_resellers
    run = dbpool.run_sync
    assert [s.login for s in run(subscribers.thd_list, a)] == ["sub-a"]
    assert sorted(p.name for p in run(catalog.thd_list_plans, a)) == ["plan-a", "shared"]
    with pytest.raises(NotFound) as other:
        run(subscribers.thd_get, a, "sub-b")
    with pytest.raises(NotFound) as missing:
        run(subscribers.thd_get, a, "sub-zz")
    assert str(other.value).replace("sub-b", "X") == str(missing.value).replace("sub-zz", "X")
    for op in (lambda s: subscribers.thd_update(s, a, "sub-b", {"description": "x"}),
               lambda s: subscribers.thd_remove(s, a, "own"),
               lambda s: subscribers.thd_set_status(s, a, "sub-b", "blocked"),
               lambda s: catalog.thd_update_plan(s, a, "plan-b", {"rate_limit": "1M/1M"}),
               lambda s: catalog.thd_update_plan(s, a, "shared", {"rate_limit": "1M/1M"}),
               lambda s: subscribers.thd_add(s, a, "new", CREDS, "plan-b")):
        with pytest.raises(NotFound):
            run(op)
    # its own subscriber is created under its own reseller, whatever it asks
    info = run(subscribers.thd_add, a, "new-a", CREDS, "shared")
    assert info.reseller == "a"
    with pytest.raises(NotFound):
        run(subscribers.thd_add, a, "new-a2", CREDS, "shared", reseller="b")
    assert run(subscribers.thd_get, ADMIN, "sub-b").description == ""


def test_permissions_are_refused(dbpool: DBPool, two_resellers: Any) -> None:
    """A role without the permission gets Forbidden, and nothing is written or audited."""
    cashier = Caller(actor="operator:c", role="cashier")
    support = Caller(actor="operator:s", role="support")
    before = len(_audit(dbpool))
    with pytest.raises(Forbidden):
        dbpool.run_sync(subscribers.thd_add, cashier, "x", CREDS)
    with pytest.raises(Forbidden):
        dbpool.run_sync(subscribers.thd_update, support, "own", {"description": "x"})
    with pytest.raises(Forbidden):
        dbpool.run_sync(audit.thd_list_audit, support)
    assert dbpool.run_sync(subscribers.thd_get, cashier, "own").login == "own"
    assert len(_audit(dbpool)) == before


def test_audit_row_commits_with_the_change(dbpool: DBPool) -> None:
    """The audit row is in the change's transaction: a rollback drops both; a failure, none."""
    class Boom(Exception):
        pass

    def add_then_fail(s: Session) -> None:
        subscribers.thd_add(s, ADMIN, "ghost", CREDS)
        raise Boom()

    with pytest.raises(Boom):
        dbpool.run_sync(add_then_fail)
    assert _audit(dbpool) == []
    assert dbpool.run_sync(lambda s: s.scalar(select(func.count()).select_from(Subscriber))) == 0
    dbpool.run_sync(subscribers.thd_add, ADMIN, "real", CREDS, description="d1")
    with pytest.raises(AlreadyExists):
        dbpool.run_sync(subscribers.thd_add, ADMIN, "real", CREDS)
    dbpool.run_sync(subscribers.thd_update, ADMIN, "real", {"description": "d2"})
    dbpool.run_sync(subscribers.thd_set_password, ADMIN, "real", hash_credentials("other-pw"))
    rows = _audit(dbpool)
    assert [r.action for r in rows] == ["subscriber.add", "subscriber.set", "subscriber.passwd"]
    assert rows[1].before["description"] == "d1" and rows[1].after["description"] == "d2"
    assert rows[0].actor == "cli:tester" and rows[0].object_key == "real"
    assert "other-pw" not in json.dumps([r.after for r in rows])
    assert rows[2].after["password"] == audit.MASK


def test_secrets_are_masked_in_the_audit_log(dbpool: DBPool) -> None:
    """A NAS secret and an operator password hash never reach the audit log."""
    dbpool.run_sync(catalog.thd_add_nas, ADMIN, "n1", "192.0.2.1", "very-secret-1")
    dbpool.run_sync(catalog.thd_update_nas, ADMIN, "n1", {"secret": "very-secret-2"})
    hashed = operators.hash_operator_password("long-password")
    dbpool.run_sync(operators.thd_add_operator, ADMIN, "ann", hashed, "manager")
    dumped = json.dumps([(r.before, r.after) for r in _audit(dbpool)])
    assert "very-secret" not in dumped and hashed not in dumped
    assert audit.masked({"secret": "x", "nested": {"password": "y"}, "name": "n"}) == {
        "secret": "***", "nested": {"password": "***"}, "name": "n"}


def test_operator_lifecycle(dbpool: DBPool, two_resellers: Any) -> None:
    """add/set/passwd/remove; the reseller role needs a reseller; bad roles are refused."""
    run = dbpool.run_sync
    h = operators.hash_operator_password("long-password")
    with pytest.raises(InvalidInput, match="needs a reseller"):
        run(operators.thd_add_operator, ADMIN, "r1", h, "reseller")
    with pytest.raises(InvalidInput, match="role"):
        run(operators.thd_add_operator, ADMIN, "r1", h, "god")
    with pytest.raises(InvalidInput):
        run(operators.thd_add_operator, ADMIN, "bad login!", h, "admin")
    with pytest.raises(InvalidInput):
        operators.hash_operator_password("short")
    info = run(operators.thd_add_operator, ADMIN, "r1", h, "reseller", "a")
    assert info.reseller == "a" and info.enabled
    info = run(operators.thd_update_operator, ADMIN, "r1", {"enabled": False})
    assert not info.enabled
    with pytest.raises(InvalidInput):
        run(resellers.thd_remove_reseller, ADMIN, "a")
    run(operators.thd_remove_operator, ADMIN, "r1")
    stored = run(lambda s: s.scalar(select(func.count()).select_from(Operator)))
    assert stored == 0
    assert operators.verify_operator_password(h, "long-password")
    assert not operators.verify_operator_password(h, "long-passwore")


def test_tokens_store_only_a_hash(dbpool: DBPool) -> None:
    """The token is returned once; the database holds its SHA-256, and revoke marks it."""
    new = dbpool.run_sync(tokens.thd_add_token, ADMIN, "erp", "cashier", None, 30)
    assert new.token.startswith("rbt_") and len(new.token) > 40
    rows = dbpool.run_sync(lambda s: list(s.scalars(select(ApiToken))))
    assert rows[0].token_hash == token_hash(new.token) != new.token
    assert new.info.state == "active" and new.info.expires_at is not None
    with pytest.raises(AlreadyExists):
        dbpool.run_sync(tokens.thd_add_token, ADMIN, "erp", "cashier")
    with pytest.raises(InvalidInput):
        dbpool.run_sync(tokens.thd_add_token, ADMIN, "x", "subscriber")
    with pytest.raises(InvalidInput):
        dbpool.run_sync(tokens.thd_add_token, ADMIN, "y", "admin", None, 0)
    assert dbpool.run_sync(tokens.thd_revoke_token, ADMIN, "erp").state == "revoked"


Result = tuple[int, str, str]


@pytest.fixture
def cli(tmp_path: Path, db_url: str, engine: Engine,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``radbill --config <test db> ARGS`` in-process; (exit code, stdout, stderr)."""
    config = tmp_path / "radbill.toml"
    config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n", encoding="utf-8")

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = main(["--config", str(config), *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_commands(cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    """reseller/operator/token/audit commands; token add prints only the token on stdout."""
    import io

    monkeypatch.setattr("getpass.getuser", lambda: "opsuser")
    assert cli("reseller", "add", "acme")[0] == 0
    assert cli("plan", "add", "acme-home", "--reseller", "acme")[0] == 0
    assert cli("subscriber", "add", "bob", "--password", "pw-123", "--plan", "acme-home",
               "--reseller", "acme")[0] == 0
    code, out, _ = cli("subscriber", "show", "bob", "--out", "json")
    assert json.loads(out)["reseller"] == "acme"
    assert cli("subscriber", "set", "bob", "--reseller", "none")[0] == 0
    code, out, _ = cli("plan", "show", "acme-home", "--out", "json")
    assert json.loads(out)["reseller"] == "acme"
    monkeypatch.setattr("sys.stdin", io.StringIO("stdin-password\n"))
    assert cli("operator", "add", "carol", "--role", "cashier", "--password-stdin")[0] == 0
    code, _out, err = cli("operator", "add", "dave", "--role", "reseller",
                          "--password", "long-password")
    assert code == 1 and "needs a reseller" in err
    code, out, err = cli("token", "add", "erp", "--role", "cashier", "--expires", "7")
    assert code == 0 and out.strip().startswith("rbt_") and "\n" not in out.strip()
    assert out.strip() not in err
    code, out, _ = cli("token", "list", "--out", "json")
    assert json.loads(out)[0]["state"] == "active" and "rbt_" not in out
    assert cli("token", "revoke", "erp")[0] == 0
    code, out, _ = cli("audit", "list", "--out", "json")
    entries = json.loads(out)
    assert {e["actor"] for e in entries} == {"cli:opsuser"}
    assert [e["action"] for e in entries][:2] == ["token.revoke", "token.add"]
    code, out, _ = cli("audit", "list", "--object", "subscriber:bob", "--out", "json")
    assert [e["action"] for e in json.loads(out)] == ["subscriber.set", "subscriber.add"]
    code, out, _ = cli("audit", "list", "--operator", "nobody")
    assert code == 0 and len(out.splitlines()) == 1
    assert cli("reseller", "remove", "acme")[0] == 1  # still owns a plan
    assert cli("operator", "remove", "carol")[0] == 0
