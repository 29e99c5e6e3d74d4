"""A real ``radbill serve`` (RADIUS + web) in a child process, for the browser tests.

The child runs the installed CLI on the test database with every port on
127.0.0.1 (free ports picked here), so Playwright's own event loop and the
pytest-twisted reactor never share a process with the server. Its stderr is
kept and shown when a test fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.radclient import free_udp_port


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    base: str
    auth_port: int
    acct_port: int
    config: Path
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def config_text(db_url: str, data_dir: Path, *, web_port: int, auth_port: int, acct_port: int,
                extra: str = "") -> str:
    return f"""
[server]
data_dir = "{data_dir}"
log_level = "warn"
[database]
url = "{db_url}"
pool_size = 4
[radius]
listen = ["127.0.0.1"]
auth_port = {auth_port}
acct_port = {acct_port}
credential_poll_interval = 0.2
[accounting]
group_commit_ms = 0
[billing]
loop_interval = 1
[coa]
timeout = 1.0
retries = 1
[web]
enabled = true
listen = "127.0.0.1"
port = {web_port}
{extra}
"""


def wait_http(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("radbill serve exited")
        try:
            urllib.request.urlopen(base + "/my/login", timeout=1)  # noqa: S310 - 127.0.0.1
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("radbill serve did not answer in time")


def start_server(db_url: str, tmp_path: Path, extra: str = "") -> Iterator[ServerProcess]:
    web_port, auth, acct = free_tcp_port(), free_udp_port(), free_udp_port()
    cfg = tmp_path / "radbill.toml"
    cfg.write_text(config_text(db_url, tmp_path, web_port=web_port, auth_port=auth,
                               acct_port=acct, extra=extra))
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config", str(cfg),
                                 "serve"], stdout=fh, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(proc, f"http://127.0.0.1:{web_port}", auth, acct, cfg, log)
    try:
        wait_http(server.base, proc)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        pytest.fail(f"{exc}:\n{server.stderr()}")
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def seed(engine: Engine, fn: Any, *args: Any, **kw: Any) -> Any:
    """Run one thd_* service function in its own transaction (test set-up)."""
    with Session(engine) as s, s.begin():
        return fn(s, *args, **kw)
