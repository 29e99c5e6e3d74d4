"""End to end: radclient logs in with a small balance, usage flows, the loop cuts the session off.

The server is wired the way radbill.app will wire it (DB pool, accounting with
billing's notifying usage sink, the billing Access-Request hook, RADIUS
listeners on 127.0.0.1 port 0, the billing loop with aaa.coa as its
Disconnector). A fake NAS listens on 127.0.0.1 for RFC 5176 requests,
checks the Request Authenticator, Message-Authenticator and the identifying
attributes, and answers Disconnect-ACK. Runs on SQLite and MariaDB.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from pyrad import packet as P
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.utils import getProcessOutputAndValue

from aaa.coa import iter_attributes
from aaa.dictionary import load_dictionary
from aaa.pap import hash_password
from billing.money import parse_price
from billing.payments import thd_add_payment
from billing.tariff_store import thd_apply_spec
from billing.tariffs import TariffSpec
from core.db.models import Nas, Plan, Subscriber
from tests.radclient import parse_output

pytestmark = pytest.mark.radclient
SECRET = "e2e-secret"


class FakeNas(DatagramProtocol):
    """A NAS's CoA listener: verifies each Disconnect-Request and answers ACK."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrived: defer.Deferred[None] = defer.Deferred()

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # type: ignore[override]
        secret = SECRET.encode()
        auth_ok = data[4:20] == hashlib.md5(data[:4] + b"\x00" * 16 + data[20:]  # noqa: S324
                                            + secret).digest()
        attrs = iter_attributes(data)
        ma = dict(attrs).get(80)
        pos, zeroed = 20, bytearray(data)
        for k, v in attrs:
            if k == 80:
                zeroed[pos + 2:pos + 18] = b"\x00" * 16
            pos += 2 + len(v)
        zeroed[4:20] = b"\x00" * 16
        ma_ok = ma is not None and hmac.compare_digest(
            ma, hmac.new(secret, bytes(zeroed), hashlib.md5).digest())
        pkt = P.CoAPacket(packet=data, dict=load_dictionary(), secret=secret)
        self.requests.append({"code": data[0], "auth_ok": auth_ok, "ma_ok": ma_ok,
                              "first_is_ma": attrs[0][0] == 80,
                              "attrs": {k: pkt[k] for k in pkt.keys()
                                        if isinstance(k, str)}})
        header = struct.pack("!BBH", P.DisconnectACK, data[1], 20)
        reply = header + hashlib.md5(header + data[4:20] + secret).digest()  # noqa: S324
        self.transport.write(reply, addr)
        if not self.arrived.called:
            self.arrived.callback(None)


def seed(engine: Engine, coa_port: int) -> None:
    with Session(engine) as s, s.begin():
        s.add(Nas(name="mt", address="127.0.0.1", secret=SECRET, vendor="mikrotik",
                  require_message_authenticator=False, coa_port=coa_port))
        s.add(Plan(name="prepaid", interim_interval=60))
        s.flush()
        thd_apply_spec(s, TariffSpec(plan_name="prepaid", values={
            "time_price": parse_price("0.60"), "time_unit": 60, "time_increment": 60}))
        plan_id = s.query(Plan).filter_by(name="prepaid").one().id
        s.add(Subscriber(login="alice", plan_id=plan_id,
                         password_hash=hash_password("pw-alice"), description=""))
        s.flush()
        thd_add_payment(s, "alice", 100, "USD", "initial")


class Stack:
    """radbill exactly as radbill.app builds it (make_service), started and stoppable."""

    def __init__(self, config: Any) -> None:
        from radbill.app import make_service

        app = make_service(config, reactor)
        self.root, self.dbpool, self.radius = app.root, app.dbpool, app.radius
        self.billing = app.billing

    def start(self) -> Any:
        self.root.startService()
        reloading = self.radius.clients._reloading
        return reloading if reloading is not None else defer.succeed(None)

    def stop(self) -> Any:
        return self.root.stopService()


@pytest.fixture
def nas() -> Iterator[tuple[FakeNas, int]]:
    """The fake NAS's CoA listener on 127.0.0.1, port 0."""
    proto = FakeNas()
    port = reactor.listenUDP(0, proto, interface="127.0.0.1")
    yield proto, port.getHost().port
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@pytest.fixture
def stack(engine: Engine, db_url: str, tmp_path: Path, nas: tuple[FakeNas, int]
          ) -> Iterator[Stack]:
    """The wired server, started; billing's interval is long so the test drives the passes."""
    from core.config import parse_config

    if shutil.which("radclient") is None:
        pytest.skip("radclient not installed (apt-get install freeradius-utils)")
    seed(engine, nas[1])
    config = parse_config({
        "server": {"data_dir": str(tmp_path)},
        "database": {"url": db_url, "pool_size": 4},
        "radius": {"listen": ["127.0.0.1"], "auth_port": 0, "acct_port": 0,
                   "credential_cache_ttl": 0},
        "billing": {"loop_interval": 3600, "currency": "USD", "reserve_seconds": 300},
        "coa": {"timeout": 1.0, "retries": 2},
    })
    s = Stack(config)
    pytest_twisted.blockon(s.start())
    yield s
    pytest_twisted.blockon(s.stop())


@defer.inlineCallbacks
def radclient(port: int, kind: str, attributes: str):
    out, err, _code = yield getProcessOutputAndValue(
        shutil.which("radclient") or "radclient",
        ["-x", "-t", "3", "-r", "1", f"127.0.0.1:{port}", kind, SECRET],
        env={"PATH": "/usr/bin:/bin"}, reactor=reactor, stdinBytes=attributes.encode())
    return parse_output((out + err).decode(errors="replace"))


LOGIN = 'User-Name = "alice"\nUser-Password = "pw-alice"\nAcct-Session-Id = "S-1"\n'
ACCT = ('User-Name = "alice"\nAcct-Session-Id = "S-1"\nNAS-IP-Address = 127.0.0.1\n'
        'Framed-IP-Address = 10.0.0.5\nAcct-Status-Type = {status}\n'
        'Acct-Session-Time = {time}\nAcct-Input-Octets = 1000\nAcct-Output-Octets = 2000\n')


@pytest_twisted.inlineCallbacks
def test_small_balance_is_cut_off_and_payment_restores(
        stack: Stack, nas: tuple[FakeNas, int], engine: Engine, db_url: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """1.00 at 0.60/min: login gets 60 s, usage runs out, the NAS gets a correct Disconnect."""
    fake, _ = nas
    auth, acct = stack.radius.bound_port("auth"), stack.radius.bound_port("acct")

    accept = yield radclient(auth, "auth", LOGIN)
    assert accept.code == "Access-Accept", accept.output
    assert accept.value("Session-Timeout") == "60"

    start = yield radclient(acct, "acct", ACCT.format(status="Start", time=0))
    assert start.code == "Accounting-Response", start.output
    interim = yield radclient(acct, "acct", ACCT.format(status="Interim-Update", time=130))
    assert interim.code == "Accounting-Response", interim.output

    # The usage sink kicked a pass already; run passes until the NAS has been asked.
    for _ in range(10):
        yield stack.billing.run_pass()
        if fake.requests:
            break
        yield task.deferLater(reactor, 0.5, lambda: None)
    assert fake.requests, "no Disconnect-Request reached the NAS"
    req = fake.requests[0]
    assert req["code"] == P.DisconnectRequest
    assert req["auth_ok"] and req["ma_ok"] and req["first_is_ma"]
    assert req["attrs"]["User-Name"] == ["alice"]
    assert req["attrs"]["Acct-Session-Id"] == ["S-1"]
    assert req["attrs"]["Framed-IP-Address"] == ["10.0.0.5"]

    from billing.accounts import thd_account, thd_events
    events: list[str] = []
    for _ in range(40):  # the ACK is recorded as it arrives
        with Session(engine) as s:
            acct_view = thd_account(s, "alice", "USD")
            events = [e.kind for e in thd_events(s, acct_view.id)]
        if "disconnect-ack" in events:
            break
        yield task.deferLater(reactor, 0.1, lambda: None)
    assert acct_view.balance == 100 - 180  # 130 s at a 60 s increment = 3 minutes
    assert acct_view.status == "blocked"
    assert "disconnect-sent" in events and "disconnect-ack" in events

    reject = yield radclient(auth, "auth", LOGIN.replace("S-1", "S-2"))
    assert reject.code == "Access-Reject", reject.output
    assert reject.value("Reply-Message") == "Insufficient balance"

    import radbill.cli as cli_module
    config = tmp_path / "radbill.toml"
    config.write_text(f'[database]\nurl = {json.dumps(db_url)}\n', encoding="utf-8")
    code = yield defer.maybeDeferred(cli_module.main, ["--config", str(config), "payment",
                                                       "add", "alice", "5.00", "--ref", "T-1"])
    assert code == 0

    again = yield radclient(auth, "auth", LOGIN.replace("S-1", "S-3"))
    assert again.code == "Access-Accept", again.output
    assert again.value("Session-Timeout") == "420"  # 4.20 at 0.60/min buys 7 minutes
