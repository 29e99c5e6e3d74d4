"""The web side's edges: HTTPS with Secure cookies, proxies trusted only from trusted_proxies,
plain HTTP refused on public addresses, the API mounted by radbill.app."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from core.config import check_web, parse_config
from core.errors import ConfigError
from webadmin.api.auth import ClientView
from webadmin.roles import cli_caller
from webadmin.service import operators


class FakeRequest:
    def __init__(self, peer: str, headers: dict[bytes, bytes]) -> None:
        self.peer, self.headers = peer, headers

    def getClientAddress(self) -> Any:
        return type("Addr", (), {"host": self.peer})()

    def getHeader(self, name: bytes) -> bytes | None:
        return self.headers.get(name)


def test_forwarded_headers_believed_only_from_trusted_proxies() -> None:
    """X-Forwarded-For/-Proto count only behind_proxy and only from a trusted proxy address."""
    fwd = {b"x-forwarded-for": b"203.0.113.9, 10.0.0.2", b"x-forwarded-proto": b"https"}
    proxied = ClientView(False, True, ["127.0.0.1", "10.0.0.0/8"])
    req = FakeRequest("127.0.0.1", fwd)
    assert proxied.address(req) == "203.0.113.9"  # right-most hop not itself a proxy
    assert proxied.secure(req) is True
    outsider = FakeRequest("198.51.100.7", fwd)
    assert proxied.address(outsider) == "198.51.100.7"
    assert proxied.secure(outsider) is False
    direct = ClientView(False, False, ["127.0.0.1"])
    assert direct.address(req) == "127.0.0.1" and direct.secure(req) is False
    spoof = FakeRequest("127.0.0.1", {b"x-forwarded-for": b"not-an-ip"})
    assert proxied.address(spoof) == "127.0.0.1"
    assert ClientView(True, False, []).secure(FakeRequest("192.0.2.1", {})) is True


def test_plain_http_on_public_address_refused(tmp_path: Path) -> None:
    """[web] listen on a public address needs TLS or behind_proxy: the error names the key,
    for radbill serve (web enabled) and radbill web alike."""
    base = {"server": {"data_dir": str(tmp_path)}}
    with pytest.raises(ConfigError, match=r"web\.listen"):
        parse_config({**base, "web": {"enabled": True, "listen": "0.0.0.0"}})
    assert parse_config({**base, "web": {"enabled": True, "listen": "0.0.0.0",
                                         "behind_proxy": True}})
    cfg = parse_config({**base, "web": {"listen": "192.0.2.10"}})  # not enabled: serve ignores
    with pytest.raises(ConfigError, match=r"web\.listen"):
        check_web(cfg)  # ... but radbill web refuses
    with pytest.raises(ConfigError, match=r"web\.tls_key"):
        parse_config({**base, "web": {"enabled": True, "tls_certificate": "/x.pem"}})


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1."""
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    return str(crt), str(key)


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # our own self-signed test certificate
    req = urllib.request.Request(url, data=json.dumps(body).encode(),  # noqa: S310
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310
        return resp.status, json.loads(resp.read()), resp.headers.get("Set-Cookie", "")


@pytest_twisted.ensureDeferred
async def test_https_listener_gives_secure_cookie(engine: Any, dbpool: Any, db_url: str,
                                                  tmp_path: Path,
                                                  tls_files: tuple[str, str]) -> None:
    """With tls_certificate/tls_key radbill.app serves HTTPS; the API under /api/v1 is
    mounted; the login cookie is Secure, HttpOnly, SameSite=Lax."""
    from tests.web_support import free_tcp_port
    from webadmin.api.server import ApiServer

    crt, key = tls_files
    port = free_tcp_port()
    cfg = parse_config({"server": {"data_dir": str(tmp_path)}, "database": {"url": db_url},
                        "web": {"enabled": True, "port": port, "tls_certificate": crt,
                                "tls_key": key}})
    dbpool.run_sync(operators.thd_add_operator, cli_caller("t"), "olga",
                    operators.hash_operator_password("correct-horse"), "admin")
    assert ApiServer(cfg, dbpool, reactor).tls is True
    from radbill.app import web_service

    svc = web_service(cfg, dbpool, reactor)
    svc.startService()
    try:
        code, body, cookie = await threads.deferToThread(
            _post, f"https://127.0.0.1:{port}/api/v1/login",
            {"login": "olga", "password": "correct-horse"})
    finally:
        await svc.stopService()
    assert code == 200 and body["actor"] == "operator:olga" and body["csrf_token"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
