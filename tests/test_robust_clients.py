"""NAS clients are known before the ports are bound, also with the database down (issue 12)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twisted.internet import task

from aaa.dictionary import load_dictionary
from aaa.service import RadiusService
from core.config import parse_config
from core.db.engine import make_engine
from core.db.models import Nas
from core.db.pool import DBPool


class BindRecorder(task.Clock):
    """A clock that also 'binds' UDP ports, noting which NAS the table knew at that moment."""

    def __init__(self, service: Any = None) -> None:
        super().__init__()
        self.service = service
        self.known_at_bind: list[bool] = []

    def listenUDP(self, port: int, proto: Any, interface: str = "",
                  maxPacketSize: int = 8192) -> Any:
        self.known_at_bind.append(self.service.clients.table.find("192.0.2.10") is not None)
        host = type("H", (), {"host": interface, "port": port})()
        return type("Port", (), {"getHost": lambda s: host, "protocol": proto,
                                 "stopListening": lambda s: None})()


def make_radius(dbpool: DBPool, reactor: BindRecorder, saved: Path | None) -> RadiusService:
    config = parse_config({"radius": {"listen": ["127.0.0.1"], "auth_port": 0,
                                      "acct_port": 0, "receive_buffer": 0}})
    svc = RadiusService(config.radius, dbpool, load_dictionary(), None, None,  # type: ignore[arg-type]
                        reactor, saved_clients=saved)  # type: ignore[arg-type]
    reactor.service = svc
    return svc


def add_nas(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(Nas(name="bras", address="192.0.2.10", secret="x" * 24, vendor="mikrotik"))


def test_clients_are_loaded_before_any_port_is_bound(engine: Engine, dbpool: DBPool,
                                                     tmp_path: Path) -> None:
    """At the moment each socket is bound the NAS is already in the table, and the list is
    saved 0600 for a start during a database outage."""
    add_nas(engine)
    reactor = BindRecorder()
    saved = tmp_path / "nas-clients.json"
    svc = make_radius(dbpool, reactor, saved)
    svc.startService()
    try:
        assert reactor.known_at_bind == [True, True]
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert "192.0.2.10" in saved.read_text()
    finally:
        svc.stopService()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_database_down_at_start_uses_the_saved_clients(engine: Engine, dbpool: DBPool,
                                                       tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """With the database unreachable at start, the saved client list is served, one WARNING
    says so, and no traceback is logged."""
    add_nas(engine)
    saved = tmp_path / "nas-clients.json"
    first = make_radius(dbpool, BindRecorder(), saved)
    first.startService()
    first.stopService()
    down = DBPool(make_engine("mysql+pymysql://radbill@127.0.0.1:1/radbill", connect_timeout=1))
    reactor = BindRecorder()
    svc = make_radius(down, reactor, saved)
    svc.startService()
    try:
        assert reactor.known_at_bind == [True, True]
        warnings = [r for r in caplog.records if "saved in" in r.getMessage()]
        assert len(warnings) == 1 and not any(r.exc_info for r in caplog.records)
    finally:
        svc.stopService()
        down.engine.dispose()
