"""The admin pages (/admin/) in a real Chromium against a real radbill serve, SQLite and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from aaa.admin.passwords import hash_credentials
from pools.manage import NewPool
from pools.models import PoolKind
from tests.browser_support import page_shot
from tests.web_support import ServerProcess, seed, start_server
from webadmin.roles import cli_caller
from webadmin.service import catalog, money, operators, resellers, subscribers

pytestmark = pytest.mark.browser

EVIL = "<script>window.pwned=1</script>\"'><img src=x onerror=window.pwned=2>"
ROOT = cli_caller("test")
PASSWORDS = {"boss": "boss-password", "help": "help-password", "cash": "cash-password",
             "partner": "partner-password"}


def add_operator(engine: Engine, login: str, role: str, reseller: str | None = None) -> None:
    seed(engine, operators.thd_add_operator, ROOT, login,
         operators.hash_operator_password(PASSWORDS[login]), role, reseller=reseller)


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path, browser: Any
           ) -> Iterator[ServerProcess]:
    """radbill serve with an admin, support, cashier and a reseller's operator, two subscribers."""
    seed(engine, resellers.thd_add_reseller, ROOT, "acme")
    for login, role in (("boss", "admin"), ("help", "support"), ("cash", "cashier")):
        add_operator(engine, login, role)
    add_operator(engine, "partner", "reseller", "acme")
    seed(engine, catalog.thd_add_plan, ROOT, "basic")
    seed(engine, catalog.thd_add_pool, ROOT, NewPool("edge", PoolKind.IPV4,
                                                     ranges=("100.64.0.0/28",)))
    seed(engine, subscribers.thd_add, ROOT, "alice", hash_credentials("alice-pw"), plan="basic")
    seed(engine, subscribers.thd_add, ROOT, "acme-bob", hash_credentials("bob-pw"),
         reseller="acme")
    seed(engine, money.thd_add_payment, ROOT, "alice", 500, "USD", reference="SEED-1")
    yield from start_server(db_url, tmp_path)


def login(page: Any, base: str, user: str, password: str | None = None) -> None:
    page.goto(base + "/admin/login")
    page.fill("#f-login", user)
    page.fill("#f-password", password if password is not None else PASSWORDS[user])
    page.click("main button[type=submit]")


def test_login_dashboard_subscriber_page(page: Any, server: ServerProcess) -> None:
    """Wrong password refused; the admin sees who it is, the dashboard, a subscriber's money."""
    login(page, server.base, "boss", "nope")
    assert "Wrong login or password" in page.inner_text(".flash.error")
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    assert page.inner_text("#who .login") == "boss"
    assert page.inner_text("#who .role") == "admin"
    assert page.inner_text("#online") == "0"
    assert page.locator("svg.chart").count() == 2
    cookie = next(c for c in page.context.cookies() if c["name"] == "radbill_admin")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("nav >> text=Subscribers")
    assert page.locator("#subscribers tbody tr").count() == 2
    page.fill("input[name=login]", "ali")
    page.click("form.filter button")
    assert page.locator("#subscribers tbody tr").count() == 1
    page.click("#subscribers >> text=alice")
    assert page.inner_text("#balance") == "$5.00"
    assert page.inner_text("#plan") == "basic"
    for nav in ("Operators", "Tokens", "Audit log"):
        assert page.locator(f"nav >> text={nav}").count() == 1


def test_support_sees_no_edit_buttons_and_forged_post_refused(page: Any,
                                                             server: ServerProcess) -> None:
    """Support reads subscribers but has no edit, payment or admin pages; a forged POST is 403."""
    login(page, server.base, "help")
    page.wait_for_url(server.base + "/admin/")
    assert page.inner_text("#who .role") == "support"
    page.goto(server.base + "/admin/subscribers/alice")
    assert page.inner_text("#balance") == "$5.00"
    for sel in ("text=Edit", "#block", "#post-payment", "text=Set password", "text=Remove"):
        assert page.locator(f"#actions >> {sel}").count() == 0
    page_shot(page, "admin-subscriber-support")
    assert page.locator("nav >> text=Operators").count() == 0
    csrf = page.get_attribute("#who input[name=csrf]", "value")
    forged = page.request.post(server.base + "/admin/subscribers/alice/status",
                               form={"csrf": csrf, "status": "blocked"})
    assert forged.status == 403
    no_csrf = page.request.post(server.base + "/admin/subscribers/alice/status",
                                form={"status": "blocked"})
    assert no_csrf.status == 403
    page.goto(server.base + "/admin/operators")
    assert "Not allowed" in page.inner_text("h1")
    page.goto(server.base + "/admin/subscribers/alice")
    assert page.inner_text("#status") == "active"


def test_cashier_posts_payment_with_field_errors(page: Any, server: ServerProcess) -> None:
    """A cashier's bad amount is shown beside the field; a good one moves the balance once."""
    login(page, server.base, "cash")
    page.wait_for_url(server.base + "/admin/")
    page.goto(server.base + "/admin/subscribers/alice")
    page.click("#post-payment")
    page.fill("#f-amount", "12.345")
    page.click("main button[type=submit]")
    assert "decimal places" in page.inner_text("#e-amount")
    page.fill("#f-amount", "12.50")
    page.fill("#f-reference", "BANK-77")
    page.click("main button[type=submit]")
    page.wait_for_url(server.base + "/admin/subscribers/alice")
    assert "$17.50" in page.inner_text(".flash.ok")
    assert page.inner_text("#balance") == "$17.50"
    assert "BANK-77" in page.inner_text("#payments")


def test_reseller_sees_only_its_subscribers(page: Any, server: ServerProcess) -> None:
    """A reseller's operator lists only its own subscribers; another's page is not found."""
    login(page, server.base, "partner")
    page.wait_for_url(server.base + "/admin/")
    assert "acme" in page.inner_text("#who .role")
    page.goto(server.base + "/admin/subscribers")
    rows = page.locator("#subscribers tbody tr")
    assert rows.count() == 1 and "acme-bob" in rows.inner_text()
    page.goto(server.base + "/admin/subscribers/alice")
    assert "Not found" in page.inner_text("h1")
    assert "$5.00" not in page.content()


def test_admin_adds_nas_plan_subscriber_with_hostile_text(page: Any,
                                                          server: ServerProcess) -> None:
    """NAS, plan and subscriber added through forms; hostile names render as text; no secret."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    for form, field in (("/admin/nas/new", "#f-name"), ("/admin/plans/new", "#f-name")):
        page.goto(server.base + form)
        page.fill(field, EVIL)  # refused by the name rules, and echoed back as text
        if form.startswith("/admin/nas"):
            page.fill("#f-address", "127.0.0.2")
            page.fill("#f-secret", "s3cret-NAS-value")
        page.click("main button[type=submit]")
        assert page.locator(".field.invalid, .flash.error").count() >= 1
        assert page.input_value(field) == EVIL
        assert page.evaluate("window.pwned") is None
        assert "s3cret-NAS-value" not in page.content()  # a refused form does not echo it
    page.goto(server.base + "/admin/nas/new")
    page.fill("#f-name", "nas-1")
    page.fill("#f-address", "not an address")
    page.fill("#f-secret", "s3cret-NAS-value")
    page.fill("#f-description", EVIL)
    page.click("main button[type=submit]")
    assert page.locator(".field.invalid").count() >= 1
    page.fill("#f-address", "127.0.0.1")
    page.fill("#f-secret", "s3cret-NAS-value")
    page.click("main button[type=submit]")
    page.wait_for_url(server.base + "/admin/nas/nas-1")
    assert EVIL in page.inner_text("#facts")
    assert "s3cret-NAS-value" not in page.content()
    page.goto(server.base + "/admin/nas/nas-1/edit")
    assert "s3cret-NAS-value" not in page.content()
    page.goto(server.base + "/admin/plans/new")
    page.fill("#f-name", "gold")
    page.fill("#f-rate_limit", "10M/10M")
    page.fill("#f-reply_attributes", "Reply-Message = " + EVIL)
    page.click("main button[type=submit]")
    page.wait_for_url(server.base + "/admin/plans/gold")
    assert EVIL in page.inner_text("#facts")
    page.goto(server.base + "/admin/subscribers/new")
    page.fill("#f-login", EVIL[:60])
    page.fill("#f-password", "secret-1")
    page.select_option("#f-plan", "gold")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert page.evaluate("window.pwned") is None
    page.goto(server.base + "/admin/subscribers")
    assert page.evaluate("window.pwned") is None
    page.goto(server.base + "/admin/audit")
    assert "nas.add" in page.inner_text("#audit")
    assert "s3cret-NAS-value" not in page.content()
    assert page.evaluate("window.pwned") is None


def test_destructive_actions_confirm_and_logout(page: Any, server: ServerProcess) -> None:
    """Remove asks first (Cancel keeps it); one with a ledger is refused clearly; logout ends."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    page.goto(server.base + "/admin/subscribers/alice")
    page.click("#actions >> text=Remove")
    assert "cannot be undone" in page.inner_text("form.confirm")
    page.click("form.confirm >> text=Cancel")
    assert page.inner_text("#login") == "alice"
    page.click("#actions >> text=Remove")
    page.click("form.confirm button[type=submit]")
    assert "cannot remove subscriber 'alice'" in page.inner_text(".flash.error")
    page.goto(server.base + "/admin/subscribers/acme-bob/remove")
    page.click("form.confirm button[type=submit]")
    page.wait_for_url(server.base + "/admin/subscribers")
    assert "removed" in page.inner_text(".flash.ok")
    page.click("#who button")
    page.wait_for_url(server.base + "/admin/login")
    page.goto(server.base + "/admin/subscribers")
    assert page.url == server.base + "/admin/login"


def test_reports_chart_and_csv(page: Any, server: ServerProcess) -> None:
    """Each report draws an SVG chart and a table; its CSV carries the same figures."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    page.click("nav >> text=Reports")
    page.wait_for_url(server.base + "/admin/reports/revenue")
    assert page.locator("svg.chart").count() == 1
    assert "$5.00" in page.inner_text("#report")  # the seeded payment, under plan basic
    csv = page.request.get(page.get_attribute("#csv", "href") and
                           server.base + page.get_attribute("#csv", "href"))
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().splitlines()
    assert lines[0] == "period,plan,currency,revenue,payments"
    assert any(line.endswith(",basic,USD,0.00,5.00") for line in lines[1:])
    for name in ("Traffic per day", "Calls per destination", "Top subscribers by traffic"):
        page.click(f"#report-links >> text={name}")
        assert page.locator("svg.chart").count() == 1
    page.click("#report-links >> text=Pool usage")
    assert page.locator("svg.chart polyline").count() == 1  # sampled at start by the lease loop
    assert "edge" in page.inner_text("#report")
    page.goto(server.base + "/admin/reports/revenue?group=reseller&by=month")
    assert page.locator("svg.chart").count() == 1


def test_pool_form_accounts_list_and_remove(page: Any, server: ServerProcess) -> None:
    """A bad range is shown beside its field; the pool is added, listed and removed; accounts."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    page.goto(server.base + "/admin/pools")
    page.click("text=Add pool")
    page.fill("#f-name", "core")
    page.fill("#f-ranges", "10.0.0.300")
    page.click("main button[type=submit]")
    assert "not an IP address" in page.inner_text("#e-ranges")
    page.fill("#f-ranges", "10.9.0.0/29")
    page.click("main button[type=submit]")
    page.wait_for_url(server.base + "/admin/pools/core")
    assert "6" in page.inner_text("#facts")
    page.goto(server.base + "/admin/pools")
    assert "core" in page.inner_text("#pools") and "edge" in page.inner_text("#pools")
    page.goto(server.base + "/admin/pools/core")
    page.click("text=Remove")
    page.click("form.confirm button[type=submit]")
    page.wait_for_url(server.base + "/admin/pools")
    assert "core" not in page.inner_text("#pools")
    page.click("nav >> text=Accounts")
    assert "$5.00" in page.inner_text("#accounts")
    page.select_option("select[name=balance]", "negative")
    page.click("form.filter button")
    assert page.locator("#accounts").count() == 0  # nobody below zero


def test_admin_in_russian(page: Any, server: ServerProcess) -> None:
    """The operator picks Russian: menus, role and labels translated, money in Russian format."""
    login(page, server.base, "boss")
    page.wait_for_url(server.base + "/admin/")
    page.select_option("form.lang select", "ru")
    page.click("form.lang button")
    assert page.inner_text("#who .role") == "администратор"
    assert page.locator("nav >> text=Абоненты").count() == 1
    page.goto(server.base + "/admin/subscribers/alice")
    assert page.inner_text("#balance").replace("\xa0", " ") == "5,00 $"
    assert "Провести платёж или возврат" in page.inner_text("#actions")
