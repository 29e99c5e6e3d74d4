"""radbill serve: run the server in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket

from core.config import load_config
from core.errors import RadbillError
from core.logs import setup_logging

log = logging.getLogger("radbill")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from radbill.cli import common_parent

    p = sub.add_parser("serve", help="run the RADIUS server (foreground)",
                       parents=[common_parent()])
    p.set_defaults(func=cmd_serve)


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) we are ready or stopping; a no-op elsewhere."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError as exc:
        log.warning("sd_notify failed: %s", exc)


def cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # the whole file is validated before any port is bound
    setup_logging(config.server.log_level)
    from twisted.internet import reactor

    from radbill.app import make_service

    app = make_service(config, reactor)  # type: ignore[arg-type]
    failure: list[BaseException] = []

    def start() -> None:
        try:
            app.root.startService()
        except Exception as exc:  # e.g. address in use
            failure.append(exc)
            reactor.stop()  # type: ignore[attr-defined]
            return
        # Everything built so far lives as long as the process: move it out of the
        # collector's reach, so full collections scan only what requests create
        # (bench/auth_bench.py saw 100-360 ms gen-2 pauses without this).
        gc.collect()
        gc.freeze()
        log.info("radbill serving (config %s, database %s)", config.source,
                 config.database_url.split("@")[-1])
        sd_notify("READY=1")

    def stop() -> None:
        sd_notify("STOPPING=1")
        log.info("radbill stopping")

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", stop)  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", app.root.stopService)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]  # installs SIGTERM/SIGINT handlers
    if failure:
        exc = failure[0]
        msg = getattr(exc, "strerror", None) or str(exc)
        raise RadbillError(f"cannot start: {msg}")
    return 0
