"""The RADIUS listeners as a Twisted Service: auth and acct ports on every configured address."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from pyrad.dictionary import Dictionary
from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IListeningPort, IReactorTime, IReactorUDP
from twisted.python.failure import Failure

from aaa.clients import ClientTable, read_saved_clients, save_clients, thd_load_clients
from aaa.dedupe import DuplicateCache
from aaa.radius import PortKind, RadiusServerProtocol, RequestHandler, UnknownClientLog
from core.config import RadiusConfig
from core.db.pool import DBPool
from core.errors import DatabaseUnavailable
from core.net import adopt_udp

log = logging.getLogger(__name__)

CLIENT_RELOAD_SECONDS = 30.0
MIN_RELOAD_SECONDS = 5.0


class ClientRegistry:
    """The ClientTable plus its reloading: periodic, and soon after an unknown address appears."""

    def __init__(self, dbpool: DBPool, clock: IReactorTime,
                 saved_path: Path | None = None) -> None:
        self.dbpool = dbpool
        self.clock = clock
        self.saved_path = saved_path
        self.table = ClientTable()
        self._last_reload = float("-inf")
        self._reloading: defer.Deferred[None] | None = None

    def load_now(self) -> None:
        """Fill the table before any port is bound, blocking: the server is not serving yet.

        Loaded asynchronously after the bind, the first packets of a restart under
        load met an empty table and were dropped as "unknown client" (issue 12).
        With the database down, the copy saved at the last good load is used.
        """
        self._last_reload = self.clock.seconds()
        try:
            clients = self.dbpool.run_sync(thd_load_clients)
        except Exception as exc:
            self._load_saved(str(getattr(exc, "orig", None) or exc))
            return
        self._loaded(clients)

    def _load_saved(self, why: str) -> None:
        if self.saved_path is None or not self.saved_path.exists():
            log.warning("cannot load NAS clients (%s) and no saved copy exists; every packet "
                        "is dropped until the database answers", why)
            return
        try:
            clients = read_saved_clients(self.saved_path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cannot load NAS clients (%s), nor the saved copy %s (%s)", why,
                        self.saved_path, exc)
            return
        self.table.replace(clients)
        log.warning("cannot load NAS clients from the database (%s); using the %d saved in %s",
                    why, len(clients), self.saved_path)

    def _loaded(self, clients: list) -> None:  # type: ignore[type-arg]
        self.table.replace(clients)
        if self.saved_path is not None:
            try:
                save_clients(self.saved_path, clients)
            except OSError as exc:
                log.warning("cannot save the NAS client list to %s: %s", self.saved_path,
                            exc.strerror)

    def reload(self) -> defer.Deferred[None]:
        if self._reloading is not None:
            return self._reloading
        self._last_reload = self.clock.seconds()

        def failed(f: Failure) -> None:
            # During an outage (logged once by core.db.outage) the table in memory stays.
            level = logging.DEBUG if f.check(DatabaseUnavailable) else logging.ERROR
            log.log(level, "cannot reload NAS clients: %s", f.getErrorMessage())

        def finished(result: None) -> None:
            self._reloading = None

        d = self.dbpool.run(thd_load_clients).addCallbacks(self._loaded, failed)
        d.addBoth(finished)
        self._reloading = d if not d.called else None
        return d

    def unknown_seen(self, host: str) -> None:
        if self.clock.seconds() - self._last_reload >= MIN_RELOAD_SECONDS:
            self.reload()


class RadiusService(service.Service):
    def __init__(self, config: RadiusConfig, dbpool: DBPool, dictionary: Dictionary,
                 auth_handler: RequestHandler, acct_handler: RequestHandler,
                 reactor: IReactorUDP, reuse_port: bool = False,
                 saved_clients: Path | None = None, lines_per_minute: int = 60) -> None:
        """``reuse_port``: share the ports with other worker processes (SO_REUSEPORT)."""
        self.lines_per_minute = lines_per_minute
        self.config = config
        self.reuse_port = reuse_port
        self.dbpool = dbpool
        self.dictionary = dictionary
        self.handlers = {"auth": auth_handler, "acct": acct_handler}
        self.reactor = reactor
        self.clients = ClientRegistry(dbpool, reactor, saved_clients)  # type: ignore[arg-type]
        self.ports: list[IListeningPort] = []
        self.protocols: dict[tuple[str, str], RadiusServerProtocol] = {}
        self._reloader = task.LoopingCall(self.clients.reload)
        self._reloader.clock = reactor  # type: ignore[assignment]

    def make_protocol(self, kind: PortKind) -> RadiusServerProtocol:
        clock: IReactorTime = self.reactor  # type: ignore[assignment]
        return RadiusServerProtocol(
            kind, self.clients.table, self.dictionary, self.handlers[kind], clock,
            DuplicateCache(clock, self.config.duplicate_window),
            UnknownClientLog(clock, self.config.unknown_client_log_interval),
            max_packet_size=self.config.max_packet_size,
            max_in_flight=self.config.max_in_flight,
            on_unknown_client=self.clients.unknown_seen,
            lines_per_minute=self.lines_per_minute)

    def startService(self) -> None:
        # Clients first: a datagram that arrives the moment a port is bound must find them.
        self.clients.load_now()
        # Then bind, so a port in use fails the start loudly before anything runs.
        # One protocol per socket: a DatagramProtocol writes replies through its one transport.
        for kind, port in (("auth", self.config.auth_port), ("acct", self.config.acct_port)):
            for address in self.config.listen:
                proto = self.make_protocol(kind)  # type: ignore[arg-type]
                self.protocols[(kind, address)] = proto
                if self.reuse_port:
                    listening = adopt_udp(self.reactor, address, port, proto)
                else:
                    listening = self.reactor.listenUDP(port, proto, interface=address,
                                                       maxPacketSize=65535)
                self.ports.append(listening)
                self._set_receive_buffer(listening)
                host = listening.getHost()
                log.info("listening for %s on %s port %d", kind, host.host, host.port)
        super().startService()
        self._reloader.start(CLIENT_RELOAD_SECONDS, now=False)

    def _set_receive_buffer(self, listening: IListeningPort) -> None:
        size = self.config.receive_buffer
        sock = getattr(listening, "socket", None)
        if not size or sock is None:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        except OSError as exc:
            log.warning("cannot set SO_RCVBUF to %d: %s", size, exc)
            return
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux doubles it
        if got < size:
            log.warning("receive buffer is %d bytes, not %d: raise net.core.rmem_max", got, size)

    def stopService(self) -> defer.Deferred[None]:  # type: ignore[override]
        super().stopService()
        if self._reloader.running:
            self._reloader.stop()
        ports, self.ports = self.ports, []
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports]
                                   ).addCallback(lambda _: None)

    def bound_port(self, kind: str, address: str | None = None) -> int:
        """The actual port of a listener (tests bind port 0)."""
        proto = self.protocols[(kind, address or self.config.listen[0])]
        for p in self.ports:
            if p.protocol is proto:  # type: ignore[attr-defined]
                return int(p.getHost().port)
        raise KeyError(kind)
