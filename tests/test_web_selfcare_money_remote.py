"""Self-care cards and documents through `radbill selfcare --api` (no database), in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from billing.card_models import CardAttempt
from tests.test_web_selfcare_money import server  # noqa: F401 - statements, cards, serve
from tests.test_web_selfcare_remote import front  # noqa: F401 - the separate front end

pytestmark = pytest.mark.browser


def test_card_and_documents_over_the_api(page: Any, server: Any, front: str,  # noqa: F811
                                         engine: Engine) -> None:
    """The remote front end credits a card once (a wrong PIN counted, flash with the new
    balance, a second use refused with its reason) and downloads the subscriber's own
    document; another's is 404."""
    card = server.cards[1]
    page.goto(front + "/my/login")
    page.fill("#f-login", "h0")
    page.fill("#f-password", "h0-password")
    page.click("main button[type=submit]")
    page.wait_for_url(front + "/my/")
    page.click("nav >> text=Activate a card")
    page.fill("#f-serial", card.serial)
    page.fill("#f-pin", "0")
    page.click("main button[type=submit]")
    assert "wrong serial or PIN" in page.inner_text("main")
    with Session(engine) as s:
        counted = s.scalars(select(CardAttempt.failures).where(
            CardAttempt.scope.like("sub:%"))).all()
    assert counted == [1], counted  # the refusal's count committed
    page.fill("#f-serial", card.serial)
    page.fill("#f-pin", card.pin)
    page.click("main button[type=submit]")
    page.wait_for_url(front + "/my/")
    flash = page.inner_text(".flash.ok")
    assert "$5.00" in flash and page.inner_text("#balance") in flash, flash
    page.click("nav >> text=Activate a card")
    page.fill("#f-serial", card.serial)
    page.fill("#f-pin", card.pin)
    page.click("main button[type=submit]")
    assert "already been used" in page.inner_text("main")
    page.click("nav >> text=Documents")
    own = server.docs["h0"]
    with page.expect_download() as got:
        page.click(f"main table a[href$='/documents/{own}/file']")
    assert "2024" in Path(got.value.path()).read_text()
    other = page.request.get(f"{front}/my/documents/{server.docs['p0']}/file")
    assert other.status == 404
