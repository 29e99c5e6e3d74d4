"""Helpers for tests that run real ``radbill serve`` processes (workers, nodes, Galera)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from aaa.pap import hash_password
from core.db.models import Nas, Plan, Subscriber
from tests.test_accounting_support import SECRET, attr, reply_matches, text

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_nas_and_plan(engine: Engine, logins: Iterable[str] = ("alice",),
                      password: str = "pw", **plan: Any) -> None:
    """A NAS for 127.0.0.1 (no Message-Authenticator needed), plan ``home``, subscribers."""
    with Session(engine) as s, s.begin():
        p = Plan(name="home", interim_interval=60, simultaneous_use=None, **plan)
        s.add(p)
        s.add(Nas(name="lo", address="127.0.0.1", secret=SECRET, vendor="generic",
                  require_message_authenticator=False))
        s.flush()
        hashed = hash_password(password)
        for login in logins:
            s.add(Subscriber(login=login, password_hash=hashed, plan_id=p.id))


def write_config(path: Path, url: str, *, node: str, auth: int, acct: int, workers: int = 1,
                 metrics: int | None = None, lease_seconds: float = 3.0,
                 extra: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = path / "radbill.toml"
    text_ = (f'[server]\ndata_dir = "{path}"\nnode_name = "{node}"\nworkers = {workers}\n'
             f'[cluster]\nlease_seconds = {lease_seconds}\n'
             f'[database]\nurl = "{url}"\npool_size = 4\n'
             f'[radius]\nlisten = ["127.0.0.1"]\nauth_port = {auth}\nacct_port = {acct}\n'
             'credential_poll_interval = 0.5\n'
             '[billing]\nloop_interval = 2\npending_poll_interval = 0.5\n'
             '[pools]\nroutes_ttl = 0\nexpiry_interval = 1.0\n')
    if metrics is not None:
        text_ += f'[metrics]\nenabled = true\nport = {metrics}\n'
    config.write_text(text_ + extra)
    return config


class ServeProcess:
    """``radbill serve`` with its own NOTIFY_SOCKET: start() returns once it said READY=1."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.args = args
        self.log_path = config.parent / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="radbill-test-notify-"))
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self._dir / "sock"))
        self.messages: list[str] = []

    def start(self, timeout: float = 60.0) -> ServeProcess:
        env = dict(os.environ, NOTIFY_SOCKET=str(self._dir / "sock"))
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "serve", "--config",
                                      str(self.config), *self.args], cwd=ROOT, env=env,
                                     stdout=log, stderr=log)
        log.close()
        self.wait_message("READY=1", timeout)
        return self

    def wait_message(self, wanted: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        self.notify.settimeout(0.2)
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.tail()}")
            try:
                msg = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append(msg)
            if wanted in msg.splitlines():
                return msg
        raise AssertionError(f"no {wanted} within {timeout} s: {self.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> list[int]:
        try:
            raw = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return sorted(int(p) for p in raw.split())

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int:
        code = 0
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise
        if self._dir.exists():
            self.notify.close()
            for p in self._dir.iterdir():
                p.unlink()
            self._dir.rmdir()
        return code


def pap_request(ident: int, user: str, password: str, secret: str = SECRET,
                authenticator: bytes | None = None) -> bytes:
    """An Access-Request with User-Name, User-Password (RFC 2865 5.2) and NAS-IP-Address."""
    auth = authenticator or os.urandom(16)
    pw = password.encode()
    pw += b"\0" * (-len(pw) % 16 or (16 if not pw else 0))
    out, last = b"", auth
    for i in range(0, len(pw), 16):
        block = bytes(a ^ b for a, b in zip(pw[i:i + 16],
                                            hashlib.md5(secret.encode() + last).digest(),  # noqa: S324
                                            strict=True))
        out += block
        last = block
    body = text(1, user) + attr(2, out) + attr(4, bytes([127, 0, 0, 1]))
    return struct.pack("!BBH", 1, ident, 20 + len(body)) + auth + body


def attributes(reply: bytes) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = {}
    i = 20
    while i + 2 <= len(reply):
        code, length = reply[i], reply[i + 1]
        found.setdefault(code, []).append(reply[i + 2:i + length])
        i += length
    return found


def exchange(port: int, packet: bytes, *, sock: socket.socket | None = None,
             tries: int = 10, timeout: float = 0.5, check_acct: bool = False) -> bytes | None:
    """Send until a reply with the same Identifier arrives (from a given socket, if any)."""
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        for _ in range(tries):
            s.sendto(packet, ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(4096)
            except TimeoutError:
                continue
            if data[1] == packet[1] and (not check_acct or reply_matches(packet, data)):
                return data
        return None
    finally:
        if own:
            s.close()


def cli_json(config: Path, *argv: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "radbill.cli", "--config", str(config), *argv,
                          "--out", "json"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
