"""The whole server as radbill.app builds it: auth, pool address, accounting, lease (radclient)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue

from aaa.pap import hash_password
from accounting.models import AcctSession
from core.config import parse_config
from core.db.models import Nas, Plan, Subscriber
from pools.models import ItemState, PoolItem
from tests.radclient import parse_output, require_radclient

SECRET = "testing123"


@pytest.fixture
def app(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[Any]:
    """make_service on the test database, listening on 127.0.0.1 ports chosen by the kernel."""
    require_radclient()
    with Session(engine) as s, s.begin():
        plan = Plan(name="home", rate_limit="10M/10M", interim_interval=60, simultaneous_use=1)
        s.add(plan)
        s.add(Nas(name="lo", address="127.0.0.1", secret=SECRET, vendor="mikrotik",
                  require_message_authenticator=False))
        s.flush()
        s.add(Subscriber(login="dora", password_hash=hash_password("pw"), plan_id=plan.id))
    config_file = tmp_path / "radbill.toml"
    config_file.write_text(f'[database]\nurl = "{db_url}"\n')
    from radbill.cli import main

    assert main(["--config", str(config_file), "pool", "add", "lan", "--kind", "ipv4",
                 "--range", "100.64.7.0/30"]) == 0
    assert main(["--config", str(config_file), "plan", "set", "home", "--pool", "lan"]) == 0
    from radbill.app import make_service

    config = parse_config({
        "server": {"data_dir": str(tmp_path)},
        "database": {"url": db_url, "pool_size": 4},
        "radius": {"listen": ["127.0.0.1"], "auth_port": 0, "acct_port": 0},
        "pools": {"routes_ttl": 0},
    })
    built = make_service(config, reactor)  # type: ignore[arg-type]
    built.root.startService()
    reloading = built.radius.clients._reloading
    if reloading is not None:
        pytest_twisted.blockon(reloading)
    yield built
    pytest_twisted.blockon(defer.maybeDeferred(built.root.stopService))


@defer.inlineCallbacks
def radclient(port: int, kind: str, attributes: str):  # type: ignore[no-untyped-def]
    out, err, _ = yield getProcessOutputAndValue(
        shutil.which("radclient") or "radclient",
        ["-x", "-t", "3", "-r", "1", f"127.0.0.1:{port}", kind, SECRET],
        env={"PATH": "/usr/bin:/bin"}, reactor=reactor, stdinBytes=attributes.encode())
    return parse_output((out + err).decode(errors="replace"))


def item_state(engine: Engine, value: str) -> str:
    with Session(engine) as s:
        return str(s.scalars(select(PoolItem.state).where(PoolItem.value == value)).one())


@pytest_twisted.inlineCallbacks
def test_login_gets_pool_address_and_accounting_moves_the_lease(app: Any, engine: Engine):  # type: ignore[no-untyped-def]
    """Accept carries a pool address (offered); Start leases it and records the session;
    a second login is refused by simultaneous-use; Stop frees the address."""
    auth, acct = app.radius.bound_port("auth"), app.radius.bound_port("acct")
    accept = yield radclient(auth, "auth", 'User-Name = "dora"\nUser-Password = "pw"\n')
    assert accept.code == "Access-Accept", accept.output
    ip = accept.value("Framed-IP-Address")
    assert ip is not None and ip.startswith("100.64.7.")
    assert accept.value("Mikrotik-Rate-Limit") == "10M/10M"
    assert item_state(engine, ip) == ItemState.OFFERED

    acct_attrs = ('User-Name = "dora"\nAcct-Session-Id = "D-1"\nNAS-IP-Address = 127.0.0.1\n'
                  f"Framed-IP-Address = {ip}\nAcct-Status-Type = {{status}}\n"
                  "Acct-Session-Time = {t}\n")
    start = yield radclient(acct, "acct", acct_attrs.format(status="Start", t=0))
    assert start.code == "Accounting-Response", start.output
    assert item_state(engine, ip) == ItemState.LEASED
    with Session(engine) as s:
        row = s.scalars(select(AcctSession).where(AcctSession.session_id == "D-1")).one()
        assert row.framed_ip == ip and row.stopped_at is None

    second = yield radclient(auth, "auth", 'User-Name = "dora"\nUser-Password = "pw"\n')
    assert second.code == "Access-Reject", second.output
    assert second.value("Reply-Message") == "Too many simultaneous sessions"

    stop = yield radclient(acct, "acct", acct_attrs.format(status="Stop", t=30))
    assert stop.code == "Accounting-Response", stop.output
    assert item_state(engine, ip) == ItemState.FREE
