"""Every API endpoint over real HTTP: each in every output format, audited, and the role matrix."""

from __future__ import annotations

import html
import json
from typing import Any
from xml.etree import ElementTree as ET

import pytest_twisted
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounting.models import AcctCall, AcctSession
from accounting.records import AcctStatus
from accounting.store import AcctPolicy, thd_apply_records
from core.db.access import AuditEntry
from tests.api_support import Api
from tests.test_accounting_store import call
from tests.test_accounting_support import rec, seed
from webadmin.api import endpoints as _registered  # noqa: F401  (declares every endpoint)
from webadmin.api.declare import API
from webadmin.roles import ROLES

FORMATS = ("json", "xml", "text", "html")
# Covered by their own tests (test_api_basics, test_api_selfcare): logging in and out.
ELSEWHERE = {"login", "logout", "selfcare_login"}
NOT_AUDITED = {"login", "logout", "selfcare_login"}


def seed_usage(api: Api) -> None:
    """A plan, NASes, subscribers alice/bob/4930123456, sessions and a call."""
    with Session(api.engine) as s, s.begin():
        ids = seed(s)
        n = ids["nas1"]
        thd_apply_records(s, [
            rec(AcctStatus.START, nas_id=n, sid="a1", t=0, framed_ip="100.64.0.1"),
            rec(AcctStatus.STOP, nas_id=n, sid="a1", t=100, session_time=100, octets_in=5,
                octets_out=6),
            rec(AcctStatus.START, nas_id=n, sid="b1", user="bob", t=300),
            call(AcctStatus.STOP, nas_id=ids["cube"], call_id="k1", leg="originate",
                 billable=True, t=500, duration=42, connect=458)], AcctPolicy())


def fake_disconnect(seen: list[Any]) -> Any:
    async def send(dbpool: Any, sessions: list[Any]) -> list[Any]:
        from aaa.kick import KickResult
        from billing.cutoff import CutOutcome, CutResult

        seen.extend(sessions)
        return [KickResult(s, CutResult(CutOutcome.ACK)) for s in sessions]

    return send


def leaves(value: Any) -> list[str]:
    """Short plain strings of a JSON answer: what every format must show too."""
    out: list[str] = []
    if isinstance(value, dict):
        for v in value.values():
            out += leaves(v)
    elif isinstance(value, list):
        for v in value:
            out += leaves(v)
    elif isinstance(value, str) and 0 < len(value) < 40 and value.isprintable():
        out.append(value)
    return out


def audit_count(api: Api) -> int:
    with Session(api.engine) as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


STEPS: list[tuple[str, str, str, Any, int]] = [
    # (endpoint, method, path, body, status)
    ("me", "GET", "/me", None, 200),
    ("openapi", "GET", "/openapi.json", None, 200),
    ("add_reseller", "POST", "/resellers", {"name": "north", "description": "N"}, 201),
    ("list_resellers", "GET", "/resellers", None, 200),
    ("add_reseller", "POST", "/resellers", {"name": "west"}, 201),
    ("reseller_topup", "POST", "/resellers/west/topup", {"amount": "50.00",
                                                         "reference": "t-1"}, 201),
    ("reseller_limit", "PUT", "/resellers/west/credit_limit", {"credit_limit": "10.00"}, 200),
    ("reseller_balance", "GET", "/resellers/west/balance", None, 200),
    ("show_reseller", "GET", "/resellers/north", None, 200),
    ("set_reseller", "PATCH", "/resellers/north", {"description": "Nord"}, 200),
    ("add_nas", "POST", "/nas", {"name": "edge", "address": "192.0.2.9", "secret": "s3cret!x",
                                 "vendor": "mikrotik"}, 201),
    ("list_nas", "GET", "/nas", None, 200),
    ("show_nas", "GET", "/nas/edge", None, 200),
    ("set_nas", "PATCH", "/nas/edge", {"description": "edge router"}, 200),
    ("add_plan", "POST", "/plans", {"name": "fast", "rate_limit": "10M/50M"}, 201),
    ("list_plans", "GET", "/plans", None, 200),
    ("show_plan", "GET", "/plans/fast", None, 200),
    ("set_plan", "PATCH", "/plans/fast", {"session_timeout": 3600}, 200),
    ("set_plan_prices", "PUT", "/plans/fast/prices",
     {"price_per_minute": "0.02", "monthly_fee": "10.00"}, 200),
    ("plan_prices", "GET", "/plans/fast/prices", None, 200),
    ("add_pool", "POST", "/pools", {"name": "v4", "kind": "ipv4",
                                    "ranges": ["10.9.0.0/29"]}, 201),
    ("list_pools", "GET", "/pools", None, 200),
    ("show_pool", "GET", "/pools/v4", None, 200),
    ("set_pool", "PATCH", "/pools/v4", {"description": "test pool"}, 200),
    ("attach_pool", "POST", "/plans/fast/pools", {"pool": "v4"}, 200),
    ("add_subscriber", "POST", "/subscribers", {"login": "carol", "password": "pw-carol-1",
                                                "plan": "fast"}, 201),
    ("list_subscribers", "GET", "/subscribers?plan=fast", None, 200),
    ("show_subscriber", "GET", "/subscribers/carol", None, 200),
    ("set_subscriber", "PATCH", "/subscribers/carol", {"description": "VIP"}, 200),
    ("subscriber_password", "PUT", "/subscribers/carol/password", {"password": "new-pw-2"},
     200),
    ("assign_static", "POST", "/pools/v4/static", {"login": "carol"}, 200),
    ("list_leases", "GET", "/pools/v4/leases", None, 200),
    ("release_static", "DELETE", "/pools/v4/static/carol", None, 200),
    ("detach_pool", "DELETE", "/plans/fast/pools/v4", None, 200),
    ("block_subscriber", "POST", "/subscribers/bob/block", {}, 200),
    ("unblock_subscriber", "POST", "/subscribers/bob/unblock", {}, 200),
    ("disable_subscriber", "POST", "/subscribers/carol/disable", {"disconnect": False}, 200),
    ("add_payment", "POST", "/payments", {"login": "alice", "amount": "25.50",
                                          "reference": "bank-1"}, 201),
    ("list_payments", "GET", "/payments?login=alice", None, 200),
    ("show_account", "GET", "/accounts/alice", None, 200),
    ("set_credit_limit", "PUT", "/accounts/alice/credit_limit", {"credit_limit": "5.00"}, 200),
    ("ledger", "GET", "/accounts/alice/ledger", None, 200),
    ("list_sessions", "GET", "/sessions?subscriber=alice", None, 200),
    ("show_session", "GET", "/sessions/{session}", None, 200),
    ("list_calls", "GET", "/calls", None, 200),
    ("show_call", "GET", "/calls/{call}", None, 200),
    ("disconnect", "POST", "/sessions/disconnect", {"subscriber": "bob"}, 200),
    ("rate", "GET", "/rate?plan=fast&duration=120&at=2024-03-04T10:00", None, 200),
    ("billing_state", "GET", "/billing", None, 200),
    ("billing_run", "POST", "/billing/run", None, 200),
    ("ledger_check", "GET", "/ledger/check", None, 200),
    ("add_operator", "POST", "/operators", {"login": "olga", "role": "support",
                                            "password": "correct-horse"}, 201),
    ("list_operators", "GET", "/operators", None, 200),
    ("show_operator", "GET", "/operators/olga", None, 200),
    ("set_operator", "PATCH", "/operators/olga", {"description": "night shift"}, 200),
    ("operator_password", "PUT", "/operators/olga/password", {"password": "battery-staple"},
     200),
    ("add_token", "POST", "/tokens", {"name": "erp", "role": "cashier", "expires": 30}, 201),
    ("list_tokens", "GET", "/tokens", None, 200),
    ("revoke_token", "DELETE", "/tokens/erp", None, 200),
    ("list_audit", "GET", "/audit?object=subscriber:carol", None, 200),
    ("remove_operator", "DELETE", "/operators/olga", None, 200),
    ("add_subscriber", "POST", "/subscribers", {"login": "dave", "password": "pw-dave-1"},
     201),
    ("remove_subscriber", "DELETE", "/subscribers/dave", None, 200),
    ("remove_pool", "DELETE", "/pools/v4", None, 200),
    ("add_plan", "POST", "/plans", {"name": "spare"}, 201),
    ("remove_plan", "DELETE", "/plans/spare", None, 200),
    ("remove_nas", "DELETE", "/nas/edge", None, 200),
    ("remove_reseller", "DELETE", "/resellers/north", None, 200),
]


def check_format(fmt: str, text: str, expected: list[str]) -> None:
    if fmt == "xml":
        ET.fromstring(text.encode())  # noqa: S314 (our own answer)
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>")
    shown = html.unescape(text) if fmt in ("html", "xml") else text
    for value in expected[:8]:
        assert value in shown, (fmt, value, text[:400])


@pytest_twisted.ensureDeferred
async def test_every_endpoint_in_every_format(api: Api) -> None:
    """Each endpoint answers its status; reads in all four formats show the same values;
    every successful change writes an audit row; no declared endpoint is left out."""
    seed_usage(api)
    sent: list[Any] = []
    api.server.disconnect = fake_disconnect(sent)
    tok = api.token("admin")
    covered = set()
    by_name = {e.name: e for e in API.endpoints}
    # Row ids as the database gave them (MariaDB's auto-increment survives earlier tests).
    with Session(api.engine) as s:
        ids = {"session": s.scalar(select(func.min(AcctSession.id))),
               "call": s.scalar(select(func.min(AcctCall.id)))}
    for i, (name, method, path, body, status) in enumerate(STEPS):
        path = path.replace("{session}", str(ids["session"])).replace("{call}", str(ids["call"]))
        ep = by_name[name]
        assert ep.method == method, name
        covered.add(name)
        if method == "GET":
            code, answer, _ = await api.call(method, path, tok)
            assert code == status, (name, answer)
            expected = leaves(answer)
            if name == "openapi":
                continue
            for fmt in FORMATS[1:]:
                sep = "&" if "?" in path else "?"
                code, text, _ = await api.call(method, f"{path}{sep}out={fmt}", tok)
                assert code == status, (name, fmt, text)
                check_format(fmt, text, expected)
            continue
        before = audit_count(api)
        fmt = FORMATS[i % 4]  # writes rotate through the formats
        sep = "&" if "?" in path else "?"
        code, answer, _ = await api.call(method, f"{path}{sep}out={fmt}", tok, body)
        assert code == status, (name, fmt, answer)
        if fmt == "json":
            assert "error" not in answer
        elif fmt == "xml":
            ET.fromstring(answer.encode())  # noqa: S314
        if name not in NOT_AUDITED:
            assert audit_count(api) > before, f"{name} wrote no audit row"
    assert sent and {s.user_name for s in sent} == {"bob"}, "disconnect went nowhere"
    missing = {e.name for e in API.endpoints} - covered - ELSEWHERE - SELFCARE_AND_MONEY
    assert not missing, f"endpoints without a test step: {sorted(missing)}"


# Endpoints exercised by test_api_selfcare and test_api_money.
SELFCARE_AND_MONEY = {e.name for e in API.endpoints if e.tag in ("selfcare", "cards",
                                                                    "documents", "exports",
                                                                    "statements")
                      or e.permission in ("self.read", "self.write")}


async def role_credentials(api: Api) -> dict[str, str]:
    """A bearer credential for every role in ROLES (a subscriber via a self-care login)."""
    api.reseller("r1")
    creds = {role: api.token(role, "r1" if role == "reseller" else None)
             for role in ROLES if role != "subscriber"}
    admin = creds["admin"]
    code, body, _ = await api.call("POST", "/subscribers", admin,
                                   {"login": "sub1", "password": "sub1-password"})
    assert code == 201, body
    code, body, _ = await api.call("POST", "/selfcare/login", creds["selfcare-frontend"],
                                   {"login": "sub1", "password": "sub1-password"})
    assert code == 200, body
    creds["subscriber"] = body["token"]
    assert set(creds) == set(ROLES)
    return creds


@pytest_twisted.ensureDeferred
async def test_role_matrix(api: Api) -> None:
    """Every role against every declared endpoint: 403 exactly where ROLES lacks the
    endpoint's permission, never 401, and nothing else refused as forbidden."""
    api.server.disconnect = fake_disconnect([])
    creds = await role_credentials(api)
    endpoints = sorted((e for e in API.endpoints if not e.public),
                       key=lambda e: e.name == "logout")  # logging out ends the session
    wrong = []
    for role, cred in creds.items():
        for ep in endpoints:
            path = ep.path
            for p in ep.params:
                path = path.replace("{" + p + "}", "zz-none")
            body = {} if ep.body is not None else None
            code, answer, _ = await api.call(ep.method, path, cred, body)
            assert code != 401, (role, ep.name, answer)
            assert code < 500, (role, ep.name, answer)
            denied = code == 403 and answer["error"]["code"] == "forbidden"
            expected = ep.permission is not None and ep.permission not in ROLES[role]
            if denied != expected:
                wrong.append((role, ep.name, code, json.dumps(answer)[:120]))
    assert not wrong, wrong
