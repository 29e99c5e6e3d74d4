"""radbill selfcare: the self-care site alone, in front of radbill's API, with no database URL.

For a public host: it holds one selfcare-frontend token (``--token-file``,
kept 0600) and reaches radbill only through ``--api``; see docs/web.md for
putting TLS (nginx) in front of it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from core.config import load_config
from core.errors import ConfigError, RadbillError
from core.logs import setup_logging

log = logging.getLogger("radbill")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from radbill.cli import common_parent

    p = sub.add_parser("selfcare", help="run only the subscriber self-care site, over the API",
                       parents=[common_parent()],
                       description="Self-care (/my/) on [selfcare] listen/port, asking "
                                   "radbill's HTTP API for everything: no database needed.")
    p.add_argument("--api", metavar="URL", help="radbill's API base, e.g. http://10.0.0.5:8080 "
                                                "(default: [selfcare] api_url)")
    p.add_argument("--token-file", metavar="FILE",
                   help="file with a selfcare-frontend token (default: [selfcare] token_file)")
    p.set_defaults(func=cmd_selfcare)


def read_token(path: str) -> str:
    if not path:
        raise ConfigError("selfcare.token_file: give --token-file or [selfcare] token_file")
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"selfcare.token_file: cannot read {path}: {exc.strerror}") from None
    if not token or any(c.isspace() for c in token):
        raise ConfigError(f"selfcare.token_file: {path} must hold one token "
                          "(radbill token add NAME --role selfcare-frontend)")
    return token


def check_api_url(url: str) -> str:
    if not url:
        raise ConfigError("selfcare.api_url: give --api or [selfcare] api_url")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"selfcare.api_url: {url!r} must start with http:// or https://")
    return url


def cmd_selfcare(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from radbill.app import make_selfcare_front

    config = load_config(args.config)
    setup_logging(config.server.log_level, config.logging.scheduler)
    api = check_api_url(args.api or config.selfcare.api_url)
    token = read_token(args.token_file or config.selfcare.token_file)
    service = make_selfcare_front(config, reactor, api, token)
    failure: list[BaseException] = []

    def start() -> None:
        try:
            service.startService()
        except Exception as exc:  # e.g. address in use
            failure.append(exc)
            reactor.stop()  # type: ignore[attr-defined]
            return
        log.info("radbill self-care serving on %s:%d over %s", config.selfcare.listen,
                 config.selfcare.port, api)

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if failure:
        exc = failure[0]
        raise RadbillError(f"cannot start: {getattr(exc, 'strerror', None) or exc}")
    return 0
