"""Self-care money over the API: a subscriber activates a card and downloads its documents."""

from __future__ import annotations

from datetime import timedelta

import pytest_twisted
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billing.documents import DocumentRenderer, render_statement
from billing.models import BillingAccount
from core.db.access import AuditEntry
from tests.api_support import Api
from tests.test_api_selfcare import front_end_login
from tests.test_statements import APRIL
from tests.test_statements import seed as seed_statements


async def _batch(api: Api, count: int = 3, value: str = "5.00") -> list[dict[str, str]]:
    admin = api.token("admin")
    code, batch, _ = await api.call("POST", "/cards/batches", admin,
                                    {"name": "sc", "count": count, "value": value})
    assert code == 201, batch
    return batch["cards"]


@pytest_twisted.ensureDeferred
async def test_own_card_credited_once(api: Api) -> None:
    """The right PIN credits the caller's own account once: a replayed key answers the same,
    a second use is refused with its reason; the activation is audited as self-care."""
    admin = api.token("admin")
    code, _, _ = await api.call("POST", "/subscribers", admin,
                                {"login": "alice", "password": "alice-pass-1"})
    assert code == 201
    card = (await _batch(api))[0]
    _, sub = await front_end_login(api)
    key = {"Idempotency-Key": "me-act-1"}
    body = {"serial": card["serial"], "pin": card["pin"]}
    code, ok, _ = await api.call("POST", "/me/cards/activate", sub, body, headers=key)
    assert code == 201 and ok["credited"] == "5.00" and ok["balance"] == "5.00", ok
    code, again, resp = await api.call("POST", "/me/cards/activate", sub, body, headers=key)
    assert code == 201 and again == ok
    assert resp.headers.getRawHeaders(b"idempotent-replayed") == [b"true"]
    code, used, _ = await api.call("POST", "/me/cards/activate", sub, body)
    assert code == 409 and "already been used" in used["error"]["message"], used
    code, acct, _ = await api.call("GET", "/me/account", sub)
    assert acct["balance"] == "5.00"
    code, c, _ = await api.call("GET", f"/cards/{card['serial']}", admin)
    assert c["login"] == "alice" and c["status"] == "used"
    with Session(api.engine) as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "card.activate")).all()
    assert [r.actor for r in rows] == ["subscriber:alice"]


@pytest_twisted.ensureDeferred
async def test_wrong_pins_lock_the_subscriber_out(api: Api) -> None:
    """Wrong PINs are refused and counted; after the limit even the right PIN is refused
    (locked out) and nothing is credited."""
    admin = api.token("admin")
    await api.call("POST", "/subscribers", admin, {"login": "alice", "password": "x-pass-12"})
    card = (await _batch(api))[0]
    _, sub = await front_end_login(api)
    limit = api.server.card_policy.max_failures
    for _ in range(limit):
        code, body, _ = await api.call("POST", "/me/cards/activate", sub,
                                       {"serial": card["serial"], "pin": "0" * 12})
        assert code == 409 and "wrong serial or PIN" in body["error"]["message"], body
    code, body, _ = await api.call("POST", "/me/cards/activate", sub,
                                   {"serial": card["serial"], "pin": card["pin"]})
    assert code == 409 and "too many wrong PINs" in body["error"]["message"], body
    code, acct, _ = await api.call("GET", "/me/account", sub)
    assert acct["balance"] == "0.00"
    code, body, _ = await api.call("POST", "/me/cards/activate", sub,
                                   {"serial": "<script>x</script>", "pin": ""})
    assert code == 400, body


@pytest_twisted.ensureDeferred
async def test_a_fresh_idempotency_key_per_guess_still_locks_out(api: Api) -> None:
    """Wrong PINs sent each with a new Idempotency-Key are counted too (the refusal is the
    key's stored answer, so its counters commit): the operator's and the subscriber's
    activation both lock out, and a replayed key answers the same refusal."""
    admin = api.token("admin")
    await api.call("POST", "/subscribers", admin, {"login": "alice", "password": "x-pass-12"})
    batch = await _batch(api)
    card, other = batch[0], batch[1]
    _, sub = await front_end_login(api)
    limit = api.server.card_policy.max_failures
    for i in range(limit):
        code, body, _ = await api.call("POST", "/me/cards/activate", sub,
                                       {"serial": card["serial"], "pin": "0" * 12},
                                       headers={"Idempotency-Key": f"guess-{i}"})
        assert code == 409 and "wrong serial or PIN" in body["error"]["message"], body
    code, body, _ = await api.call("POST", "/me/cards/activate", sub,
                                   {"serial": card["serial"], "pin": "0" * 12},
                                   headers={"Idempotency-Key": "guess-0"})
    assert code == 409 and "wrong serial or PIN" in body["error"]["message"], body
    code, body, _ = await api.call("POST", "/me/cards/activate", sub,
                                   {"serial": card["serial"], "pin": card["pin"]},
                                   headers={"Idempotency-Key": "right"})
    assert code == 409 and "too many wrong PINs" in body["error"]["message"], body
    # The operator's endpoint counts per subscriber too: alice is locked out there as well.
    code, body, _ = await api.call("POST", f"/cards/{other['serial']}/activate", admin,
                                   {"login": "alice", "pin": other["pin"]},
                                   headers={"Idempotency-Key": "op-1"})
    assert code == 409 and "too many wrong PINs" in body["error"]["message"], body
    code, acct, _ = await api.call("GET", "/me/account", sub)
    assert acct["balance"] == "0.00"


@pytest_twisted.ensureDeferred
async def test_own_documents_only(api: Api) -> None:
    """A subscriber lists and downloads its own statement; another subscriber's document id
    answers exactly like a missing one (404, same message shape)."""
    seed_statements(api.engine, n_post=1, n_pre=1)
    with Session(api.engine) as s, s.begin():
        s.execute(update(BillingAccount).values(created_at=APRIL - timedelta(days=30)))
    admin = api.token("admin")
    code, body, _ = await api.call("POST", "/statements/issue", admin, {"period": "2024-04"})
    assert code == 200 and body["statements"] == 2, body
    code, lst, _ = await api.call("GET", "/statements?period=2024-04", admin)
    renderer = DocumentRenderer(api.server.config)
    renderer.pdf = False
    ids = {st["login"]: render_statement(renderer, api.dbpool.run_sync, st["id"])
           for st in lst["items"]}
    _, sub = await front_end_login(api, "p0", "p0-password-1")
    code, docs, _ = await api.call("GET", "/me/documents", sub)
    assert code == 200 and [d["id"] for d in docs["items"]] == [ids["p0"]], docs
    for fmt in ("xml", "text", "html"):
        code, text, _ = await api.call("GET", f"/me/documents?out={fmt}", sub)
        assert code == 200 and str(ids["p0"]) in text
    code, html, resp = await api.call("GET", f"/me/documents/{ids['p0']}/file", sub)
    assert code == 200 and "2024" in html and "p0" in html
    assert b"attachment" in resp.headers.getRawHeaders(b"content-disposition")[0]
    code, other, _ = await api.call("GET", f"/me/documents/{ids['h0']}/file", sub)
    code2, missing, _ = await api.call("GET", "/me/documents/999999/file", sub)
    assert code == code2 == 404
    assert other["error"]["code"] == missing["error"]["code"] == "not_found"
    assert other["error"]["message"].replace(str(ids["h0"]), "N") == \
        missing["error"]["message"].replace("999999", "N")
    code, body, _ = await api.call("GET", f"/me/documents/{ids['p0']}/file?format=pdf", sub)
    assert code == 400 and body["error"]["field"] == "format"
    code, body, _ = await api.call("GET", "/me/documents/x'1/file", sub)
    assert code == 400
