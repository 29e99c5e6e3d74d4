"""Blocking or disabling a subscriber disconnects their live sessions; `session disconnect` too.

A fake NAS on 127.0.0.1 (its own thread, a plain socket) checks each
Disconnect-Request's Request Authenticator and answers per session: ACK,
NAK with Error-Cause 503 (the session is gone), or silence. Runs on SQLite
and MariaDB through the real `radbill` command.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyrad import packet as P
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from aaa.coa import iter_attributes
from accounting.models import AcctSession
from accounting.records import AcctStatus
from accounting.store import AcctPolicy, thd_apply_records
from core.db.models import Nas, Subscriber
from radbill import cli
from tests.test_accounting_support import SECRET, rec, seed

START = AcctStatus.START
ACCT_SESSION_ID, USER_NAME, ERROR_CAUSE = 44, 1, 101


class FakeNas:
    """Answers Disconnect-Requests by Acct-Session-Id: 'gone*' -> NAK 503, 'mute*' -> nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.requests: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        secret = SECRET.encode()
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            attrs = dict(iter_attributes(data))
            asid = attrs.get(ACCT_SESSION_ID, b"").decode()
            self.requests.append({
                "code": data[0], "session": asid,
                "user": attrs.get(USER_NAME, b"").decode(),
                "auth_ok": data[4:20] == hashlib.md5(  # noqa: S324
                    data[:4] + b"\x00" * 16 + data[20:] + secret).digest()})
            if asid.startswith("mute"):
                continue
            if asid.startswith("gone"):
                body = bytes([ERROR_CAUSE, 6]) + struct.pack("!I", 503)
                code = P.DisconnectNAK
            else:
                body, code = b"", P.DisconnectACK
            header = struct.pack("!BBH", code, data[1], 20 + len(body))
            auth = hashlib.md5(header + data[4:20] + body + secret).digest()  # noqa: S324
            self.sock.sendto(header + auth + body, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def nas() -> Iterator[FakeNas]:
    """The fake NAS, stopped after the test."""
    fake = FakeNas()
    yield fake
    fake.close()


@pytest.fixture
def config(engine: Engine, db_url: str, tmp_path: Path, nas: FakeNas) -> str:
    """A config for the test database with alice online twice and bob once, on nas1."""
    with Session(engine) as s, s.begin():
        ids = seed(s)
        s.execute(update(Nas).where(Nas.id == ids["nas1"]).values(coa_port=nas.port))
        n = ids["nas1"]
        thd_apply_records(s, [
            rec(START, nas_id=n, sid="live-1", framed_ip="100.64.0.1"),
            rec(START, nas_id=n, sid="gone-2", framed_ip="100.64.0.2"),
            rec(START, nas_id=n, sid="mute-3", user="bob", framed_ip="100.64.0.3"),
        ], AcctPolicy())
    path = tmp_path / "radbill.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n'
                    "[coa]\ntimeout = 0.2\nretries = 1\n")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], config: str, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", config, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def open_sessions(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(AcctSession.session_id)
                             .where(AcctSession.stopped_at.is_(None))))


def test_block_disconnects_every_live_session(config: str, nas: FakeNas, engine: Engine,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """block sends a signed Disconnect-Request per live session; a 503 closes that record."""
    code, out, err = run(capsys, config, "subscriber", "block", "alice")
    assert code == 0, err
    assert "is now blocked" in out
    assert sorted(r["session"] for r in nas.requests) == ["gone-2", "live-1"]
    assert all(r["code"] == P.DisconnectRequest and r["auth_ok"] and r["user"] == "alice"
               for r in nas.requests)
    assert "live-1" in out and "ack" in out
    assert "gone (Error-Cause 503)" in out
    # ACK: the NAS will send the Stop; 503: no Stop will ever come, so it is closed now.
    assert open_sessions(engine) == {"live-1", "mute-3"}
    with Session(engine) as s:
        assert s.scalar(select(Subscriber.status).where(Subscriber.login == "alice")) == \
            "blocked"


def test_unconfirmed_disconnect_exits_3(config: str, nas: FakeNas, engine: Engine,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A NAS that never answers: the status still changes, exit 3 and a retry hint on stderr."""
    code, out, err = run(capsys, config, "subscriber", "disable", "bob")
    assert code == 3
    assert "is now disabled" in out
    assert "timeout" in err and "retry with 'radbill session disconnect'" in err
    assert "Traceback" not in err
    assert [r["session"] for r in nas.requests] == ["mute-3", "mute-3"]  # sent, retried once
    assert "mute-3" in open_sessions(engine)


def test_no_disconnect_flag_and_unblock_send_nothing(config: str, nas: FakeNas,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--no-disconnect leaves sessions up; unblock never disconnects."""
    assert run(capsys, config, "subscriber", "block", "alice", "--no-disconnect")[0] == 0
    assert run(capsys, config, "subscriber", "unblock", "alice")[0] == 0
    assert nas.requests == []


def test_session_disconnect_by_id_and_subscriber(config: str, nas: FakeNas, engine: Engine,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`session disconnect ID` kicks one session; --subscriber all of one login, as JSON."""
    with Session(engine) as s:
        live_id = s.scalar(select(AcctSession.id).where(AcctSession.session_id == "live-1"))
    code, out, _ = run(capsys, config, "session", "disconnect", str(live_id))
    assert code == 0 and "ack" in out
    assert [r["session"] for r in nas.requests] == ["live-1"]
    nas.requests.clear()
    code, out, _ = run(capsys, config, "session", "disconnect", "--subscriber", "alice",
                       "--out", "json")
    assert code == 0
    assert sorted((d["acct_session_id"], d["outcome"]) for d in json.loads(out)) == [
        ("gone-2", "gone"), ("live-1", "ack")]


def test_session_disconnect_bad_input(config: str, nas: FakeNas,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown session, ended session, unknown login: one line, exit 1, nothing sent."""
    for argv in (["session", "disconnect", "999999"],
                 ["session", "disconnect", "--subscriber", "nobody"]):
        code, _, err = run(capsys, config, *argv)
        assert code == 1 and err.startswith("radbill: ") and "Traceback" not in err
    code, out, _ = run(capsys, config, "session", "disconnect", "--subscriber", "4930123456")
    assert code == 0 and "no live sessions" in out
    assert nas.requests == []
