"""Shared helpers for the accounting tests (no tests here): data, records, packets, servers."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounting.models import AcctCall, AcctSession
from accounting.records import AcctRecord, AcctStatus, session_unique_id
from billing.usage import UsageDeltaRow
from core.db.models import Nas, Plan, Subscriber

SECRET = "testing123"
T0 = datetime(2024, 3, 4, 10, 0, 0, tzinfo=UTC)


def seed(session: Session, *, simultaneous_use: int | None = 1, interim: int = 60,
         vendor: str = "mikrotik", nas_address: str = "127.0.0.1") -> dict[str, int]:
    """A plan, two subscribers and two NASes; returns their ids by name."""
    plan = Plan(name="home", interim_interval=interim, simultaneous_use=simultaneous_use)
    session.add(plan)
    session.flush()
    nas1 = Nas(name="nas1", address=nas_address, secret=SECRET, vendor=vendor,
               require_message_authenticator=False)
    nas2 = Nas(name="nas2", address="192.0.2.2", secret=SECRET, vendor="generic",
               require_message_authenticator=False)
    voice = Nas(name="cube", address="::1", secret=SECRET, vendor="cisco",
                require_message_authenticator=False)
    alice = Subscriber(login="alice", plan_id=plan.id)
    bob = Subscriber(login="bob", plan_id=plan.id)
    phone = Subscriber(login="4930123456", plan_id=plan.id)
    session.add_all([nas1, nas2, voice, alice, bob, phone])
    session.flush()
    return {"plan": plan.id, "nas1": nas1.id, "nas2": nas2.id, "cube": voice.id,
            "alice": alice.id, "bob": bob.id, "phone": phone.id}


def rec(status: AcctStatus, *, user: str = "alice", sid: str = "S1", nas_id: int = 1,
        identity: str = "10.0.0.1", t: float = 0.0, session_time: int | None = None,
        octets_in: int | None = None, octets_out: int | None = None,
        gigawords: bool = False, received: float | None = None, **extra: Any) -> AcctRecord:
    """An AcctRecord as the parser would make it, ``t`` seconds after T0."""
    event = T0 + timedelta(seconds=t)
    seen = T0 + timedelta(seconds=received if received is not None else t)
    if status in (AcctStatus.ON, AcctStatus.OFF):
        return AcctRecord(status=status, nas_id=nas_id, nas_identity=identity,
                          received_at=seen, event_at=event)
    return AcctRecord(status=status, nas_id=nas_id, nas_identity=identity, received_at=seen,
                      event_at=event, user_name=user, session_id=sid,
                      unique_id=session_unique_id(nas_id, identity, sid, user),
                      session_time=session_time, input_octets=octets_in,
                      output_octets=octets_out, gigawords=gigawords, **extra)


def session_row(session: Session, record: AcctRecord) -> dict[str, Any] | None:
    row = session.execute(select(AcctSession.__table__).where(
        AcctSession.unique_id == record.unique_id)).mappings().one_or_none()
    return dict(row) if row is not None else None


def all_sessions(session: Session) -> list[dict[str, Any]]:
    return [dict(r) for r in session.execute(select(AcctSession.__table__)
                                             .order_by(AcctSession.id)).mappings()]


def all_calls(session: Session) -> list[dict[str, Any]]:
    return [dict(r) for r in session.execute(select(AcctCall.__table__)
                                             .order_by(AcctCall.id)).mappings()]


def all_deltas(session: Session) -> list[dict[str, Any]]:
    return [dict(r) for r in session.execute(select(UsageDeltaRow.__table__)
                                             .order_by(UsageDeltaRow.id)).mappings()]


def at(record: AcctRecord, received: float) -> AcctRecord:
    """The same record, received ``received`` seconds after T0 (a later re-send)."""
    return replace(record, received_at=T0 + timedelta(seconds=received))


# -- raw Accounting-Request packets ---------------------------------------------------


def attr(code: int, value: bytes) -> bytes:
    return bytes([code, len(value) + 2]) + value


def vsa(vendor: int, code: int, value: bytes) -> bytes:
    sub = bytes([code, len(value) + 2]) + value
    return attr(26, struct.pack("!I", vendor) + sub)


def u32(code: int, value: int) -> bytes:
    return attr(code, struct.pack("!I", value))


def text(code: int, value: str) -> bytes:
    return attr(code, value.encode())


def accounting_request(identifier: int, attributes: Iterable[bytes],
                       secret: str = SECRET) -> bytes:
    """An Accounting-Request with its RFC 2866 Request Authenticator."""
    body = b"".join(attributes)
    length = 20 + len(body)
    header = struct.pack("!BBH", 4, identifier, length)
    auth = hashlib.md5(header + b"\x00" * 16 + body + secret.encode()).digest()  # noqa: S324
    return header + auth + body


def session_packet(identifier: int, status: int, user: str, sid: str, *,
                   session_time: int | None = None, octets_in: int | None = None,
                   octets_out: int | None = None, delay: int | None = None,
                   extra: Iterable[bytes] = ()) -> bytes:
    attrs = [u32(40, status), text(1, user), text(44, sid), attr(4, bytes([10, 0, 0, 1]))]
    if session_time is not None:
        attrs.append(u32(46, session_time))
    for code, gw_code, value in ((42, 52, octets_in), (43, 53, octets_out)):
        if value is not None:
            attrs.append(u32(code, value & 0xFFFFFFFF))
            attrs.append(u32(gw_code, value >> 32))
    if delay is not None:
        attrs.append(u32(41, delay))
    attrs.extend(extra)
    return accounting_request(identifier, attrs)


def reply_matches(request: bytes, reply: bytes, secret: str = SECRET) -> bool:
    """RFC 2866 section 3: MD5(Code+ID+Length+Request Authenticator+Attributes+Secret)."""
    expected = hashlib.md5(reply[:4] + request[4:20] + reply[20:] + secret.encode()  # noqa: S324
                           ).digest()
    return reply[1] == request[1] and reply[4:20] == expected


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mariadb_url_for(database: str) -> str | None:
    """RADBILL_TEST_DATABASE_URL pointed at another database on the same server."""
    url = os.environ.get("RADBILL_TEST_DATABASE_URL", "")
    if not url:
        return None
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


# -- an in-process server with accounting wired the way radbill.app will wire it ------------


def make_config(tmp_path: Any, db_url: str, **accounting: Any) -> Any:
    from core.config import parse_config

    return parse_config({
        "server": {"data_dir": str(tmp_path)},
        "database": {"url": db_url, "pool_size": 4},
        "radius": {"listen": ["127.0.0.1", "::1"], "auth_port": 0, "acct_port": 0},
        "accounting": accounting,
    })


class Server:
    """DB pool, accounting service and RADIUS listeners under one MultiService."""

    def __init__(self, config: Any, reactor: Any, **handler_kwargs: Any) -> None:
        from twisted.application.service import MultiService

        from aaa.access import AccessHandler
        from aaa.acct import make_accounting_handler
        from aaa.authenticate import Authenticator
        from aaa.credentials import CredentialStore
        from aaa.dictionary import load_dictionary
        from aaa.service import RadiusService
        from aaa.simultaneous import make_simultaneous_use_hook
        from aaa.verifier import PasswordVerifier
        from radbill.app import DBPoolService, make_dbpool

        self.config = config
        self.dbpool = make_dbpool(config, reactor)
        self.root = MultiService()
        DBPoolService(self.dbpool).setServiceParent(self.root)
        self.handler = make_accounting_handler(config, self.dbpool, reactor, **handler_kwargs)
        assert self.handler.service is not None
        self.handler.service.setServiceParent(self.root)
        credentials = CredentialStore(self.dbpool, reactor, ttl=0)
        access = AccessHandler(credentials, Authenticator(PasswordVerifier(reactor)),
                               [make_simultaneous_use_hook(self.dbpool)])
        self.radius = RadiusService(config.radius, self.dbpool, load_dictionary(), access,
                                    self.handler, reactor)
        self.radius.setServiceParent(self.root)

    @property
    def committer(self) -> Any:
        return self.handler.committer

    def start(self) -> Any:
        """Start, and fire once the NAS table is loaded (the first reload finished)."""
        from twisted.internet import defer

        self.root.startService()
        reloading = self.radius.clients._reloading
        return reloading if reloading is not None else defer.succeed(None)

    def stop(self) -> Any:
        return self.root.stopService()

    def acct_port(self) -> int:
        return self.radius.bound_port("acct")

    def auth_port(self) -> int:
        return self.radius.bound_port("auth")


class UdpClient:
    """Sends datagrams from one socket on the reactor; ``request`` fires with the reply or None."""

    def __init__(self, reactor: Any, port: int, host: str = "127.0.0.1") -> None:
        from twisted.internet.protocol import DatagramProtocol

        self.reactor = reactor
        self.addr = (host, port)
        self.waiting: dict[int, Any] = {}
        outer = self

        class Proto(DatagramProtocol):
            def datagramReceived(self, data: bytes, addr: Any) -> None:
                d = outer.waiting.get(data[1]) if len(data) >= 20 else None
                # A late answer to an earlier request with the same Identifier must not
                # count: the Response Authenticator is checked against this request.
                if d is not None and not d.called and reply_matches(d.request, data):
                    del outer.waiting[data[1]]
                    d.callback(data)

        self.proto = Proto()
        self.listening = reactor.listenUDP(0, self.proto, interface=host)

    def request(self, data: bytes, timeout: float = 2.0) -> Any:
        """Send (or resend) ``data``; fires with a reply that verifies against it, or None."""
        from twisted.internet import defer

        d: defer.Deferred[bytes | None] = defer.Deferred()
        d.request = data  # type: ignore[attr-defined]
        self.waiting[data[1]] = d
        self.proto.transport.write(data, self.addr)

        def expire() -> None:
            if not d.called:
                self.waiting.pop(data[1], None)
                d.callback(None)

        call = self.reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d

    def close(self) -> Any:
        return self.listening.stopListening()


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that a test can take down (refusing and cutting every
    connection, as a database host that goes away) and bring back on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self.port

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
