"""Cards, statements, documents and exports over the API (issue 13's money operations)."""

from __future__ import annotations

from datetime import timedelta

import pytest_twisted
from sqlalchemy import update
from sqlalchemy.orm import Session

from billing.documents import DocumentRenderer, render_statement
from billing.models import BillingAccount
from tests.api_support import Api
from tests.test_statements import APRIL
from tests.test_statements import seed as seed_statements
from webadmin.api import endpoints as _registered  # noqa: F401
from webadmin.api.declare import API

TAGS = ("cards", "statements", "documents", "exports")


class Tracker:
    """Calls the API and remembers which declared endpoints were exercised."""

    def __init__(self, api: Api, token: str) -> None:
        self.api, self.token, self.seen = api, token, set()

    async def __call__(self, name: str, method: str, path: str, body: object = None,
                       **kw: object) -> tuple[int, object, object]:
        self.seen.add(name)
        return await self.api.call(method, path, self.token, body, **kw)  # type: ignore[arg-type]

    async def every_format(self, name: str, path: str, expect: str) -> None:
        for fmt in ("json", "xml", "text", "html"):
            sep = "&" if "?" in path else "?"
            code, text, _ = await self(name, "GET", f"{path}{sep}out={fmt}")
            assert code == 200 and expect in str(text), (name, fmt, text)


@pytest_twisted.ensureDeferred
async def test_cards_batch_block_activate(api: Api) -> None:
    """A batch shows its PINs once; blocked cards refuse; a wrong PIN is refused; the right
    one credits once (a replayed key answers the same, a second use is refused)."""
    admin = api.token("admin")
    t = Tracker(api, admin)
    code, body, _ = await api.call("POST", "/subscribers", admin,
                                   {"login": "alice", "password": "alice-pw-1"})
    assert code == 201
    code, batch, _ = await t("add_batch", "POST", "/cards/batches",
                             {"name": "b1", "count": 3, "value": "5.00"})
    assert code == 201 and len(batch["cards"]) == 3 and batch["value"] == "5.00"
    first, second = batch["cards"][0], batch["cards"][1]
    await t.every_format("list_batches", "/cards/batches", "b1")
    await t.every_format("list_cards", "/cards?batch=b1", first["serial"])
    await t.every_format("show_card", f"/cards/{first['serial']}", first["serial"])
    code, text, _ = await api.call("GET", "/cards?batch=b1", admin)
    assert all("pin" not in c for c in text["items"])  # PINs are never shown again
    code, body, _ = await t("block_cards", "POST", "/cards/block",
                            {"serials": [second["serial"]], "reason": "lost"})
    assert code == 200 and body["cards"] == 1
    code, body, _ = await t("activate_card", "POST", f"/cards/{second['serial']}/activate",
                            {"login": "alice", "pin": second["pin"]})
    assert code == 409 and body["error"]["code"] == "rejected"
    code, body, _ = await t("unblock_cards", "POST", "/cards/unblock", {"batch": "b1"})
    assert code == 200
    code, body, _ = await t("activate_card", "POST", f"/cards/{first['serial']}/activate",
                            {"login": "alice", "pin": "0" * 12})
    assert code == 409, body
    key = {"Idempotency-Key": "act-1"}
    code, ok, _ = await t("activate_card", "POST", f"/cards/{first['serial']}/activate",
                          {"login": "alice", "pin": first["pin"]}, headers=key)
    assert code == 201 and ok["balance"] == "5.00", ok
    code, again, _ = await t("activate_card", "POST", f"/cards/{first['serial']}/activate",
                             {"login": "alice", "pin": first["pin"]}, headers=key)
    assert code == 201 and again == ok
    code, body, _ = await t("activate_card", "POST", f"/cards/{first['serial']}/activate",
                            {"login": "alice", "pin": first["pin"]})
    assert code == 409  # used
    code, acct, _ = await api.call("GET", "/accounts/alice", admin)
    assert acct["balance"] == "5.00"
    assert t.seen == {e.name for e in API.endpoints if e.tag == "cards"}


@pytest_twisted.ensureDeferred
async def test_statements_documents_exports(api: Api) -> None:
    """Issue April's statements, list and show them, download a verified document (a
    tampered file is refused), export April's payments as CSV and XML."""
    seed_statements(api.engine, n_post=1, n_pre=1)
    with Session(api.engine) as s, s.begin():
        s.execute(update(BillingAccount).values(created_at=APRIL - timedelta(days=30)))
    admin = api.token("admin")
    t = Tracker(api, admin)
    code, body, _ = await t("issue_statements", "POST", "/statements/issue",
                            {"period": "2024-04"})
    assert code == 200 and body["statements"] == 2, body
    code, lst, _ = await t("list_statements", "GET", "/statements?period=2024-04")
    assert code == 200 and len(lst["items"]) == 2
    sid = lst["items"][0]["id"]
    await t.every_format("list_statements", "/statements?period=2024-04", "2024-04")
    await t.every_format("show_statement", f"/statements/{sid}", "2024-04")
    renderer = DocumentRenderer(api.server.config)
    renderer.pdf = False
    doc_id = render_statement(renderer, api.dbpool.run_sync, sid)
    assert doc_id is not None
    await t.every_format("list_documents", "/documents", str(doc_id))
    await t.every_format("show_document", f"/documents/{doc_id}", "statement")
    code, doc, _ = await t("show_document", "GET", f"/documents/{doc_id}")
    assert code == 200 and doc["verified"] is True
    code, html, resp = await t("document_file", "GET", f"/documents/{doc_id}/file")
    assert code == 200 and "2024" in html
    assert b"attachment" in resp.headers.getRawHeaders(b"content-disposition")[0]
    code, body, _ = await t("document_file", "GET", f"/documents/{doc_id}/file?format=pdf")
    assert code == 400 and body["error"]["field"] == "format"
    stored = next(renderer.store.rglob("*.html"))
    stored.write_text(stored.read_text() + "<!-- tampered -->")
    code, doc, _ = await t("show_document", "GET", f"/documents/{doc_id}")
    assert code == 200 and doc["verified"] is False
    code, body, _ = await t("document_file", "GET", f"/documents/{doc_id}/file")
    assert code == 409 and "SHA-256" in body["error"]["message"]
    code, csv, resp = await t("export", "GET", "/exports/payments?from=2024-04-01&to=2024-05-01")
    assert code == 200 and resp.headers.getRawHeaders(b"content-type")[0].startswith(b"text/csv")
    assert "p0-apr" in csv or "p0" in csv
    code, xml, _ = await t("export", "GET",
                           "/exports/payments?from=2024-04-01&to=2024-05-01&format=xml")
    assert code == 200 and xml.startswith("<?xml")
    code, body, _ = await t("export", "GET", "/exports/secrets?from=2024-04-01&to=2024-05-01")
    assert code == 400 and body["error"]["field"] == "kind"
    code, body, _ = await t("export", "GET", "/exports/payments?from=yesterday&to=2024-05-01")
    assert code == 400 and body["error"]["field"] == "from"
    assert t.seen == {e.name for e in API.endpoints if e.tag in TAGS[1:]}
