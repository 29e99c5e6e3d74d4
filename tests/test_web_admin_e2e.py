"""End to end in Chromium: admin sets up NAS, plan, subscriber; radclient logs in; disconnect;
cashier pays; the subscriber sees it all in self-care. Real radbill serve, SQLite and MariaDB.

The NAS is radclient on 127.0.0.1 for RADIUS and a fake CoA listener (tests.test_cli_kick's,
checking the Request Authenticator) answering Disconnect-ACK on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.browser_support import page_shot
from tests.radclient import RadclientResult, radclient, require_radclient
from tests.test_cli_kick import FakeNas
from tests.test_web_admin import PASSWORDS, ROOT, add_operator, login
from tests.web_support import ServerProcess, seed, start_server
from webadmin.service import catalog

pytestmark = [pytest.mark.browser, pytest.mark.radclient]

SECRET = "testing123"  # what tests.test_cli_kick.FakeNas signs its answers with
EVIL_USER = "<script>window.pwned=1</script>\"'><b>x"
EVIL_REPLY = "Hi <script>window.pwned=3</script>\" onmouseover='x"


@pytest.fixture
def coa_nas() -> Iterator[FakeNas]:
    """The NAS's Disconnect listener on 127.0.0.1."""
    fake = FakeNas()
    yield fake
    fake.close()


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path, browser: Any
           ) -> Iterator[ServerProcess]:
    """radbill serve with an admin and a cashier and nothing else."""
    require_radclient()
    add_operator(engine, "boss", "admin")
    add_operator(engine, "cash", "cashier")
    seed(engine, catalog.thd_list_nas, ROOT)
    yield from start_server(db_url, tmp_path)


def send(server: ServerProcess, kind: str, attrs: str) -> RadclientResult:
    port = server.auth_port if kind == "auth" else server.acct_port
    return radclient(f"127.0.0.1:{port}", kind, SECRET,
                     attrs + "Message-Authenticator = 0x00\nNAS-IP-Address = 127.0.0.1\n")


def accepted_soon(server: ServerProcess, attrs: str, timeout: float = 10.0) -> RadclientResult:
    """The NAS added in the browser is picked up by the running server within seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = send(server, "auth", attrs)
        if result.code == "Access-Accept" or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_admin_to_subscriber_end_to_end(page: Any, browser: Any, server: ServerProcess,
                                        coa_nas: FakeNas, request: pytest.FixtureRequest
                                        ) -> None:
    """The whole path: setup in the admin, RADIUS login and usage, Disconnect-ACK, payment, /my/."""
    base = server.base
    page.goto(base + "/admin/login")
    page_shot(page, "admin-login")
    login(page, base, "boss")
    page.wait_for_url(base + "/admin/")
    page.goto(base + "/admin/nas/new")
    page.fill("#f-name", "edge-1")
    page.fill("#f-address", "127.0.0.1")
    page.fill("#f-secret", SECRET)
    page.fill("#f-coa_port", str(coa_nas.port))
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/admin/nas/edge-1")
    page.goto(base + "/admin/plans/new")
    page.fill("#f-name", "fiber")
    page.fill("#f-reply_attributes", "Reply-Message = " + EVIL_REPLY)
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/admin/plans/fiber")
    page.click("text=Prices")
    page.fill("#f-time_price", "0.60")
    page.fill("#f-credit_limit", "5")
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/admin/plans/fiber")
    assert "$0.60" in page.inner_text("#facts")
    page.goto(base + "/admin/subscribers/new")
    page.fill("#f-login", "carl")
    page.fill("#f-password", "carl-secret")
    page.select_option("#f-plan", "fiber")
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/admin/subscribers/carl")

    auth = accepted_soon(server, 'User-Name = "carl"\nUser-Password = "carl-secret"\n')
    assert auth.code == "Access-Accept", auth.text
    assert EVIL_REPLY in (auth.value("Reply-Message") or "").replace("\\\"", "\"")
    common = ('User-Name = "carl"\nAcct-Session-Id = "e2e-1"\nFramed-IP-Address = 100.64.7.7\n')
    assert send(server, "acct", common + "Acct-Status-Type = Start\n").code == \
        "Accounting-Response"
    assert send(server, "acct", common + "Acct-Status-Type = Interim-Update\n"
                "Acct-Session-Time = 120\nAcct-Input-Octets = 3000000\n"
                "Acct-Output-Octets = 45000000\n").code == "Accounting-Response"
    quoted = EVIL_USER.replace('"', '\\"')
    evil = (f'User-Name = "{quoted}"\nAcct-Session-Id = "evil-1"\n'
            "Acct-Status-Type = Start\n")
    assert send(server, "acct", evil).code == "Accounting-Response"

    page.goto(base + "/admin/")
    page_shot(page, "admin-dashboard")
    page.goto(base + "/admin/subscribers")
    page_shot(page, "admin-subscribers")
    page.goto(base + "/admin/subscribers/carl")
    page_shot(page, "admin-subscriber")
    live = page.locator("table.live-sessions tbody tr")
    assert live.count() == 1
    assert "45 MB" in live.inner_text() and "100.64.7.7" in live.inner_text()
    page.click("table.live-sessions button.disconnect")
    assert "Disconnect-ACK" in page.inner_text(".coa-result")
    page_shot(page, "admin-disconnect")
    assert page.locator(".coa-result .ack").count() == 1
    assert [r["user"] for r in coa_nas.requests] == ["carl"]
    assert coa_nas.requests[0]["auth_ok"]
    # the NAS then sends its Stop with the final counters
    assert send(server, "acct", common + "Acct-Status-Type = Stop\nAcct-Session-Time = 180\n"
                "Acct-Input-Octets = 3500000\nAcct-Output-Octets = 52000000\n"
                "Acct-Terminate-Cause = Admin-Reset\n").code == "Accounting-Response"
    page.goto(base + "/admin/sessions")
    assert EVIL_USER in page.inner_text("main table")
    assert page.evaluate("window.pwned") is None
    page.goto(base + "/admin/plans/fiber")
    assert EVIL_REPLY in page.inner_text("#facts")
    assert page.evaluate("window.pwned") is None

    from tests.browser_support import new_page

    cashier_pages = new_page(browser, request, name_suffix="-cashier")
    cashier = next(cashier_pages)
    try:
        login(cashier, base, "cash")
        cashier.wait_for_url(base + "/admin/")
        cashier.goto(base + "/admin/subscribers/carl/payment")
        cashier.fill("#f-amount", "20.00")
        cashier.fill("#f-reference", "CASH-E2E-1")
        page_shot(cashier, "admin-payment")
        cashier.click("main button[type=submit]")
        cashier.wait_for_url(base + "/admin/subscribers/carl")
        assert "Posted $20.00" in cashier.inner_text(".flash.ok")
        balance = cashier.inner_text("#balance")
    finally:
        next(cashier_pages, None)
    assert balance.startswith("$1") and balance != "$20.00"  # 20.00 less 3 minutes at 0.60

    page.goto(base + "/my/login")
    page.fill("#f-login", "carl")
    page.fill("#f-password", "carl-secret")
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/my/")
    deadline = time.monotonic() + 10
    while page.inner_text("#balance") != balance and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    assert page.inner_text("#balance") == balance
    page_shot(page, "my-overview")
    page.click("nav >> text=Sessions")
    table = page.inner_text("main table")
    assert "52 MB" in table and "0:03:00" in table
    assert PASSWORDS["cash"] not in page.content()
    page.goto(base + "/admin/reports/revenue?days=7")  # still the admin's session too
    assert page.locator("svg.chart rect.bar").count() >= 1
    page_shot(page, "admin-report")
