"""The RADIUS listeners as a Twisted Service: auth and acct ports on every configured address."""

from __future__ import annotations

import logging
import socket

from pyrad.dictionary import Dictionary
from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IListeningPort, IReactorTime, IReactorUDP

from aaa.clients import ClientTable, thd_load_clients
from aaa.dedupe import DuplicateCache
from aaa.radius import PortKind, RadiusServerProtocol, RequestHandler, UnknownClientLog
from core.config import RadiusConfig
from core.db.pool import DBPool
from core.net import adopt_udp

log = logging.getLogger(__name__)

CLIENT_RELOAD_SECONDS = 30.0
MIN_RELOAD_SECONDS = 5.0


class ClientRegistry:
    """The ClientTable plus its reloading: periodic, and soon after an unknown address appears."""

    def __init__(self, dbpool: DBPool, clock: IReactorTime) -> None:
        self.dbpool = dbpool
        self.clock = clock
        self.table = ClientTable()
        self._last_reload = float("-inf")
        self._reloading: defer.Deferred[None] | None = None

    def reload(self) -> defer.Deferred[None]:
        if self._reloading is not None:
            return self._reloading
        self._last_reload = self.clock.seconds()

        def loaded(clients: list) -> None:  # type: ignore[type-arg]
            self.table.replace(clients)

        def failed(f: object) -> None:
            log.error("cannot reload NAS clients: %s", getattr(f, "getErrorMessage", str)())

        def finished(result: None) -> None:
            self._reloading = None

        d = self.dbpool.run(thd_load_clients).addCallbacks(loaded, failed)
        d.addBoth(finished)
        self._reloading = d if not d.called else None
        return d

    def unknown_seen(self, host: str) -> None:
        if self.clock.seconds() - self._last_reload >= MIN_RELOAD_SECONDS:
            self.reload()


class RadiusService(service.Service):
    def __init__(self, config: RadiusConfig, dbpool: DBPool, dictionary: Dictionary,
                 auth_handler: RequestHandler, acct_handler: RequestHandler,
                 reactor: IReactorUDP, reuse_port: bool = False) -> None:
        """``reuse_port``: share the ports with other worker processes (SO_REUSEPORT)."""
        self.config = config
        self.reuse_port = reuse_port
        self.dbpool = dbpool
        self.dictionary = dictionary
        self.handlers = {"auth": auth_handler, "acct": acct_handler}
        self.reactor = reactor
        self.clients = ClientRegistry(dbpool, reactor)  # type: ignore[arg-type]
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
            on_unknown_client=self.clients.unknown_seen)

    def startService(self) -> None:
        # Bind first, so a port in use fails the start loudly before anything runs.
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
        self._reloader.start(CLIENT_RELOAD_SECONDS, now=True)

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
