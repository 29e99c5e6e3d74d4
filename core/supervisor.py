"""The parent of ``radbill serve --workers N``: starts, watches and stops the worker processes.

The parent runs no reactor and opens no database: it only starts N copies of
``radbill serve`` (each told its worker number), restarts one that dies,
forwards SIGTERM/SIGINT, and tells systemd READY=1 once every worker has
said it listens. Workers report readiness the way they would to systemd: the
parent hands each a ``NOTIFY_SOCKET`` of its own (a datagram socket in a
private directory), so a worker needs no code of its own for this.

A worker that dies before it ever became ready on the first start (bad
schema, port in use, broken config) stops the whole server with an error:
restarting it would fail the same way forever. Later deaths are restarted
after a delay that doubles while a worker keeps dying young (1 s up to 30 s).
Workers run in their own session and get SIGTERM if the parent dies
(PR_SET_PDEATHSIG), so a killed parent leaves no orphans holding the ports.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WORKER_ENV = "RADBILL_WORKER"  # set to the worker number in each worker's environment
READY_TIMEOUT = 120.0
YOUNG_SECONDS = 10.0
MAX_RESTART_DELAY = 30.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready: bool = False
    ever_ready: bool = False
    restarts: int = 0
    delay: float = 1.0
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)


class Supervisor:
    """Runs ``argv(index)`` for each worker index until stopped; ``run()`` returns the exit code."""

    def __init__(self, argv: Callable[[int], Sequence[str]], count: int,
                 notify: Callable[[str], None], env: dict[str, str] | None = None,
                 stop_timeout: float = 25.0, on_exit: Callable[[int], None] | None = None) -> None:
        self.argv = argv
        self.workers = [Worker(i) for i in range(count)]
        self.notify = notify
        self.env = dict(os.environ if env is None else env)
        self.stop_timeout = stop_timeout
        self.on_exit = on_exit  # called with a dead worker's pid (metrics files)
        self.stopping = False
        self.announced = False
        self._dir = Path(tempfile.mkdtemp(prefix="radbill-notify-"))
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self._dir / "notify"))
        self._sock.setblocking(False)

    def _spawn(self, w: Worker) -> None:
        env = dict(self.env)
        env["NOTIFY_SOCKET"] = str(self._dir / "notify")
        env[WORKER_ENV] = str(w.index)
        w.proc = subprocess.Popen(list(self.argv(w.index)), env=env, start_new_session=True,
                                  preexec_fn=_die_with_parent)
        w.started = time.monotonic()
        w.ready = False
        w.restart_at = None
        log.info("worker %d started (pid %d)", w.index, w.proc.pid)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.stopping:
            log.info("radbill stopping (%s): stopping %d workers",
                     signal.Signals(signum).name, len(self.workers))
        self.stopping = True

    def _read_notifications(self) -> None:
        while True:
            try:
                data = self._sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            fields_ = dict(line.split("=", 1) for line in data.decode(errors="replace")
                           .splitlines() if "=" in line)
            try:
                index = int(fields_.get(WORKER_ENV, "-1"))
            except ValueError:
                continue
            if fields_.get("READY") == "1" and 0 <= index < len(self.workers):
                w = self.workers[index]
                w.ready = w.ever_ready = True
                log.info("worker %d ready", index)

    def _check_exits(self) -> int | None:
        """Restart dead workers; an exit code for the whole server if one cannot start."""
        now = time.monotonic()
        for w in self.workers:
            if w.proc is None:
                if w.restart_at is not None and now >= w.restart_at and not self.stopping:
                    self._spawn(w)
                continue
            code = w.proc.poll()
            if code is None:
                if not w.ever_ready and now - w.started > READY_TIMEOUT:
                    log.error("worker %d did not become ready in %.0f s", w.index,
                              READY_TIMEOUT)
                    return 1
                continue
            pid = w.proc.pid
            w.proc = None
            w.exits.append(code)
            if self.on_exit is not None:
                self.on_exit(pid)
            if self.stopping:
                continue
            if not w.ever_ready:
                log.error("worker %d exited with code %d before it was ready; stopping",
                          w.index, code)
                return code or 1
            young = now - w.started < YOUNG_SECONDS
            w.delay = min(MAX_RESTART_DELAY, w.delay * 2) if young else 1.0
            w.restart_at = now + w.delay
            w.restarts += 1
            log.error("worker %d (pid %d) died with %s; restarting in %.0f s", w.index, pid,
                      f"signal {-code}" if code < 0 else f"code {code}", w.delay)
        return None

    def _announce(self) -> None:
        if not self.announced and all(w.ready and w.proc is not None for w in self.workers):
            self.announced = True
            log.info("radbill serving with %d workers", len(self.workers))
            self.notify(f"READY=1\nSTATUS=serving with {len(self.workers)} workers\n"
                        f"MAINPID={os.getpid()}")

    def _stop_all(self) -> None:
        alive = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for w in alive:
            assert w.proc is not None
            try:
                w.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_timeout
        for w in alive:
            assert w.proc is not None
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in %.0f s; killing it", w.index,
                          self.stop_timeout)
                w.proc.kill()
                w.proc.wait(timeout=10)
            if self.on_exit is not None:
                self.on_exit(w.proc.pid)

    def run(self) -> int:
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        code = 0
        try:
            for w in self.workers:
                self._spawn(w)
            while not self.stopping:
                try:
                    select.select([self._sock], [], [], 0.2)
                except InterruptedError:
                    pass
                self._read_notifications()
                failed = self._check_exits()
                if failed is not None:
                    code = failed
                    break
                self._announce()
            self.notify("STOPPING=1")
        finally:
            self.stopping = True
            self._stop_all()
            for s, handler in old.items():
                signal.signal(s, handler)
            self._sock.close()
            for p in self._dir.iterdir():
                p.unlink()
            self._dir.rmdir()
        return code
