"""Self-care cards and documents (/my/card, /my/documents) in Chromium, SQLite and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from aaa.admin.passwords import hash_credentials
from aaa.admin.subscribers import thd_set_password
from billing import cards
from billing.documents import DocumentRenderer, render_statement
from billing.models import BillingAccount
from billing.statements import StatementSettings, thd_issue_statements, thd_list_statements
from core.config import load_config
from core.db.pool import run_in_session
from tests.test_statements import APRIL
from tests.test_statements import seed as seed_statements
from tests.test_web_selfcare import login
from tests.web_support import ServerProcess, seed, start_server

pytestmark = pytest.mark.browser

EVIL = "<script>alert(1)</script>\"'x"


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path, browser: Any
           ) -> Iterator[ServerProcess]:
    """radbill serve; p0 and h0 with April statements rendered, a batch of two $5 cards."""
    seed_statements(engine, n_post=1, n_pre=1)
    with Session(engine) as s, s.begin():
        s.execute(update(BillingAccount).values(created_at=APRIL - timedelta(days=30)))
    for who in ("p0", "h0"):
        seed(engine, thd_set_password, who, hash_credentials(f"{who}-password"))
    batch = seed(engine, cards.thd_create_batch, "web", 2, 500, "USD")
    for srv in start_server(db_url, tmp_path):
        config = load_config(str(srv.config))
        seed(engine, thd_issue_statements, StatementSettings.from_config(config), "2024-04")
        renderer = DocumentRenderer(config)
        renderer.pdf = False

        def run(fn: Any, *args: Any) -> Any:
            return run_in_session(sessionmaker(engine), fn, *args)

        srv.docs = {st.login: render_statement(renderer, run, st.id)  # type: ignore[attr-defined]
                    for st in seed(engine, thd_list_statements, None, "2024-04", 10)}
        srv.cards = batch.cards  # type: ignore[attr-defined]
        yield srv


def test_activate_card_and_download_document(page: Any, server: Any) -> None:
    """A subscriber activates a card (hostile serial and wrong PIN shown beside the fields,
    the flash says what was credited and the new balance), then downloads its statement;
    another subscriber's document is not found."""
    card = server.cards[0]
    login(page, server.base, "p0", "p0-password")
    page.wait_for_url(server.base + "/my/")
    before = page.inner_text("#balance")
    page.click("nav >> text=Activate a card")
    page.fill("#f-serial", EVIL)
    page.fill("#f-pin", "1")
    page.click("main button[type=submit]")
    assert "wrong serial or PIN" in page.inner_text("main")
    assert page.input_value("#f-serial") == EVIL  # kept as text, nothing ran
    assert page.locator("main script").count() == 0
    page.fill("#f-serial", "   ")  # blank to the server (the browser requires a value)
    page.fill("#f-pin", " ")
    page.click("main button[type=submit]")
    assert "serial number" in page.inner_text("#e-serial")
    assert "PIN" in page.inner_text("#e-pin")
    page.fill("#f-serial", card.serial)
    page.fill("#f-pin", card.pin)
    page.click("main button[type=submit]")
    page.wait_for_url(server.base + "/my/")
    flash = page.inner_text(".flash.ok")
    after = page.inner_text("#balance")
    assert "$5.00" in flash and after in flash and after != before, (flash, before, after)
    page.click("nav >> text=Activate a card")
    page.fill("#f-serial", card.serial)
    page.fill("#f-pin", card.pin)
    page.click("main button[type=submit]")
    assert "already been used" in page.inner_text("main")
    page.click("nav >> text=Documents")
    rows = page.locator("main table tbody tr")
    assert rows.count() >= 1 and "2024" in page.inner_text("main table")
    own = page.request.get(f"{server.base}/my/documents/{server.docs['p0']}/file")
    assert own.status == 200, own.text()[:2000]
    with page.expect_download() as got:
        page.click(f"main table a[href$='/documents/{server.docs['p0']}/file']")
    path = got.value.path()
    assert "2024" in Path(path).read_text()
    other = page.request.get(f"{server.base}/my/documents/{server.docs['h0']}/file")
    missing = page.request.get(f"{server.base}/my/documents/999999/file")
    assert other.status == missing.status == 404
    page.screenshot(path="test-results/selfcare-documents.png")
