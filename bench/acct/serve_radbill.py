"""Run radbill with accounting wired (as radbill.app will wire it) until SIGTERM.

Usage: python -m bench.acct.serve_radbill CONFIG
Prints "READY <acct port>" on stdout once the listeners are bound. With
ACCT_BENCH_PROFILE=FILE set, the reactor runs under cProfile and writes FILE.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import defer, reactor


def build(config: Any) -> tuple[MultiService, Any]:
    from aaa.access import AccessHandler
    from aaa.acct import make_accounting_handler
    from aaa.authenticate import Authenticator
    from aaa.credentials import CredentialStore
    from aaa.dictionary import load_dictionary
    from aaa.service import RadiusService
    from aaa.simultaneous import make_simultaneous_use_hook
    from aaa.verifier import PasswordVerifier
    from core.db import schema
    from radbill.app import DBPoolService, make_dbpool

    dbpool = make_dbpool(config, reactor)
    schema.check_current(dbpool.engine)
    root = MultiService()
    DBPoolService(dbpool).setServiceParent(root)
    handler = make_accounting_handler(config, dbpool, reactor)
    handler.service.setServiceParent(root)  # type: ignore[union-attr]
    credentials = CredentialStore(dbpool, reactor, ttl=config.radius.credential_cache_ttl)
    access = AccessHandler(credentials, Authenticator(PasswordVerifier(reactor)),
                           [make_simultaneous_use_hook(dbpool)])
    radius = RadiusService(config.radius, dbpool, load_dictionary(), access, handler, reactor)
    radius.setServiceParent(root)
    return root, radius


def main(argv: list[str]) -> int:
    from core.config import load_config

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(argv[0])
    root, radius = build(config)

    def start() -> None:
        root.startService()
        # Ready once the NAS table is loaded: before that every request would be dropped
        # as coming from an unknown client.
        loading = radius.clients._reloading or defer.succeed(None)
        loading.addCallback(lambda _: print(f"READY {radius.bound_port('acct')}", flush=True))

    def stop(*_: Any) -> None:
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", root.stopService)  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, stop)
    profile = os.environ.get("ACCT_BENCH_PROFILE")
    if profile:
        import cProfile

        cProfile.runctx("reactor.run(installSignalHandlers=False)", globals(), locals(),
                        profile)
    else:
        reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
