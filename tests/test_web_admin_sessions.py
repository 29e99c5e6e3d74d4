"""Admin page sessions: idle and absolute expiry, disabled operators, Secure cookies by config."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from sqlalchemy import Engine
from twisted.internet import defer

from core.config import parse_config
from core.db.pool import DBPool
from tests.web_support import seed
from webadmin.admin.site import AdminSite, Operator, Settings
from webadmin.pages.render import Renderer
from webadmin.pages.site import PageError, PageRequest, Response
from webadmin.roles import cli_caller
from webadmin.service import logins, operators
from webadmin.service.tokens import token_hash

ROOT = cli_caller("test")


def get(site: AdminSite, path: str, cookie: str) -> defer.Deferred[Response]:
    handler, params = site.router.match("GET", path)  # type: ignore[misc]
    req = PageRequest(method="GET", path=path, query={}, form={},
                      cookies={"radbill_admin": cookie}, headers={}, client="127.0.0.1",
                      secure=False, params=params)
    return defer.maybeDeferred(handler, req)


@pytest.fixture
def site(dbpool: DBPool) -> AdminSite:
    """An admin site whose session clock the test moves (idle 60 s, absolute 600 s)."""
    s = AdminSite(dbpool, Renderer(), Settings("USD", ZoneInfo("UTC"), session_idle=60,
                                               session_lifetime=600, token_cache=0))
    s.now = [1000.0]  # type: ignore[attr-defined]
    s.store.clock = lambda: s.now[0]  # type: ignore[attr-defined]
    return s


@defer.inlineCallbacks
def logged_in(site: AdminSite, engine: Engine) -> Generator[Any, Any, str]:
    op = seed(engine, operators.thd_add_operator, ROOT, "boss",
              operators.hash_operator_password("boss-password"), "admin")
    opened = seed(engine, logins.thd_open_session, address="127.0.0.1", lifetime=600,
                  operator_id=op.id)
    session = site.store.new(Response(), principal=Operator(token_hash(opened.token),
                                                            opened.caller, 0.0))
    resp = yield get(site, "/subscribers", session.id)
    assert resp.status == 200
    return session.id


@pytest_twisted.inlineCallbacks
def test_idle_and_absolute_expiry(site: AdminSite, engine: Engine) -> Generator[Any, Any, None]:
    """A minute without a request ends the session; so do ten minutes whatever the activity."""
    cookie = yield logged_in(site, engine)
    for _ in range(10):
        site.now[0] += 59  # type: ignore[attr-defined]
        resp = yield get(site, "/subscribers", cookie)
        assert resp.status == 200
    site.now[0] += 15  # type: ignore[attr-defined]  # 605 s since login, 15 s idle
    with pytest.raises(PageError) as exc:
        yield get(site, "/subscribers", cookie)
    assert exc.value.status == 401
    cookie = logged_in_again(site, engine)
    site.now[0] += 61  # type: ignore[attr-defined]
    with pytest.raises(PageError):
        yield get(site, "/", cookie)


def logged_in_again(site: AdminSite, engine: Engine) -> str:
    found = seed(engine, logins.thd_operator_secret, "boss")
    opened = seed(engine, logins.thd_open_session, address="127.0.0.1", lifetime=600,
                  operator_id=found.id)
    return site.store.new(Response(), principal=Operator(token_hash(opened.token),
                                                         opened.caller, 0.0)).id


@pytest_twisted.inlineCallbacks
def test_disabled_operator_is_logged_out(site: AdminSite, engine: Engine
                                         ) -> Generator[Any, Any, None]:
    """Disabling an operator ends its page session at the next request (token_cache 0)."""
    cookie = yield logged_in(site, engine)
    seed(engine, operators.thd_update_operator, ROOT, "boss", {"enabled": False})
    with pytest.raises(PageError) as exc:
        yield get(site, "/", cookie)
    assert exc.value.status == 401


@pytest.mark.parametrize(("web", "secure"), [({}, False), ({"behind_proxy": True}, True)])
def test_secure_cookie_flag_follows_tls_config(dbpool: DBPool, web: dict[str, Any],
                                               secure: bool) -> None:
    """Behind a TLS proxy (or with TLS) the admin cookie is Secure; plain HTTP it is not."""
    from webadmin.pages.mount import admin_site

    config = parse_config({"web": web})
    admin = admin_site(config, dbpool, __import__("twisted.internet.reactor",
                                                  fromlist=["reactor"]))
    try:
        req = PageRequest("GET", "/", {}, {}, {}, {}, "127.0.0.1", False)
        fn = admin.resource.secure_cookies
        assert (fn(req) if fn else req.secure) is secure
    finally:
        admin.close()
