"""`radbill serve` through a database outage (issue 12 point 2), with real sockets.

The outage is faked: the server reaches MariaDB through a TCP proxy the test cuts and
resumes (tests/tcp_proxy.py), or is pointed at a closed port. The shared MariaDB server is
never stopped.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from accounting.models import AcctSession
from core.db import schema
from core.db.engine import make_engine
from core.db.models import Nas, Subscriber
from tests.conftest import IN_CI, MARIADB_URL, _reset_mariadb
from tests.radclient import free_udp_port, radclient, require_radclient
from tests.tcp_proxy import CuttableProxy

SECRET = "testing123"


class Serve:
    def __init__(self, tmp: Path, url: str, mode: str = "drop") -> None:
        self.auth, self.acct = free_udp_port(), free_udp_port()
        self.config = tmp / "radbill.toml"
        self.config.write_text(
            f'[server]\ndata_dir = "{tmp}"\n[database]\nurl = "{url}"\nconnect_timeout = 1\n'
            f'read_timeout = 3\n[radius]\nlisten = ["127.0.0.1"]\nauth_port = {self.auth}\n'
            f'acct_port = {self.acct}\non_database_down = "{mode}"\n')
        self.log_path = tmp / "serve.log"
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.log = self.log_path.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config",
                                      str(self.config), "serve"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "radbill serving" not in self.text():
            assert self.proc.poll() is None, self.text()
            time.sleep(0.2)
        assert "radbill serving" in self.text(), self.text()

    def text(self) -> str:
        """This process's part of the log (an earlier start wrote the part before)."""
        return self.log_path.read_text()[self.offset:]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def access(self, login: str, password: str) -> tuple[str | None, str]:
        r = radclient(f"127.0.0.1:{self.auth}", "auth", SECRET,
                      f'User-Name = "{login}"\nUser-Password = "{password}"\nNAS-Port = 1\n'
                      "Message-Authenticator = 0x00\n", timeout=1.5, tries=1)
        return r.code, r.value("Reply-Message") or ""

    def start(self, sid: str) -> str | None:
        r = radclient(f"127.0.0.1:{self.acct}", "acct", SECRET,
                      f'User-Name = "alice"\nAcct-Status-Type = Start\nAcct-Session-Id = "{sid}"\n'
                      'NAS-IP-Address = 127.0.0.1\nNAS-Port = 1\n', timeout=2, tries=2)
        return r.code


def populate(url: str) -> None:
    engine = make_engine(url)
    try:
        if url.startswith("sqlite"):
            schema.upgrade(engine)
        else:
            _reset_mariadb(engine)
        with Session(engine) as s, s.begin():
            s.add(Nas(name="lo", address="127.0.0.1", secret=SECRET))
            from aaa.pap import hash_password

            s.add(Subscriber(login="alice", password_hash=hash_password("pw")))
    finally:
        engine.dispose()


def sessions(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return int(s.scalar(select(func.count()).select_from(AcctSession)) or 0)
    finally:
        engine.dispose()


@pytest.fixture
def saved_clients(tmp_path: Path) -> Iterator[Path]:
    """A data_dir whose nas-clients.json was saved by a start with a working database."""
    require_radclient()
    url = f"sqlite:///{tmp_path / 'radbill.sqlite'}"
    populate(url)
    Serve(tmp_path, url).stop()
    assert (tmp_path / "nas-clients.json").exists()
    yield tmp_path


def test_serve_starts_with_the_database_down_and_spools_accounting(saved_clients: Path) -> None:
    """A closed database port: serve starts, acknowledges accounting (spooled), rejects logins."""
    srv = Serve(saved_clients, "mysql+pymysql://radbill@127.0.0.1:1/none", mode="reject")
    try:
        assert srv.start("down-1") == "Accounting-Response"  # it is in the spool
        assert srv.access("alice", "pw") == ("Access-Reject", "Service temporarily unavailable")
        assert srv.access("alice", "pw")[0] == "Access-Reject"
    finally:
        srv.stop()
    text = srv.text()
    assert "Traceback" not in text
    assert text.count("WARNING core.db.outage") == 1
    assert (saved_clients / "accounting.spool").stat().st_size > 0


def test_drop_mode_sends_no_reply(saved_clients: Path) -> None:
    """on_database_down = drop: the NAS gets no answer and fails over; still no traceback."""
    srv = Serve(saved_clients, "mysql+pymysql://radbill@127.0.0.1:1/none", mode="drop")
    try:
        assert srv.access("alice", "pw")[0] is None
    finally:
        srv.stop()
    assert "Traceback" not in srv.text()


def test_outage_start_and_end_are_logged_once_and_the_spool_is_replayed(
        tmp_path: Path) -> None:
    """MariaDB behind a proxy that is cut and resumed: one WARNING each way, nothing lost."""
    if not MARIADB_URL:
        if IN_CI:
            pytest.fail("CI=true but RADBILL_TEST_DATABASE_URL is not set")
        pytest.skip("RADBILL_TEST_DATABASE_URL not set")
    require_radclient()
    real = make_url(MARIADB_URL)
    populate(MARIADB_URL)
    proxy = CuttableProxy((real.host or "127.0.0.1", real.port or 3306))
    proxy.resume()
    url = MARIADB_URL.replace(f"{real.host}:{real.port or 3306}", f"127.0.0.1:{proxy.port}")
    srv = Serve(tmp_path, url, mode="drop")
    try:
        assert srv.start("up-1") == "Accounting-Response"
        assert srv.access("alice", "pw")[0] == "Access-Accept"
        proxy.cut()
        assert srv.start("cut-1") == "Accounting-Response"  # spooled
        assert srv.start("cut-2") == "Accounting-Response"
        assert srv.access("nobody", "pw")[0] is None  # not cached: needs the database
        proxy.resume()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sessions(MARIADB_URL) < 3:
            time.sleep(0.5)
        assert sessions(MARIADB_URL) == 3
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "reachable again" not in srv.text():
            time.sleep(0.3)
    finally:
        srv.stop()
        proxy.cut()
    text = srv.text()
    assert "Traceback" not in text
    outage = [line for line in text.splitlines() if "WARNING core.db.outage" in line]
    assert len(outage) == 2 and "reachable again" in outage[1], outage
