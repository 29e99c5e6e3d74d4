"""Wiring: one place that builds radbill's MultiService from a validated Config.

Only this module (and the CLI) import every package; lower layers get what
they need to act upward (e.g. billing's disconnect action) passed in here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from twisted.application import service
from twisted.internet.interfaces import IReactorCore
from twisted.web import resource, server

from aaa.access import AccessHandler, AccessHook
from aaa.authenticate import Authenticator
from aaa.credential_watch import CredentialWatcher
from aaa.credentials import CredentialStore
from aaa.dictionary import load_dictionary
from aaa.password_upgrade import PasswordUpgrader
from aaa.service import RadiusService
from aaa.verifier import PasswordVerifier
from radbill.config import Config
from radbill.db import schema
from radbill.db.base import utcnow
from radbill.db.engine import make_engine
from radbill.db.pool import DBPool

log = logging.getLogger(__name__)


class DBPoolService(service.Service):
    """Starts the DB thread pool first and stops it last (it is the first child)."""

    def __init__(self, dbpool: DBPool) -> None:
        self.dbpool = dbpool

    def startService(self) -> None:
        self.dbpool.start()
        super().startService()

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()
        self.dbpool.stop()


class MetricsService(service.Service):
    def __init__(self, reactor: Any, listen: str, port: int) -> None:
        self.reactor, self.listen, self.port = reactor, listen, port
        self.listening: Any = None

    def startService(self) -> None:
        from prometheus_client.twisted import MetricsResource

        root = resource.Resource()
        root.putChild(b"metrics", MetricsResource())
        self.listening = self.reactor.listenTCP(self.port, server.Site(root),
                                                interface=self.listen)
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        if self.listening is not None:
            return self.listening.stopListening()
        return None


@dataclass
class Radbill:
    """The built application: its root service and the parts tests and the CLI reach into."""

    root: service.MultiService
    dbpool: DBPool
    radius: RadiusService
    credentials: CredentialStore
    billing: Any = None  # billing.service.BillingService when billing is on


def make_dbpool(config: Config, reactor: Any) -> DBPool:
    engine = make_engine(config.database_url, pool_size=config.database.pool_size,
                         pool_recycle=config.database.pool_recycle,
                         connect_timeout=config.database.connect_timeout)
    return DBPool(engine, reactor)


def make_service(config: Config, reactor: IReactorCore, *, check_schema: bool = True,
                 access_hooks: list[AccessHook] | None = None,
                 accounting_handler: Any = None, billing: bool = True) -> Radbill:
    """Build everything; raises SchemaOutdated or DictionaryError before any port is bound.

    Start order is child order, stop order its reverse: the DB pool first up and
    last down; accounting (spool recovery) before the listeners and after them on
    the way down, so queued records are committed before the pool closes.
    ``access_hooks``/``accounting_handler`` replace the standard ones (tests).
    """
    from aaa.acct import make_accounting_handler
    from aaa.billing_hook import BillingAccessHook, make_billing_loop
    from aaa.simultaneous import make_simultaneous_use_hook
    from accounting.hygiene import thd_close_gone_session
    from billing.service import BillingService, notifying_sink
    from billing.usage import thd_record_usage

    dbpool = make_dbpool(config, reactor)
    if check_schema:
        try:
            schema.check_current(dbpool.engine)
        except Exception:
            dbpool.engine.dispose()
            raise
    dictionary = load_dictionary()
    root = service.MultiService()
    DBPoolService(dbpool).setServiceParent(root)

    credentials = CredentialStore(dbpool, reactor, ttl=config.radius.credential_cache_ttl)  # type: ignore[arg-type]
    CredentialWatcher(credentials, dbpool, reactor,  # type: ignore[arg-type]
                      config.radius.credential_poll_interval).setServiceParent(root)
    authenticator = Authenticator(
        PasswordVerifier(reactor),  # type: ignore[arg-type]
        PasswordUpgrader(dbpool, reactor, credentials))  # type: ignore[arg-type]

    billing_service = None
    if billing:
        def session_gone(nas_id: int | None, acct_session_id: str) -> Any:
            return dbpool.run(thd_close_gone_session, nas_id, acct_session_id, utcnow())

        loop, coa = make_billing_loop(config, dbpool, reactor, on_session_gone=session_gone)
        billing_service = BillingService(loop, reactor, closers=[coa.close])

    if access_hooks is None:
        # Cheapest reject first; the billing reservation before anything is allocated.
        access_hooks = [make_simultaneous_use_hook(dbpool)]
        if billing:
            access_hooks.append(BillingAccessHook(dbpool, config))
    access = AccessHandler(credentials, authenticator, access_hooks)

    if accounting_handler is None:
        sink = notifying_sink(billing_service.kick) if billing_service else thd_record_usage
        accounting_handler = make_accounting_handler(config, dbpool, reactor, usage_sink=sink)
    acct_service = getattr(accounting_handler, "service", None)
    if acct_service is not None:
        acct_service.setServiceParent(root)

    radius = RadiusService(config.radius, dbpool, dictionary, access, accounting_handler,
                           reactor)  # type: ignore[arg-type]
    radius.setServiceParent(root)
    if billing_service is not None:
        billing_service.setServiceParent(root)
    if config.metrics.enabled:
        MetricsService(reactor, config.metrics.listen, config.metrics.port).setServiceParent(root)
    return Radbill(root=root, dbpool=dbpool, radius=radius, credentials=credentials,
                   billing=billing_service)
