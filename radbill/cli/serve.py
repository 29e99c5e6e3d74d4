"""radbill serve: run the server in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket

from core.config import Config, load_config, parse_config
from core.errors import RadbillError
from core.logs import setup_logging
from core.supervisor import WORKER_ENV

log = logging.getLogger("radbill")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from radbill.cli import common_parent

    p = sub.add_parser("serve", help="run the RADIUS server (foreground)",
                       parents=[common_parent()])
    p.add_argument("--workers", type=workers_arg, metavar="N|auto",
                   help="worker processes sharing the RADIUS ports (default: server.workers)")
    # Internal: set by the supervising parent for each of its workers.
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)
    w = sub.add_parser("web", help="run only the web side (API and pages), no RADIUS",
                       parents=[common_parent()],
                       description="The HTTP API and pages on [web] listen/port, against the "
                                   "configured database: a second process, or another host.")
    w.set_defaults(func=cmd_web)


def workers_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers or 'auto'"
                                         ) from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError("--workers must be 1..64 or 'auto'")
    return n


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


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)  # the whole file is validated before any port is bound
    workers = getattr(args, "workers", None)
    if workers is not None:
        # Validated like the file's key (fixed ports for several workers).
        from dataclasses import asdict

        data = asdict(config)
        data.pop("source", None)
        data["server"]["workers"] = workers
        config = parse_config(data, f"{config.source} with --workers {workers}")
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    setup_logging(config.server.log_level, config.logging.scheduler)
    if args.worker is None:
        from radbill.app import orphan_spools

        left = orphan_spools(config, config.server.worker_count)
        if left:
            raise RadbillError(
                f"accounting spool(s) {', '.join(left)} still hold records of a worker this "
                f"configuration no longer starts (server.workers = {config.server.workers!r}): "
                "start once with enough workers to replay them")
    if args.worker is None and config.server.worker_count > 1:
        return supervise(args, config)
    return serve_one(config, worker=args.worker or 0,
                     workers=config.server.worker_count if args.worker is not None else 1)


def supervise(args: argparse.Namespace, config: Config) -> int:
    """The parent of N workers: no reactor, no database; see core.supervisor."""
    import shutil
    import sys
    import tempfile

    from core.supervisor import Supervisor

    count = config.server.worker_count
    env = dict(os.environ)
    metrics_dir = None
    if config.metrics.enabled:
        metrics_dir = tempfile.mkdtemp(prefix="radbill-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    def argv(index: int) -> list[str]:
        cmd = [sys.executable, "-m", "radbill.cli", "serve", "--worker", str(index)]
        if args.config:
            cmd += ["--config", args.config]
        if getattr(args, "workers", None) is not None:
            cmd += ["--workers", str(args.workers)]
        return cmd

    def on_exit(pid: int) -> None:
        if metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, metrics_dir)

    log.info("radbill starting %d workers (config %s)", count, config.source)
    try:
        code = Supervisor(argv, count, sd_notify, env=env, on_exit=on_exit).run()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if code:
        raise RadbillError("a worker could not start (its error is logged above)")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(config.server.log_level, config.logging.scheduler)
    return serve_one(config, web_only=True)


def serve_one(config: Config, worker: int = 0, workers: int = 1, web_only: bool = False) -> int:
    from twisted.internet import reactor

    from radbill.app import make_service, make_web_only

    if web_only:
        app = make_web_only(config, reactor)
    else:
        app = make_service(config, reactor, worker=worker, workers=workers)  # type: ignore[arg-type]
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
        log.info("radbill serving (config %s, database %s%s)", config.source,
                 config.database_url.split("@")[-1],
                 f", worker {worker} of {workers}" if workers > 1 else "")
        sd_notify(f"READY=1\n{WORKER_ENV}={worker}" if workers > 1 else "READY=1")

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
