"""The admin's Documents page in a real Chromium: list, filter, verified download, roles."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from billing.accounts import ensure_account
from billing.documents import DocumentRenderer, render_statement
from billing.statement_models import Document, Statement
from billing.statements import thd_issue_statements
from core.config import load_config
from core.db.pool import run_in_session
from tests.billing_support import make_subscriber
from tests.browser_support import page_shot
from tests.test_statements import AFTER_MAY, APRIL, settings
from tests.test_statements import seed as seed_statements
from tests.test_web_admin import PASSWORDS, ROOT, add_operator, login
from tests.web_support import ServerProcess, seed, start_server
from webadmin.service import resellers

pytestmark = pytest.mark.browser
# the billing loop must not issue or render on its own: the test issues April itself
QUIET_BILLING = "[statements]\nenabled = false\nrender_per_pass = 0\n[documents]\npdf = false\n"

HOSTILE = "<b>x</b>\"'&<img src=x onerror=window.pwned=1>"


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path, browser: Any
           ) -> Iterator[ServerProcess]:
    """radbill serve with April's statements issued and rendered (a hostile login)."""
    seed(engine, resellers.thd_add_reseller, ROOT, "acme")
    add_operator(engine, "boss", "admin")
    add_operator(engine, "partner", "reseller", "acme")
    seed_statements(engine, n_post=1, n_pre=0)
    with Session(engine) as s, s.begin():
        acct = ensure_account(s, make_subscriber(s, HOSTILE, None), "USD")
        acct.created_at = APRIL - timedelta(days=30)
    with Session(engine) as s, s.begin():
        thd_issue_statements(s, settings(), "2024-04", 0, now=AFTER_MAY)
    factory = sessionmaker(engine)

    def run(fn: Any, *a: Any) -> Any:
        return run_in_session(factory, fn, *a)

    for srv in start_server(db_url, tmp_path, QUIET_BILLING):
        renderer = DocumentRenderer(load_config(str(srv.config)))
        with Session(engine) as s:
            ids = list(s.scalars(select(Statement.id).order_by(Statement.id)))
        assert len(ids) == 2
        for sid in ids:
            assert render_statement(renderer, run, sid) is not None
        yield srv


def stored(engine: Engine) -> dict[int, str]:
    with Session(engine) as s:
        rows = s.execute(select(Document.id, Document.html_sha256)).all()
        return {r[0]: r[1] for r in rows}


def test_admin_lists_filters_and_downloads_verified(page: Any, server: ServerProcess,
                                                    engine: Engine) -> None:
    """The admin sees both April statements, filters by login and period, downloads a file
    whose SHA-256 is the recorded one; a hostile login is shown as text."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    page.click("nav >> text=Documents")
    rows = page.locator("#documents tbody tr")
    assert rows.count() == 2
    text = page.inner_text("#documents")
    assert "2024-04" in text and "p0" in text and HOSTILE in text
    assert page.evaluate("window.pwned") is None
    assert page.locator("#documents img").count() == 0
    page.fill("input[name=login]", "p0")
    page.click("form.filter button")
    assert rows.count() == 1
    hashes = stored(engine)
    link = page.locator("#documents td.html a").first
    href = link.get_attribute("href")
    doc_id = int(href.split("/")[-2])
    assert hashes[doc_id][:12] in page.inner_text("#documents")
    resp = page.request.get(server.base + href)
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["content-disposition"].startswith("attachment; filename=")
    assert hashlib.sha256(resp.body()).hexdigest() == hashes[doc_id]
    page.goto(server.base + "/admin/documents?period=2024-05")
    assert rows.count() == 0
    page.goto(server.base + "/admin/documents?period=nonsense")
    assert "Period must look like 2024-04." in page.inner_text("body")
    assert rows.count() == 2
    assert page.request.get(server.base + "/admin/documents/99999/file").status == 404
    assert page.request.get(
        server.base + f"/admin/documents/{doc_id}/file?format=pdf").status == 404
    page.goto(server.base + "/admin/subscribers/p0")
    page.click("#actions >> #documents")
    assert rows.count() == 1 and "p0" in page.inner_text("#documents")
    page_shot(page, "admin-documents")


def test_tampered_file_refused(page: Any, server: ServerProcess, engine: Engine,
                               tmp_path: Path) -> None:
    """A stored file changed after issue is refused (409), never served."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    doc_id = max(stored(engine))
    for f in (tmp_path / "documents").rglob("*.html"):
        f.write_text(f.read_text() + "<!-- tampered -->")
    resp = page.request.get(server.base + f"/admin/documents/{doc_id}/file")
    assert resp.status == 409
    assert "SHA-256" in resp.text()


def test_role_without_document_read_sees_no_documents(page: Any, server: ServerProcess) -> None:
    """A reseller's operator (no document.read) has no Documents link; direct GETs are 403."""
    assert "partner" in PASSWORDS
    login(page, server.base, "partner")
    page.wait_for_url(server.base + "/admin/")
    assert page.locator("nav >> text=Documents").count() == 0
    assert page.request.get(server.base + "/admin/documents").status == 403
    assert page.request.get(server.base + "/admin/documents/1/file").status == 403
