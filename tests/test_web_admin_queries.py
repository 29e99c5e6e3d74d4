"""Every admin page issues a fixed, small number of SQL queries, whatever the data size."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from sqlalchemy import Engine, event
from twisted.internet import defer

from aaa.admin.passwords import Credentials
from core.db.pool import DBPool
from tests.test_web_selfcare import add_session
from tests.web_support import seed
from webadmin.admin.site import AdminSite, Operator, Settings
from webadmin.pages.render import Renderer
from webadmin.pages.site import PageRequest, Response
from webadmin.roles import Caller, cli_caller
from webadmin.service import catalog, money, operators, subscribers

ROOT = cli_caller("test")
MAX_QUERIES = 30  # the subscriber page, with every section, is the largest (27)
PAGES = ("/", "/subscribers", "/subscribers/u0000", "/sessions", "/calls", "/payments", "/accounts",
         "/plans", "/plans/home", "/nas", "/pools", "/reports/revenue", "/reports/traffic",
         "/reports/calls", "/reports/top", "/audit", "/operators", "/tokens",
         "/subscribers/u0000/payment", "/subscribers/u0000/edit", "/documents",
         "/cards", "/cards/list")
CREDS = Credentials(password_hash="$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")


def add_subscribers(engine: Engine, start: int, count: int) -> None:
    for i in range(start, start + count):
        login = f"u{i:04d}"
        info = seed(engine, subscribers.thd_add, ROOT, login, CREDS, plan="home")
        seed(engine, money.thd_add_payment, ROOT, login, 100 + i, "USD", reference=f"R{i}")
        seed(engine, lambda s, i=i, sid=info.id, login=login: (
            add_session(s, sid, login, 30 + i, 1000 * i, 2000 * i),
            add_session(s, sid, login, 5 + i, 10, 20, open_=True)))


class Counter:
    def __init__(self, engine: Engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self.count)

    def count(self, *args: Any) -> None:
        self.n += 1


def request(path: str, cookie: str) -> PageRequest:
    return PageRequest(method="GET", path=path, query={}, form={},
                       cookies={"radbill_admin": cookie}, headers={}, client="127.0.0.1",
                       secure=False)


@defer.inlineCallbacks
def counts(site: AdminSite, engine: Engine, cookie: str) -> Generator[Any, Any, dict[str, int]]:
    counter = Counter(engine)
    out = {}
    try:
        for path in PAGES:
            found = site.router.match("GET", path)
            assert found, path
            handler, params = found  # type: ignore[misc]
            req = request(path, cookie)
            req.params = params
            before = counter.n
            resp: Response = yield defer.maybeDeferred(handler, req)
            assert resp.status == 200, (path, resp.status, resp.body[:300])
            out[path] = counter.n - before
    finally:
        event.remove(engine, "before_cursor_execute", counter.count)
    return out


@pytest.fixture
def site(dbpool: DBPool, engine: Engine) -> AdminSite:
    """The admin site over the test database, Disconnect not wired (not needed here)."""
    seed(engine, catalog.thd_add_plan, ROOT, "home")
    return AdminSite(dbpool, Renderer(), Settings("USD", ZoneInfo("UTC")))


@pytest_twisted.inlineCallbacks
def test_queries_per_page_do_not_grow_with_data(site: AdminSite, engine: Engine
                                                ) -> Generator[Any, Any, None]:
    """Each page's query count is the same with 3 and with 40 subscribers, and small."""
    op = seed(engine, operators.thd_add_operator, ROOT, "boss", CREDS.password_hash, "admin")
    caller = Caller(actor="operator:boss", role="admin", operator_id=op.id)
    session = site.store.new(Response(), principal=Operator("x", caller, time.monotonic() + 1e9))
    add_subscribers(engine, 0, 3)
    small = yield counts(site, engine, session.id)
    add_subscribers(engine, 3, 37)
    large = yield counts(site, engine, session.id)
    assert small == large
    assert max(large.values()) <= MAX_QUERIES, large
    assert min(large.values()) >= 1
