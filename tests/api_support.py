"""The HTTP API served in the test's reactor on 127.0.0.1 port 0, and a treq client for it.

Tokens are made through the service layer (as ``radbill token add`` does); requests go
over real TCP. Shared by the API tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from sqlalchemy import Engine
from twisted.internet import reactor
from twisted.web import resource, server

from core.config import Config, parse_config
from core.db.pool import DBPool
from webadmin.api.server import ApiServer
from webadmin.roles import cli_caller
from webadmin.service import resellers, tokens


def api_config(db_url: str, data_dir: Path, **web: Any) -> Config:
    return parse_config({"server": {"data_dir": str(data_dir)}, "database": {"url": db_url},
                         "web": {"enabled": True, "token_cache": 0, **web}}, "test")


@dataclass
class Api:
    server: ApiServer
    base: str
    engine: Engine
    dbpool: DBPool
    tokens: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + "/api/v1" + path

    def token(self, role: str, reseller: str | None = None, name: str | None = None,
              expires: int | None = None) -> str:
        """A new API token of ``role`` (made like ``radbill token add``)."""
        name = name or f"t-{role}-{reseller or 'x'}-{len(self.tokens)}"
        new = self.dbpool.run_sync(tokens.thd_add_token, cli_caller("test"), name, role,
                                   reseller, expires)
        self.tokens[name] = new.token
        return new.token

    def reseller(self, name: str) -> None:
        self.dbpool.run_sync(resellers.thd_add_reseller, cli_caller("test"), name, "")

    async def call(self, method: str, path: str, token: str | None = None,
                   body: Any = None, headers: dict[str, str] | None = None,
                   cookies: Any = None, raw: bytes | None = None) -> tuple[int, Any, Any]:
        """(status, decoded JSON or text, response)."""
        h = {"Accept": "application/json", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        resp = await treq.request(method, self.url(path), headers=h, data=data,
                                  cookies=cookies, persistent=False)
        content = await resp.content()
        ctype = resp.headers.getRawHeaders(b"content-type", [b""])[0]
        value: Any = content.decode("utf-8", "replace")
        if ctype.startswith(b"application/json"):
            value = json.loads(content)
        return resp.code, value, resp


@pytest.fixture
def api(engine: Engine, dbpool: DBPool, db_url: str, tmp_path: Path) -> Iterator[Api]:
    """The API on 127.0.0.1:0 in this process's reactor, over the test database."""
    config = api_config(db_url, tmp_path)
    srv = ApiServer(config, dbpool, reactor)
    root = resource.Resource()
    root.putChild(b"api", srv.resource())  # mounted as radbill.app mounts it
    site = server.Site(root)
    site.displayTracebacks = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    yield Api(srv, f"http://127.0.0.1:{port.getHost().port}", engine, dbpool)
    pytest_twisted.blockon(port.stopListening())
