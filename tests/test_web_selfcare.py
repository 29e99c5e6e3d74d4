"""Self-care (/my/) in a real Chromium against a real radbill serve, SQLite and MariaDB."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from aaa.admin.passwords import hash_credentials
from aaa.admin.plans import thd_add_plan
from aaa.admin.subscribers import thd_add_subscriber
from accounting.models import AcctSession
from billing.payments import thd_add_payment
from billing.tariff_store import thd_apply_spec
from billing.tariffs import parse_tariff_toml
from core.db.base import utcnow
from tests.web_support import ServerProcess, seed, start_server

pytestmark = pytest.mark.browser

EVIL_LOGIN = "<script>alert(1)</script>\"'x"
PRICES = """
[plan.home]
monthly_fee = "9.99"
time = { price = "0.02", unit = "minute", increment = 60 }
"""


def add_session(s: Any, sub_id: int, login: str, minutes_ago: int, octets_in: int,
                octets_out: int, open_: bool = False) -> None:
    now = utcnow()
    started = now - timedelta(minutes=minutes_ago)
    sid = f"s{minutes_ago}"
    s.add(AcctSession(unique_id=hashlib.md5(f"{login}{sid}".encode()).hexdigest(),  # noqa: S324
                      nas_id=None, nas_identity="127.0.0.1", subscriber_id=sub_id,
                      user_name=login, session_id=sid, started_at=started, updated_at=now,
                      stopped_at=None if open_ else now, last_seen_at=now,
                      stale_deadline=now + timedelta(minutes=10) if open_ else None,
                      interim_interval=60, start_seen=True, session_time=minutes_ago * 60,
                      input_octets=octets_in, output_octets=octets_out,
                      framed_ip="100.64.0.9"))


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path, browser: Any
           ) -> Iterator[ServerProcess]:
    """radbill serve with two subscribers: carol (a payment, two sessions) and a hostile login."""
    seed(engine, thd_add_plan, "home")
    for spec in parse_tariff_toml(PRICES, "USD"):
        seed(engine, thd_apply_spec, spec)
    carol = seed(engine, thd_add_subscriber, "carol", hash_credentials("carol-pw"), plan="home")
    evil = seed(engine, thd_add_subscriber, EVIL_LOGIN, hash_credentials("evil-pw"),
                plan="home")
    seed(engine, thd_add_payment, "carol", 1234, "USD", reference="BANK-1")
    seed(engine, thd_add_payment, EVIL_LOGIN, 999_00, "USD", reference="BANK-2")
    seed(engine, lambda s: (add_session(s, carol.id, "carol", 90, 2_000_000, 35_000_000),
                            add_session(s, carol.id, "carol", 5, 1000, 2000, open_=True),
                            add_session(s, evil.id, EVIL_LOGIN, 30, 7, 7)))
    yield from start_server(db_url, tmp_path)


def login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(base + "/my/login")
    page.fill("#f-login", user)
    page.fill("#f-password", password)
    page.click("button[type=submit] >> text=Log in")


def test_login_overview_sessions_ledger(page: Any, server: ServerProcess) -> None:
    """A subscriber logs in, sees balance, plan, prices, chart, own sessions and payments only."""
    login(page, server.base, "carol", "wrong")
    assert "Wrong login or password" in page.inner_text(".flash.error")
    login(page, server.base, "carol", "carol-pw")
    page.wait_for_url(server.base + "/my/")
    assert page.inner_text("#balance") == "$2.35"  # 12.34 paid, 9.99 monthly fee charged
    assert page.inner_text("#plan") == "home"
    assert "$0.02" in page.inner_text("dl.facts") and "$9.99" in page.inner_text("dl.facts")
    assert page.locator("svg.chart").count() == 1
    assert page.inner_text("#who .login") == "carol"
    page.click("nav >> text=Sessions")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 2
    assert "35 MB" in page.inner_text("main table")
    assert "online" in page.inner_text("main table")
    page.click("nav >> text=Payments")
    assert "$12.34" in page.inner_text("main table") and "$999" not in page.content()
    # no other subscriber's data, whatever the URL says
    page.goto(server.base + "/my/ledger?login=" + EVIL_LOGIN)
    assert "$999" not in page.content()
    page.goto(server.base + "/admin/")
    assert page.locator("#balance").count() == 0


def test_hostile_login_is_text(page: Any, server: ServerProcess) -> None:
    """A login made of markup and quotes shows as text everywhere and runs nothing."""
    login(page, server.base, EVIL_LOGIN, "evil-pw")
    page.wait_for_url(server.base + "/my/")
    assert page.inner_text("#who .login") == EVIL_LOGIN
    assert EVIL_LOGIN in page.inner_text("h1")
    assert page.evaluate("typeof window.alert_called") == "undefined"
    page.goto(server.base + "/my/sessions")
    assert page.locator("script").count() == 0


def test_password_change_csrf_cookies_logout(page: Any, server: ServerProcess) -> None:
    """Field errors, a forged POST refused, HttpOnly/SameSite cookie, logout ends the session."""
    login(page, server.base, "carol", "carol-pw")
    page.wait_for_url(server.base + "/my/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "radbill_my")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.goto(server.base + "/my/password")
    page.fill("#f-old", "nope")
    page.fill("#f-new", "abc")
    page.fill("#f-again", "abd")
    page.click("main button[type=submit]")
    assert "at least 8" in page.inner_text("#e-new")
    assert "differ" in page.inner_text("#e-again")
    # Seven characters: the pages ask for what the API's self-care endpoint accepts (8).
    page.fill("#f-old", "carol-pw")
    page.fill("#f-new", "seven77")
    page.fill("#f-again", "seven77")
    page.click("main button[type=submit]")
    assert "at least 8" in page.inner_text("#e-new")
    page.fill("#f-old", "nope")
    page.fill("#f-new", "new-secret")
    page.fill("#f-again", "new-secret")
    page.click("main button[type=submit]")
    assert "not your current password" in page.inner_text("#e-old")
    forged = page.request.post(server.base + "/my/password",
                               form={"old": "carol-pw", "new": "hacked!", "again": "hacked!"})
    assert forged.status == 403
    page.fill("#f-old", "carol-pw")
    page.fill("#f-new", "new-secret")
    page.fill("#f-again", "new-secret")
    page.click("main button[type=submit]")
    page.wait_for_url(server.base + "/my/")
    assert "password has been changed" in page.inner_text(".flash.ok")
    page.click("#who button")
    page.wait_for_url(server.base + "/my/login")
    page.goto(server.base + "/my/")
    assert page.url == server.base + "/my/login"
    login(page, server.base, "carol", "carol-pw")
    assert "Wrong login or password" in page.inner_text(".flash.error")
    login(page, server.base, "carol", "new-secret")
    page.wait_for_url(server.base + "/my/")


def test_russian(page: Any, server: ServerProcess) -> None:
    """The subscriber picks Russian: texts translated, money and dates in Russian format."""
    login(page, server.base, "carol", "carol-pw")
    page.wait_for_url(server.base + "/my/")
    page.select_option("header select[name=lang]", "ru")
    page.click("header form.lang button")
    page.wait_for_url(server.base + "/my/")
    assert page.inner_text("#balance").replace("\xa0", " ") == "2,35 $"
    assert "Баланс" in page.inner_text("main")
    assert page.inner_text("#who button") == "Выйти"
    assert page.evaluate("document.documentElement.lang") == "ru"
