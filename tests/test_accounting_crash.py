"""kill -9 of a real radbill process: nothing it acknowledged is lost.

The server runs as its own process (bench/acct/serve_radbill.py, accounting
wired as radbill.app will wire it). On MariaDB the database is taken away
first (a TCP proxy on 127.0.0.1), so the acknowledged records exist only in
the fsync'ed spool when the process is killed; a new process replays them.
On SQLite the process is killed mid-load and every acknowledged record must
already be committed.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tests.test_accounting_support import (
    TcpProxy,
    all_sessions,
    reply_matches,
    seed,
    session_packet,
)

ROOT = Path(__file__).resolve().parent.parent
RECORDS = 60


class ServerProcess:
    def __init__(self, config: Path) -> None:
        self.log = (config.parent / "server.log").open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.acct.serve_radbill",
                                      str(config)], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.proc.kill()
            raise AssertionError(f"server did not start: "
                                 f"{(config.parent / 'server.log').read_text()}")
        self.port = int(line.split()[1])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def send(port: int, packet: bytes, tries: int = 20) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        for _ in range(tries):
            s.sendto(packet, ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(4096)
            except TimeoutError:
                continue
            if reply_matches(packet, data):
                return True
    return False


def write_config(tmp: Path, url: str) -> Path:
    config = tmp / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp}"\n[database]\nurl = "{url}"\n'
                      '[radius]\nlisten = ["127.0.0.1"]\nauth_port = 0\nacct_port = 0\n')
    return config


@pytest.fixture
def seeded(engine: Engine) -> Iterator[Engine]:
    """The test database with a NAS for 127.0.0.1 and subscribers."""
    with Session(engine) as s, s.begin():
        seed(s, simultaneous_use=None)
    yield engine


def packets(n: int) -> list[bytes]:
    return [session_packet(k % 256, 3, "alice", f"kill-{k}", session_time=60, octets_in=k + 1,
                           octets_out=1) for k in range(n)]


def stored(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {r["session_id"]: r["input_octets"] for r in all_sessions(s)}


def test_kill_9_loses_no_acknowledged_record(seeded: Engine, db_url: str,
                                             tmp_path: Path) -> None:
    """Acknowledged before kill -9 means stored: in the database, or in the spool and replayed."""
    proxy = None
    url = db_url
    if db_url.startswith("mysql"):
        target = make_url(db_url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 3306)
        url = target.set(host="127.0.0.1", port=proxy.start()).render_as_string(
            hide_password=False)
    config = write_config(tmp_path, url)
    server = ServerProcess(config)
    acked: list[int] = []
    try:
        # The first answered record proves the server knows the NAS (read from the database).
        assert send(server.port, session_packet(0, 1, "alice", "warm-up"), tries=40)
        if proxy is not None:
            proxy.stop()  # the database goes away: only the spool can keep these
        for k, packet in enumerate(packets(RECORDS)):
            if send(server.port, packet):
                acked.append(k)
        server.kill()
    finally:
        server.stop()
    assert len(acked) == RECORDS
    if proxy is not None:
        assert set(stored(seeded)) == {"warm-up"}
        proxy.start()
        again = ServerProcess(config)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(stored(seeded)) <= len(acked):
                time.sleep(0.1)
        finally:
            again.stop()
            proxy.stop()
    found = stored(seeded)
    for k in acked:
        assert found.get(f"kill-{k}") == k + 1, f"acknowledged record {k} lost"
