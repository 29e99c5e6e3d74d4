"""Self-care over the API: a front-end token logs subscribers in; they see only their own."""

from __future__ import annotations

import pytest_twisted
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.access import AuditEntry
from tests.api_support import Api
from tests.test_api_endpoints import seed_usage


async def front_end_login(api: Api, login: str = "alice", password: str = "alice-pass-1"
                          ) -> tuple[str, str]:
    """(front-end token, subscriber session token) for ``login``."""
    admin = api.token("admin")
    code, body, _ = await api.call("PUT", f"/subscribers/{login}/password", admin,
                                   {"password": password})
    assert code == 200, body
    front = api.token("selfcare-frontend", name=f"front-{login}")
    code, body, _ = await api.call("POST", "/selfcare/login", front,
                                   {"login": login, "password": password})
    assert code == 200, body
    assert body["role"] == "subscriber" and body["login"] == login
    return front, body["token"]


@pytest_twisted.ensureDeferred
async def test_subscriber_sees_own_account_usage_and_money(api: Api) -> None:
    """Balance after a payment, quota left, own sessions, calls, ledger and payments."""
    seed_usage(api)
    admin = api.token("admin")
    code, body, _ = await api.call("PUT", "/plans/home/prices", admin,
                                   {"price_per_minute": "0.10", "allowance_minutes": 100})
    assert code == 200, body
    code, body, _ = await api.call("POST", "/payments", admin,
                                   {"login": "alice", "amount": "12.34", "reference": "r-1"})
    assert code == 201, body
    _, sub = await front_end_login(api)
    code, me, _ = await api.call("GET", "/me", sub)
    assert code == 200 and me["role"] == "subscriber" and me["account"]["balance"] == "12.34"
    code, acct, _ = await api.call("GET", "/me/account", sub)
    assert code == 200 and acct["plan"] == "home" and acct["available"] == "12.34"
    assert acct["quota"]["seconds_included"] == 6000
    assert 0 <= acct["quota"]["seconds_left"] <= 6000
    code, sessions, _ = await api.call("GET", "/me/sessions", sub)
    assert code == 200 and len(sessions["items"]) == 1  # alice's one session, not bob's
    assert sessions["items"][0]["octets_in"] == 5
    code, payments, _ = await api.call("GET", "/me/payments", sub)
    assert [p["amount"] for p in payments["items"]] == ["12.34"]
    code, ledger, _ = await api.call("GET", "/me/ledger?limit=5", sub)
    assert code == 200 and ledger["items"][0]["kind"] == "payment"
    code, calls, _ = await api.call("GET", "/me/calls", sub)
    assert code == 200 and calls["items"] == []  # the call belongs to the phone login
    code, days, _ = await api.call("GET", "/me/traffic?days=7", sub)
    assert code == 200 and isinstance(days, list)
    for fmt in ("xml", "text", "html"):
        code, text, _ = await api.call("GET", f"/me/account?out={fmt}", sub)
        assert code == 200 and "12.34" in text
    from webadmin.api.declare import API

    reads = [e for e in API.endpoints if e.permission == "self.read" and e.method == "GET"
             and not e.params]
    assert len(reads) >= 6
    for ep in reads:  # every self-care read in every format
        for fmt in ("json", "xml", "text", "html"):
            code, text, _ = await api.call("GET", f"{ep.path}?out={fmt}", sub)
            assert code == 200, (ep.path, fmt, text)


@pytest_twisted.ensureDeferred
async def test_subscriber_reaches_nothing_else(api: Api) -> None:
    """A subscriber session is refused every operator endpoint; the front end everything
    but the login; revoking the front end's token ends the sessions it opened."""
    seed_usage(api)
    front, sub = await front_end_login(api)
    for path in ("/subscribers/bob", "/accounts/bob", "/subscribers", "/payments",
                 "/sessions", "/nas"):
        code, body, _ = await api.call("GET", path, sub)
        assert code == 403 and body["error"]["code"] == "forbidden", path
    for path in ("/me", "/me/account", "/subscribers"):
        assert (await api.call("GET", path, front))[0] == 403, path
    code, _, _ = await api.call("POST", "/payments", sub, {"login": "alice", "amount": "1",
                                                           "reference": "x"})
    assert code == 403
    admin = api.token("admin")
    assert (await api.call("DELETE", "/tokens/front-alice", admin))[0] == 200
    assert (await api.call("GET", "/me", sub))[0] == 401


@pytest_twisted.ensureDeferred
async def test_own_password_change(api: Api) -> None:
    """A wrong current password changes nothing; the right one does, and is audited."""
    seed_usage(api)
    front, sub = await front_end_login(api)
    code, body, _ = await api.call("PUT", "/me/password", sub,
                                   {"old_password": "wrong", "password": "brand-new-pw"})
    assert code == 400 and body["error"]["field"] == "old_password"
    code, body, _ = await api.call("PUT", "/me/password", sub,
                                   {"old_password": "alice-pass-1", "password": "brand-new-pw"})
    assert code == 200, body
    code, _, _ = await api.call("POST", "/selfcare/login", front,
                                {"login": "alice", "password": "alice-pass-1"})
    assert code == 401
    code, _, _ = await api.call("POST", "/selfcare/login", front,
                                {"login": "alice", "password": "brand-new-pw"})
    assert code == 200
    with Session(api.engine) as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.actor == "subscriber:alice")).all()
    assert [(r.action, r.object_key) for r in rows] == [("subscriber.passwd", "alice")]
    assert "brand-new-pw" not in str(rows[0].after)


@pytest_twisted.ensureDeferred
async def test_selfcare_login_wrong_and_throttled(api: Api) -> None:
    """Wrong subscriber passwords are one 401; after [web] login_failures, 429."""
    seed_usage(api)
    front = api.token("selfcare-frontend")
    limit = api.server.config.web.login_failures
    answers = [await api.call("POST", "/selfcare/login", front,
                              {"login": login, "password": "nope"})
               for login in ["alice"] * (limit - 1) + ["ghost"]]
    assert {a[0] for a in answers} == {401}
    assert len({str(a[1]) for a in answers}) == 1  # unknown login reads like a wrong password
    code, body, _ = await api.call("POST", "/selfcare/login", front,
                                   {"login": "bob", "password": "nope"})
    assert code == 429 and body["error"]["code"] == "throttled"
