"""The admin's read-only Cards pages in a real Chromium: batches, cards, status, no PINs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.browser_support import page_shot
from tests.test_web_admin import ROOT, add_operator, login
from tests.web_support import ServerProcess, seed, start_server
from webadmin.service import cards

pytestmark = pytest.mark.browser

HOSTILE = "<i>b</i>\"'&<img/src=x/onerror=window.pwned=1>"


@pytest.fixture
def created(engine: Engine) -> Any:
    """A batch of three $5 cards with a hostile name, one of them blocked."""
    add_operator(engine, "boss", "admin")
    made = seed(engine, cards.thd_create_batch, ROOT, HOSTILE, 3, 500, "USD", pin_digits=12)
    seed(engine, cards.thd_set_blocked, ROOT, [made.cards[0].serial], True, "lost")
    return made


@pytest.fixture
def server(created: Any, db_url: str, tmp_path: Path, browser: Any
           ) -> Iterator[ServerProcess]:
    yield from start_server(db_url, tmp_path)


def test_admin_sees_batches_and_cards_never_pins(page: Any, server: ServerProcess,
                                                 created: Any) -> None:
    """Batch counts and each card's status are shown, the hostile name as text, no PIN."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    page.click("nav >> text=Cards")
    row = page.locator("#batches tbody tr")
    assert row.count() == 1
    cells = row.first.locator("td").all_inner_texts()
    assert cells[:4] == [HOSTILE, "3", "0", "1"] and cells[4] == "$5.00"
    assert page.evaluate("window.pwned") is None
    page.click(f"#batches >> text={HOSTILE}")
    assert page.locator("#cards tbody tr").count() == 3
    text = page.inner_text("body")
    for c in created.cards:
        assert c.serial in text
        assert c.pin not in page.content()
    page.select_option("select[name=status]", "blocked")
    page.click("form.filter button")
    assert page.locator("#cards tbody tr").count() == 1
    assert created.cards[0].serial in page.inner_text("#cards")
    assert "blocked" in page.inner_text("#cards")
    page_shot(page, "admin-cards")
