"""Money over the API: exactly-once payments (also concurrent duplicates), reseller isolation."""

from __future__ import annotations

import json

import pytest_twisted
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twisted.internet import defer

from billing.models import LedgerEntry
from core.db.access import AuditEntry
from tests.api_support import Api
from tests.test_api_endpoints import seed_usage


def counts(api: Api) -> tuple[int, int]:
    """(ledger entries, payment audit rows)."""
    with Session(api.engine) as s:
        entries = s.scalar(select(func.count()).select_from(LedgerEntry))
        audited = s.scalar(select(func.count()).select_from(AuditEntry)
                           .where(AuditEntry.action.like("payment.%")))
    return int(entries or 0), int(audited or 0)


@pytest_twisted.ensureDeferred
async def test_idempotency_key_replays_the_first_answer(api: Api) -> None:
    """The same key twice: one ledger entry, one audit row, the same answer; another body
    under that key is a 409; no key and no reference is refused."""
    seed_usage(api)
    tok = api.token("cashier")
    pay = {"login": "alice", "amount": "10.00"}
    key = {"Idempotency-Key": "k-1"}
    code1, first, r1 = await api.call("POST", "/payments", tok, pay, headers=key)
    code2, again, r2 = await api.call("POST", "/payments", tok, pay, headers=key)
    assert (code1, code2) == (201, 201) and first == again and first["balance"] == "10.00"
    assert r2.headers.getRawHeaders(b"idempotent-replayed") == [b"true"]
    assert not r1.headers.hasHeader(b"idempotent-replayed")
    assert counts(api) == (1, 1)
    code, body, _ = await api.call("POST", "/payments", tok, {**pay, "amount": "11.00"},
                                   headers=key)
    assert code == 409 and body["error"]["code"] == "conflict"
    code, body, _ = await api.call("POST", "/payments", tok, pay)
    assert code == 400 and body["error"]["field"] == "Idempotency-Key"
    # another caller's identical key is its own request
    other = api.token("admin")
    code, body, _ = await api.call("POST", "/payments", other, pay, headers=key)
    assert code == 201 and body["balance"] == "20.00"
    assert counts(api) == (2, 2)


@pytest_twisted.ensureDeferred
async def test_reference_alone_is_exactly_once(api: Api) -> None:
    """Without a key, the payment's reference: the second post records nothing (200)."""
    seed_usage(api)
    tok = api.token("cashier")
    pay = {"login": "alice", "amount": "3.00", "reference": "bank-77"}
    code, first, _ = await api.call("POST", "/payments", tok, pay)
    assert code == 201 and first["recorded"] is True
    code, second, _ = await api.call("POST", "/payments", tok, pay)
    assert code == 200 and second["already_recorded"] is True
    assert second["entry_id"] == first["entry_id"] and second["balance"] == "3.00"
    assert counts(api) == (1, 1)


@pytest_twisted.ensureDeferred
async def test_concurrent_duplicates_post_once(api: Api) -> None:
    """Twelve identical requests at once under one key: one payment, twelve equal answers."""
    seed_usage(api)
    tok = api.token("cashier")
    pay = {"login": "alice", "amount": "7.25"}
    calls = [api.call("POST", "/payments", tok, pay, headers={"Idempotency-Key": "dup"})
             for _ in range(12)]
    results = await defer.gatherResults([defer.ensureDeferred(c) for c in calls])
    assert {r[0] for r in results} == {201}, [r[1] for r in results]
    assert len({json.dumps(r[1], sort_keys=True) for r in results}) == 1
    assert counts(api) == (1, 1)
    code, acct, _ = await api.call("GET", "/accounts/alice", tok)
    assert code == 200 and acct["balance"] == "7.25"


@pytest_twisted.ensureDeferred
async def test_reseller_topup_is_exactly_once(api: Api) -> None:
    """A reseller top-up posted again (same reference, or same Idempotency-Key) answers 200
    with the balance unchanged; OpenAPI documents that 200 (schemathesis found it missing)."""
    admin = api.token("admin")
    api.reseller("east")
    top = {"amount": "40.00", "reference": "bank-77"}
    code, body, _ = await api.call("POST", "/resellers/east/topup", admin, top)
    assert code == 201 and body["balance"] == "40.00" and body["recorded"], body
    code, body, _ = await api.call("POST", "/resellers/east/topup", admin, top)
    assert code == 200 and body["balance"] == "40.00" and not body["recorded"], body
    key = {"Idempotency-Key": "top-2"}
    again = {"amount": "5.00", "reference": "bank-78"}
    code1, first, _ = await api.call("POST", "/resellers/east/topup", admin, again, headers=key)
    code2, second, r2 = await api.call("POST", "/resellers/east/topup", admin, again,
                                       headers=key)
    assert (code1, code2) == (201, 201) and first == second and first["balance"] == "45.00"
    assert r2.headers.getRawHeaders(b"idempotent-replayed") == [b"true"]
    code, doc, _ = await api.call("GET", "/openapi.json", admin)
    assert {"200", "201"} <= set(doc["paths"]["/api/v1/resellers/{name}/topup"]["post"]
                                 ["responses"])


@pytest_twisted.ensureDeferred
async def test_reseller_cannot_see_or_touch_another_resellers_subscriber(api: Api) -> None:
    """Another reseller's login answers exactly like a login that does not exist, for every
    read and change; lists show only the reseller's own rows."""
    admin = api.token("admin")
    for r in ("north", "south"):
        api.reseller(r)
        code, body, _ = await api.call("POST", f"/resellers/{r}/topup", admin,
                                       {"amount": "100.00", "reference": f"top-{r}"})
        assert code == 201 and body["balance"] == "100.00", body
    for login, r in (("n1", "north"), ("s1", "south")):
        code, body, _ = await api.call("POST", "/subscribers", admin,
                                       {"login": login, "password": "pw-123456", "reseller": r})
        assert code == 201, body
        code, body, _ = await api.call("POST", "/payments", admin,
                                       {"login": login, "amount": "5", "reference": f"r-{login}"})
        assert code == 201, body
    north = api.token("reseller", "north")
    probes = [("GET", "/subscribers/{}", None), ("PATCH", "/subscribers/{}",
                                                  {"description": "x"}),
              ("DELETE", "/subscribers/{}", None), ("POST", "/subscribers/{}/block", {}),
              ("PUT", "/subscribers/{}/password", {"password": "pw-9999999"}),
              ("GET", "/accounts/{}", None), ("GET", "/accounts/{}/ledger", None),
              ("PUT", "/accounts/{}/credit_limit", {"credit_limit": "9.00"}),
              ("GET", "/payments?login={}", None),
              ("POST", "/sessions/disconnect", "subscriber")]
    for method, path, body in probes:
        answers = []
        for login in ("s1", "nobody-at-all"):
            b = {"subscriber": login} if body == "subscriber" else body
            code, answer, _ = await api.call(method, path.format(login), north, b)
            answers.append((code, json.dumps(answer).replace(login, "LOGIN")))
        assert answers[0] == answers[1], (method, path, answers)
        assert answers[0][0] == 404, (method, path, answers)
    code, body, _ = await api.call("POST", "/payments", north,
                                   {"login": "s1", "amount": "1", "reference": "steal"})
    code2, body2, _ = await api.call("POST", "/payments", north,
                                     {"login": "zz", "amount": "1", "reference": "steal"})
    assert code == code2 == 404
    assert json.dumps(body).replace("s1", "L") == json.dumps(body2).replace("zz", "L")
    code, bal, _ = await api.call("GET", "/resellers/north/balance", north)
    assert code == 200 and bal["balance"] == "95.00"
    assert (await api.call("GET", "/resellers/south/balance", north))[0] == 404
    code, lst, _ = await api.call("GET", "/subscribers", north)
    assert [s["login"] for s in lst["items"]] == ["n1"]
    code, pays, _ = await api.call("GET", "/payments", north)
    assert {p["login"] for p in pays["items"]} == {"n1"}
    with Session(api.engine) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.actor.like("token:t-reseller%"))) == 0


@pytest_twisted.ensureDeferred
async def test_old_idempotency_keys_are_forgotten(api: Api) -> None:
    """The hourly housekeeping deletes keys older than 30 days and keeps the recent ones."""
    from datetime import timedelta

    from sqlalchemy import update
    from twisted.internet import task

    from core.db.access import IdempotencyKey
    from core.db.base import utcnow
    from webadmin.api.housekeeping import IdempotencyExpiry

    seed_usage(api)
    tok = api.token("cashier")
    for key in ("old", "new"):
        code, _, _ = await api.call("POST", "/payments", tok, {"login": "alice", "amount": "1"},
                                    headers={"Idempotency-Key": key})
        assert code == 201
    with api.engine.begin() as conn:
        conn.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old")
                     .values(created_at=utcnow() - timedelta(days=31)))
    clock = task.Clock()
    svc = IdempotencyExpiry(api.dbpool, clock, interval=60)
    svc.startService()
    try:
        assert await svc.expire() == 1
    finally:
        svc.stopService()
    with Session(api.engine) as s:
        assert s.scalars(select(IdempotencyKey.key)).all() == ["new"]
