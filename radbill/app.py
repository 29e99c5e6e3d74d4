"""Wiring: one place that builds radbill's MultiService from a validated Config.

Only this module (and the CLI) import every package; lower layers get what
they need to act upward (e.g. billing's disconnect action) passed in here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet import defer, threads
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
from billing.cards import card_policy
from core.cluster.leadership import Leadership, new_identity
from core.config import Config, require_data_dir
from core.db import schema
from core.db.base import utcnow
from core.db.engine import make_engine
from core.db.pool import DBPool
from radbill import __version__
from webadmin.api.housekeeping import IdempotencyExpiry

log = logging.getLogger(__name__)


class OrderedMultiService(service.MultiService):
    """Stops children one at a time, last started first, each after the previous finished.

    Twisted's MultiService stops every child at once; then the DB pool joins its
    threads while accounting is still committing its queue through them, and
    the shutdown never ends. Here the pool (the first child) stops only after
    everything that uses it has.
    """

    def stopService(self) -> defer.Deferred[None]:  # type: ignore[override]
        service.Service.stopService(self)
        children = list(self)
        children.reverse()

        @defer.inlineCallbacks
        def stop_all() -> Any:
            for child in children:
                try:
                    yield defer.maybeDeferred(child.stopService)
                except Exception:
                    log.exception("error stopping %s", type(child).__name__)

        return stop_all()  # type: ignore[no-any-return]


class DBPoolService(service.Service):
    """Starts the DB thread pool first and stops it last (it is the first child)."""

    def __init__(self, dbpool: DBPool) -> None:
        self.dbpool = dbpool

    def startService(self) -> None:
        from twisted.internet import task

        self.dbpool.start()
        super().startService()
        # During an outage jobs fail at once; this probe notices the database's return.
        self._probe = task.LoopingCall(self.dbpool.probe)
        self._probe.clock = self.dbpool.reactor
        self._probe.start(self.dbpool.outage.retry_interval, now=False)

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()
        probe = getattr(self, "_probe", None)
        if probe is not None and probe.running:
            probe.stop()
        self.dbpool.stop()


class MetricsService(service.Service):
    """/metrics for Prometheus; with worker processes every worker serves the sum of all.

    Workers share the port (SO_REUSEPORT) and read prometheus-client's
    multiprocess files, so whichever worker a scrape reaches answers for the
    whole node, and a restarting worker never leaves a gap.
    """

    def __init__(self, reactor: Any, listen: str, port: int, shared: bool = False) -> None:
        self.reactor, self.listen, self.port, self.shared = reactor, listen, port, shared
        self.listening: Any = None
        self._publisher: Any = None

    def startService(self) -> None:
        from prometheus_client.twisted import MetricsResource

        registry = None
        if self.shared:
            from prometheus_client import CollectorRegistry
            from prometheus_client.multiprocess import MultiProcessCollector
            from twisted.internet import task

            from aaa.metrics import publish_in_flight

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            self._publisher = task.LoopingCall(publish_in_flight)
            self._publisher.clock = self.reactor
            self._publisher.start(1.0, now=True)
        root = resource.Resource()
        root.putChild(b"metrics", MetricsResource(registry) if registry else MetricsResource())
        site = server.Site(root)
        if self.shared:
            from core.net import adopt_tcp

            self.listening = adopt_tcp(self.reactor, self.listen, self.port, site)
        else:
            self.listening = self.reactor.listenTCP(self.port, site, interface=self.listen)
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        if self._publisher is not None and self._publisher.running:
            self._publisher.stop()
        if self.listening is not None:
            return self.listening.stopListening()
        return None


class WebService(service.Service):
    """The HTTP side on ``[web] listen``/``port``: the API and the pages; HTTPS with a cert."""

    def __init__(self, reactor: Any, listen: str, port: int, root: resource.Resource,
                 tls_certificate: str = "", tls_key: str = "") -> None:
        self.reactor, self.listen, self.port, self.root = reactor, listen, port, root
        self.tls_certificate, self.tls_key = tls_certificate, tls_key
        self.listening: Any = None

    def startService(self) -> None:
        site = server.Site(self.root)
        site.displayTracebacks = False
        if self.tls_certificate:
            from twisted.internet import ssl

            pem = (Path(self.tls_certificate).read_text() + "\n"
                   + Path(self.tls_key).read_text())
            options = ssl.PrivateCertificate.loadPEM(pem).options()
            self.listening = self.reactor.listenSSL(self.port, site, options,
                                                    interface=self.listen)
        else:
            self.listening = self.reactor.listenTCP(self.port, site, interface=self.listen)
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        if self.listening is not None:
            return self.listening.stopListening()
        return None


def make_web_root(config: Config, dbpool: DBPool, reactor: Any,
                  billing: Any = None) -> resource.Resource:
    """Every web face this process serves, mounted under one root.

    ``billing``: this process's BillingService, whose last pass the admin dashboard shows.
    """
    from billing.gateways import load_gateways
    from webadmin.api.server import ApiServer
    from webadmin.gateway_hook import gateway_hooks
    from webadmin.pages.mount import admin_site, local_selfcare, site_root

    admin = admin_site(config, dbpool, reactor,
                       billing_status=lambda: billing.last_pass if billing else None)
    children: dict[bytes, resource.Resource] = {
        b"my": local_selfcare(config, dbpool, reactor).resource,
        b"api": ApiServer(config, dbpool, reactor).resource(),
        b"admin": admin.resource}
    gateways = load_gateways(config)
    if gateways:
        children[b"hooks"] = gateway_hooks(gateways, dbpool, config.billing.currency)
    return site_root(children)


def web_service(config: Config, dbpool: DBPool, reactor: Any,
                billing: Any = None) -> WebService:
    w = config.web
    return WebService(reactor, w.listen, w.port, make_web_root(config, dbpool, reactor, billing),
                      w.tls_certificate, w.tls_key)


def make_selfcare_front(config: Config, reactor: Any, api_url: str, token: str) -> WebService:
    """``radbill selfcare``: /my/ alone over radbill's API (no database, no RADIUS)."""
    from webadmin.pages.mount import selfcare_site, site_root
    from webadmin.selfcare.remote import ApiSelfcare

    s = config.selfcare
    site = selfcare_site(config, ApiSelfcare(reactor, api_url, token),
                         secure_cookies=s.behind_proxy)
    return WebService(reactor, s.listen, s.port, site_root({b"my": site.resource}))


def make_web_only(config: Config, reactor: Any, *, check_schema: bool = True) -> Radbill:
    """``radbill web``: the API and the pages alone, no RADIUS (another process or host)."""
    from core.config import check_web

    check_web(config)
    dbpool = make_dbpool(config, reactor)
    if check_schema:
        check_schema_or_wait(dbpool, reactor)
    root = OrderedMultiService()
    DBPoolService(dbpool).setServiceParent(root)
    web_service(config, dbpool, reactor).setServiceParent(root)
    IdempotencyExpiry(dbpool, reactor).setServiceParent(root)
    return Radbill(root=root, dbpool=dbpool, radius=None, credentials=None)  # type: ignore[arg-type]


@dataclass
class Radbill:
    """The built application: its root service and the parts tests and the CLI reach into."""

    root: service.MultiService
    dbpool: DBPool
    radius: RadiusService
    credentials: CredentialStore
    billing: Any = None  # billing.service.BillingService when billing is on
    leadership: Any = None  # core.cluster.leadership.Leadership


RETENTION_MAX_BATCHES = 2000  # per kind and run; the next run goes on from there


def retention_jobs(config: Config, dbpool: DBPool, reactor: Any) -> list[tuple[str, float, Any]]:
    """Accounting's retention as a job of the billing leader (it asks billing what to keep)."""
    from accounting.retention import RetentionSettings, run_retention
    from billing.retention_guard import make_retention_guard
    from billing.statements import StatementSettings
    from billing.usage_retention import run_usage_retention

    settings = RetentionSettings.from_config(config)
    keep_usage = config.billing.keep_usage_days
    if not (settings.keep_days or settings.keep_call_days or keep_usage):
        return []
    guard = make_retention_guard(StatementSettings.from_config(config))

    @defer.inlineCallbacks
    def run() -> Any:
        reports = yield run_retention(dbpool, settings, guard, clock=reactor,
                                      max_batches=RETENTION_MAX_BATCHES, pause=0.01)
        usage = yield run_usage_retention(dbpool, keep_usage, guard, batch=settings.batch,
                                          clock=reactor, max_batches=RETENTION_MAX_BATCHES,
                                          pause=0.01)
        if usage is not None:
            if usage.total:
                log.info("billing retention: %s", usage.describe())
            reports.append(usage)
        return reports

    return [("accounting-retention", float(config.accounting.retention_interval), run)]


POOL_ALERT_SECONDS = 60.0


def pool_alert_jobs(config: Config, dbpool: DBPool) -> list[tuple[str, float, Any]]:
    """Admin notification pool_high, checked by the billing leader (with notifications on)."""
    if not config.notify.enabled:
        return []
    from billing.pool_alerts import PoolLoad, thd_pool_alert_scan
    from pools.manage import thd_list_pools

    def loads(session: Any) -> list[PoolLoad]:
        return [PoolLoad(p.name, p.size, p.used) for p in thd_list_pools(session)]

    warn = config.pools.warn_utilization

    def run() -> Any:
        return dbpool.run(thd_pool_alert_scan, loads, warn)

    return [("pool-alerts", POOL_ALERT_SECONDS, run)]


def check_coa_attributes(dictionary: Any, key: str, items: list[str]) -> list[tuple[str, object]]:
    """``[coa]`` attribute lists as pairs; an attribute the dictionary lacks is a config error."""
    from aaa.coa import coa_attributes
    from core.errors import ConfigError

    pairs = coa_attributes(items)
    unknown = [name for name, _ in pairs if name not in dictionary.attributes]
    if unknown:
        raise ConfigError(f"{key}: unknown RADIUS attribute(s) {', '.join(unknown)}")
    return pairs


def make_dbpool(config: Config, reactor: Any) -> DBPool:
    engine = make_engine(config.database_url, pool_size=config.database.pool_size,
                         pool_recycle=config.database.pool_recycle,
                         connect_timeout=config.database.connect_timeout,
                         read_timeout=config.database.read_timeout)
    return DBPool(engine, reactor)


def spool_path_for(config: Config, worker: int) -> str:
    """Each worker has its own spool; worker 0's is the single process's, so N=1 <-> N>1 is safe."""
    base = Path(config.accounting.spool_file or Path(config.server.data_dir)
                / "accounting.spool")
    return str(base if worker == 0 else base.with_name(f"{base.stem}-w{worker}{base.suffix}"))


def orphan_spools(config: Config, workers: int) -> list[str]:
    """Spools of worker numbers >= ``workers`` that still hold records (workers were lowered).

    No process would replay them; ``radbill serve`` refuses to start until they are.
    """
    from accounting.spool import SpoolFile

    first = Path(spool_path_for(config, 1))
    prefix, suffix = first.name.split("-w1", 1)
    found = []
    for path in sorted(first.parent.glob(f"{prefix}-w*{suffix}")):
        number = path.name[len(prefix) + 2:len(path.name) - len(suffix)]
        if not number.isdigit() or int(number) < workers:
            continue
        spool = SpoolFile(path)
        try:
            spool.open()
            if spool.last_seq > 0:
                found.append(str(path))
        finally:
            spool.close()
    return found


def make_authenticator(config: Config, dbpool: DBPool, reactor: Any,
                       credentials: CredentialStore) -> Authenticator:
    """PAP verifiers under the key file, the bounded slow queue and the failure throttle."""
    from aaa.pap_key import load_or_create_key
    from aaa.slowqueue import SlowCheckQueue
    from aaa.throttle import FailureThrottle
    from aaa.verifier import thd_store_verifiers

    r = config.radius
    key = load_or_create_key(Path(r.pap_key_file or Path(config.server.data_dir) / "pap.key"))
    queue = SlowCheckQueue(reactor, running=r.slow_checks, waiting=r.slow_queue,
                           lines_per_minute=config.logging.reject_lines_per_minute,
                           dedicated=True)
    verifier = PasswordVerifier(reactor, key, queue,
                                store=lambda rows: dbpool.run(thd_store_verifiers, rows))
    throttle = FailureThrottle(reactor, r.max_failures, r.failure_window, r.failure_lockout)
    return Authenticator(verifier, PasswordUpgrader(dbpool, reactor, credentials, verifier),
                         throttle)


def check_schema_or_wait(dbpool: DBPool, reactor: Any) -> None:
    """Refuse an outdated schema now, or, with the database down, when it comes back.

    A server restarted during an outage must still answer accounting into the spool
    (issue 12), so an unreachable database opens an outage (one WARNING) instead of
    failing the start; when the database answers, the schema is checked, and a schema
    this code cannot serve stops the server with the usual message.
    """
    from core.db.pool import is_unreachable

    try:
        schema.check_current(dbpool.engine)
        return
    except Exception as exc:
        if not is_unreachable(exc):
            dbpool.engine.dispose()
            raise
        dbpool.outage.failed(f"{getattr(exc, 'orig', exc)}; starting anyway")

    def back(down: bool) -> None:
        if down or checked:
            return
        checked.append(True)

        def outdated(f: Any) -> None:
            if f.check(Exception) and not is_unreachable(f.value):
                log.error("cannot serve this database: %s", f.getErrorMessage())
                reactor.stop()
            else:
                checked.clear()  # unreachable again: check at the next return

        threads.deferToThreadPool(reactor, dbpool.threadpool, schema.check_current,
                                  dbpool.engine).addErrback(outdated)

    checked: list[bool] = []
    dbpool.outage.listen(back)


def make_service(config: Config, reactor: IReactorCore, *, check_schema: bool = True,
                 access_hooks: list[AccessHook] | None = None,
                 accounting_handler: Any = None, billing: bool = True,
                 worker: int = 0, workers: int = 1) -> Radbill:
    """Build everything; raises SchemaOutdated or DictionaryError before any port is bound.

    ``worker``/``workers``: this process's number among ``radbill serve
    --workers N``'s processes (they share the ports; singletons run wherever
    the cluster's leadership puts them).

    Start order is child order, stop order its reverse: the DB pool first up and
    last down; accounting (spool recovery) before the listeners and after them on
    the way down, so queued records are committed before the pool closes.
    ``access_hooks``/``accounting_handler`` replace the standard ones (tests).
    """
    from aaa.acct import make_accounting_handler
    from aaa.billing_hook import BillingAccessHook, make_billing_loop
    from aaa.pool_hook import PoolHook
    from aaa.simultaneous import make_simultaneous_use_hook
    from accounting.hygiene import thd_close_gone_session
    from billing.service import BillingService, notifying_sink
    from billing.usage import thd_record_usage
    from pools.lease import thd_lease_on_accounting
    from pools.service import LeaseExpiryService

    require_data_dir(config)  # the spool (and SQLite) live there, whatever the database
    dbpool = make_dbpool(config, reactor)
    if check_schema:
        check_schema_or_wait(dbpool, reactor)
    dictionary = load_dictionary()
    root = OrderedMultiService()
    DBPoolService(dbpool).setServiceParent(root)

    # The login path's DB work goes through the auth lane: first in line, with a thread
    # accounting cannot take (core.db.pool.AuthLane).
    auth_db: Any = dbpool.auth
    credentials = CredentialStore(auth_db, reactor, ttl=config.radius.credential_cache_ttl,  # type: ignore[arg-type]
                                  max_loads=2)
    CredentialWatcher(credentials, dbpool, reactor,  # type: ignore[arg-type]
                      config.radius.credential_poll_interval,
                      preload=config.radius.credential_cache_ttl > 0,
                      keep_during_outage=config.radius.on_database_down == "cache",
                      ).setServiceParent(root)
    authenticator = make_authenticator(config, dbpool, reactor, credentials)

    billing_service = None
    if billing:
        def session_gone(nas_id: int | None, acct_session_id: str) -> Any:
            return dbpool.run(thd_close_gone_session, nas_id, acct_session_id, utcnow())

        loop, coa = make_billing_loop(
            config, dbpool, reactor, on_session_gone=session_gone,
            captive_attributes=check_coa_attributes(
                dictionary, "coa.captive_attributes", config.coa.captive_attributes))
        check_coa_attributes(dictionary, "coa.restore_attributes",
                             config.coa.restore_attributes)
        billing_service = BillingService(loop, reactor, closers=[coa.close],
                                         pending_poll=config.billing.pending_poll_interval,
                                         periodic=retention_jobs(config, dbpool, reactor)
                                         + pool_alert_jobs(config, dbpool))

    if access_hooks is None:
        # Cheapest reject first; the billing reservation before anything is allocated;
        # the address last, so nothing that can still reject runs after an offer.
        access_hooks = [make_simultaneous_use_hook(auth_db)]
        if billing:
            access_hooks.append(BillingAccessHook(auth_db, config))
        access_hooks.append(PoolHook(auth_db, reactor,  # type: ignore[arg-type]
                                     offer_lease_seconds=config.pools.offer_lease_seconds,
                                     routes_ttl=config.pools.routes_ttl))
    voucher = None
    if billing and config.cards.voucher_login:
        from aaa.voucher import VoucherLogin

        voucher = VoucherLogin(auth_db, credentials, reactor, config.billing.currency,
                               card_policy(config.cards))
    access = AccessHandler(credentials, authenticator, access_hooks, unknown_login=voucher,
                           on_database_down=config.radius.on_database_down)

    if accounting_handler is None:
        sink = notifying_sink(billing_service.kick) if billing_service else thd_record_usage
        lease_seconds = config.pools.lease_seconds

        def follow_leases(session: Any, r: Any) -> object:
            return thd_lease_on_accounting(
                session, r.nas_id, r.status, r.framed_ip, r.framed_ipv6_prefix,
                r.delegated_ipv6_prefix, r.user_name, r.session_id,
                lease_seconds=lease_seconds)

        accounting_handler = make_accounting_handler(config, dbpool, reactor, usage_sink=sink,
                                                     record_hooks=(follow_leases,),
                                                     spool_path=spool_path_for(config, worker),
                                                     sweep_singleton=True)
    acct_service = getattr(accounting_handler, "service", None)
    if acct_service is not None:
        acct_service.setServiceParent(root)

    radius = RadiusService(config.radius, dbpool, dictionary, access, accounting_handler,
                           reactor, reuse_port=workers > 1,  # type: ignore[arg-type]
                           saved_clients=Path(config.server.data_dir) / "nas-clients.json",
                           lines_per_minute=config.logging.reject_lines_per_minute)
    radius.setServiceParent(root)
    # Back from an outage: NAS clients changed meanwhile are seen at once, not in 30 s.
    dbpool.outage.listen(lambda down: None if down else radius.clients.reload())
    # Singletons: one process in the cluster runs each, chosen by a lease row.
    leadership = Leadership(dbpool, reactor, new_identity(config.server.node, worker),  # type: ignore[arg-type]
                            lease_seconds=config.cluster.lease_seconds, version=__version__)
    leadership.register("lease-expiry", LeaseExpiryService(
        dbpool, reactor, interval=config.pools.expiry_interval))  # type: ignore[arg-type]
    sweep = getattr(accounting_handler, "sweep_service", None)
    if sweep is not None:
        leadership.register("stale-sessions", sweep)
    if billing_service is not None:
        leadership.register("billing", billing_service)
    if billing and config.notify.enabled:
        from billing.notify_delivery import NotificationService

        leadership.register("notifications", NotificationService(config, dbpool, reactor))
    leadership.setServiceParent(root)
    if config.web.enabled and worker == 0:
        # One web server per node (worker 0): its port is not shared between workers.
        web_service(config, dbpool, reactor, billing_service).setServiceParent(root)
        IdempotencyExpiry(dbpool, reactor).setServiceParent(root)
    if config.metrics.enabled:
        MetricsService(reactor, config.metrics.listen, config.metrics.port,
                       shared=workers > 1).setServiceParent(root)
    return Radbill(root=root, dbpool=dbpool, radius=radius, credentials=credentials,
                   billing=billing_service, leadership=leadership)
