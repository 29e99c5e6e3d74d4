"""RFC 5176 Disconnect-Request / CoA-Request sender: billing's Disconnector, on the NAS's CoA port.

A request names the session the way the NAS's vendor profile wants
(aaa.vendors ``disconnect_keys``: e.g. MikroTik by Framed-IP-Address, Cisco by
Acct-Session-Id), carries a Message-Authenticator (first attribute, HMAC-MD5
with the authenticator field zeroed, RFC 5176 section 3.5 / RFC 3579 section
3.2) and the Request Authenticator ``MD5(Code+Identifier+Length+16 zero
octets+Attributes+Secret)`` (RFC 5176 section 3.3). It is retransmitted
unchanged after ``coa.timeout`` seconds, doubling each time, ``coa.retries``
times. A reply is accepted only from the address and port asked, with the
pending Identifier and a valid Response Authenticator (and
Message-Authenticator when present); anything else is logged and dropped.

Disconnect-ACK/CoA-ACK -> ACK; NAK with Error-Cause 503
(Session-Context-Not-Found) -> GONE: the NAS no longer has the session, so
billing closes its record; other NAKs -> NAK with the cause; silence ->
TIMEOUT. Timers use an injected clock (twisted.internet.task.Clock in tests).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyrad import packet as P
from pyrad.dictionary import Dictionary
from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

from aaa.clients import NasClient, parse_network, thd_load_clients
from aaa.vendors import PROFILES, rate_limit_attributes
from billing.cutoff import CutAction, CutOutcome, CutResult, LiveSession, describe
from core.db.models import Vendor

log = logging.getLogger(__name__)

MESSAGE_AUTHENTICATOR = 80
ERROR_CAUSE = 101
SESSION_CONTEXT_NOT_FOUND = 503
ACKS = {P.DisconnectACK, P.CoAACK}
NAKS = {P.DisconnectNAK, P.CoANAK}
REPLY_TO = {P.DisconnectRequest: (P.DisconnectACK, P.DisconnectNAK),
            P.CoARequest: (P.CoAACK, P.CoANAK)}


def encode_request(dictionary: Dictionary, code: int, identifier: int, secret: bytes,
                   attributes: Sequence[tuple[str, object]]) -> bytes:
    """A signed Disconnect-Request or CoA-Request, Message-Authenticator first."""
    pkt = P.CoAPacket(code=code, id=identifier, secret=secret, dict=dictionary)
    for name, value in attributes:
        pkt.AddAttribute(name, value)
    body = pkt._PktEncodeAttributes()
    ma_zero = bytes([MESSAGE_AUTHENTICATOR, 18]) + b"\x00" * 16
    attrs = ma_zero + body
    header = struct.pack("!BBH", code, identifier, 20 + len(attrs))
    mac = hmac.new(secret, header + b"\x00" * 16 + attrs, hashlib.md5).digest()
    attrs = bytes([MESSAGE_AUTHENTICATOR, 18]) + mac + body
    authenticator = hashlib.md5(header + b"\x00" * 16 + attrs + secret).digest()  # noqa: S324
    return header + authenticator + attrs


def iter_attributes(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 20
    while pos + 2 <= len(data):
        kind, length = data[pos], data[pos + 1]
        if length < 2 or pos + length > len(data):
            raise ValueError("attribute length runs past the packet")
        out.append((kind, data[pos + 2:pos + length]))
        pos += length
    if pos != len(data):
        raise ValueError("trailing bytes after the attributes")
    return out


def verify_reply(data: bytes, request_authenticator: bytes, secret: bytes) -> str | None:
    """None when the reply is authentic, else what is wrong with it."""
    if len(data) < 20:
        return "shorter than a RADIUS header"
    length = struct.unpack("!H", data[2:4])[0]
    if length != len(data):
        return f"length field {length} but {len(data)} octets"
    expected = hashlib.md5(data[:4] + request_authenticator + data[20:] + secret).digest()  # noqa: S324
    if not hmac.compare_digest(expected, data[4:20]):
        return "Response Authenticator mismatch (wrong secret?)"
    try:
        attrs = iter_attributes(data)
    except ValueError as exc:
        return str(exc)
    mas = [v for k, v in attrs if k == MESSAGE_AUTHENTICATOR]
    if mas:
        if len(mas) != 1 or len(mas[0]) != 16:
            return "malformed Message-Authenticator"
        zeroed = bytearray(data)
        pos = 20
        for k, v in attrs:
            if k == MESSAGE_AUTHENTICATOR:
                zeroed[pos + 2:pos + 18] = b"\x00" * 16
            pos += 2 + len(v)
        zeroed[4:20] = request_authenticator
        mac = hmac.new(secret, bytes(zeroed), hashlib.md5).digest()
        if not hmac.compare_digest(mac, mas[0]):
            return "Message-Authenticator mismatch"
    return None


def error_cause(data: bytes) -> int | None:
    for kind, value in iter_attributes(data):
        if kind == ERROR_CAUSE and len(value) == 4:
            return int.from_bytes(value, "big")
    return None


@dataclass
class _Pending:
    host: str
    port: int
    identifier: int
    data: bytes
    secret: bytes
    deferred: defer.Deferred[tuple[int, int | None]]
    attempts: int = 0
    timer: Any = None  # IDelayedCall
    codes: tuple[int, int] = (0, 0)


class CoaClientProtocol(DatagramProtocol):
    """One UDP socket for every Disconnect/CoA request; replies matched by peer and Identifier."""

    def __init__(self, clock: Any, timeout: float = 3.0, retries: int = 3,
                 backoff: float = 2.0) -> None:
        self.clock = clock
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.pending: dict[tuple[str, int, int], _Pending] = {}
        self._next_id: dict[tuple[str, int], int] = {}

    def allocate_id(self, host: str, port: int) -> int:
        start = self._next_id.get((host, port), 0)
        for step in range(256):
            ident = (start + step) % 256
            if (host, port, ident) not in self.pending:
                self._next_id[(host, port)] = (ident + 1) % 256
                return ident
        raise RuntimeError(f"256 requests already in flight to {host}:{port}")

    def send(self, host: str, port: int, identifier: int, data: bytes,
             secret: bytes) -> defer.Deferred[tuple[int, int | None]]:
        """Fire with (reply code, Error-Cause) or errback with TimeoutError."""
        d: defer.Deferred[tuple[int, int | None]] = defer.Deferred()
        p = _Pending(host, port, identifier, data, secret, d,
                     codes=REPLY_TO.get(data[0], (0, 0)))
        self.pending[(host, port, identifier)] = p
        self._transmit(p)
        return d

    def _transmit(self, p: _Pending) -> None:
        p.attempts += 1
        transport: Any = self.transport
        try:
            transport.write(p.data, (p.host, p.port))
        except OSError as exc:
            log.warning("CoA to %s:%d: send failed: %s", p.host, p.port, exc)
        wait = self.timeout * (self.backoff ** (p.attempts - 1))
        p.timer = self.clock.callLater(wait, self._expired, p)

    def _expired(self, p: _Pending) -> None:
        if self.pending.get((p.host, p.port, p.identifier)) is not p:
            return
        if p.attempts <= self.retries:
            log.info("CoA to %s:%d id %d: no answer, retry %d", p.host, p.port, p.identifier,
                     p.attempts)
            self._transmit(p)
            return
        del self.pending[(p.host, p.port, p.identifier)]
        p.deferred.errback(TimeoutError(f"no answer from {p.host}:{p.port} after "
                                        f"{p.attempts} tries"))

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            self._receive(data, addr)
        except Exception:
            log.exception("dropping CoA reply from %s:%s after an internal error", *addr[:2])

    def _receive(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 20:
            log.warning("CoA reply from %s:%s too short; dropped", addr[0], addr[1])
            return
        p = self.pending.get((addr[0], addr[1], data[1]))
        if p is None:
            log.warning("CoA reply from %s:%s id %d matches no request; dropped",
                        addr[0], addr[1], data[1])
            return
        if data[0] not in p.codes:
            log.warning("CoA reply from %s:%s: code %d does not answer code %d; dropped",
                        addr[0], addr[1], data[0], p.data[0])
            return
        problem = verify_reply(data, p.data[4:20], p.secret)
        if problem is not None:
            log.warning("CoA reply from %s:%s dropped: %s", addr[0], addr[1], problem)
            return
        del self.pending[(p.host, p.port, p.identifier)]
        if p.timer is not None and p.timer.active():
            p.timer.cancel()
        p.deferred.callback((data[0], error_cause(data)))

    def stop(self) -> None:
        for p in list(self.pending.values()):
            if p.timer is not None and p.timer.active():
                p.timer.cancel()
            p.deferred.errback(TimeoutError("CoA sender stopped"))
        self.pending.clear()


def identity_attributes(vendor: Vendor, s: LiveSession, nas_ip: str | None
                        ) -> list[tuple[str, object]]:
    """The session's identifying attributes, in the order the vendor profile lists them."""
    values: dict[str, object | None] = {
        "User-Name": s.user_name or None,
        "Acct-Session-Id": s.acct_session_id,
        "Framed-IP-Address": s.framed_ip,
        "NAS-IP-Address": s.nas_ip or nas_ip,
    }
    out: list[tuple[str, object]] = []
    for key in PROFILES[vendor].disconnect_keys:
        value = values.get(key)
        if value:
            out.append((key, value))
    return out


def _ipv4(text: str | None) -> str | None:
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(ip) if ip.version == 4 else None


def coa_attributes(items: list[str]) -> list[tuple[str, object]]:
    """``["Mikrotik-Address-List=unpaid", "Session-Timeout=60"]`` -> CoA attribute pairs."""
    out: list[tuple[str, object]] = []
    for item in items:
        name, _, value = item.partition("=")
        out.append((name.strip(), int(value) if value.strip().isdigit() else value.strip()))
    return out


@dataclass
class CoaDisconnector:
    """billing.cutoff.Disconnector over RFC 5176; NASes come from the database by id."""

    dbpool: Any
    reactor: Any
    dictionary: Dictionary
    timeout: float = 3.0
    retries: int = 3
    captive_attributes: list[tuple[str, object]] = field(default_factory=list)
    bind: str = "0.0.0.0"
    #: Added to the CoA-Request that takes a paid-up session out of the captive profile.
    restore_attributes: list[tuple[str, object]] = field(default_factory=list)
    _nas: dict[int, NasClient] = field(default_factory=dict)
    _protocol: CoaClientProtocol | None = None
    _port: Any = None

    @classmethod
    def from_config(cls, config: Any, dbpool: Any, reactor: Any, dictionary: Dictionary,
                    captive_attributes: list[tuple[str, object]] | None = None
                    ) -> CoaDisconnector:
        return cls(dbpool, reactor, dictionary, config.coa.timeout, config.coa.retries,
                   captive_attributes or [],
                   restore_attributes=coa_attributes(config.coa.restore_attributes))

    def protocol(self) -> CoaClientProtocol:
        if self._protocol is None:
            self._protocol = CoaClientProtocol(self.reactor, self.timeout, self.retries)
            self._port = self.reactor.listenUDP(0, self._protocol, interface=self.bind)
        return self._protocol

    def close(self) -> Any:
        if self._protocol is not None:
            self._protocol.stop()
            self._protocol = None
        port, self._port = self._port, None
        return port.stopListening() if port is not None else None

    @defer.inlineCallbacks
    def _client(self, nas_id: int | None) -> Any:
        if nas_id is None:
            return None
        if nas_id not in self._nas:
            clients = yield self.dbpool.run(thd_load_clients)
            self._nas = {c.id: c for c in clients}
        return self._nas.get(nas_id)

    def disconnect(self, session: LiveSession) -> defer.Deferred[CutResult]:
        return self._request(session, P.DisconnectRequest, [])

    def change(self, session: LiveSession, action: CutAction,
               rate_limit: str | None = None) -> defer.Deferred[CutResult]:
        d: defer.Deferred[CutResult]
        if action is CutAction.DISCONNECT:
            return self.disconnect(session)
        if action is CutAction.CAPTIVE:
            if not self.captive_attributes:
                d = self.disconnect(session)
                return d
            return self._request(session, P.CoARequest, list(self.captive_attributes))
        if action is CutAction.RESTORE:
            # The plan's rate limit (as at login) and whatever undoes the captive profile.
            return self._request(session, P.CoARequest, list(self.restore_attributes),
                                 rate_limit=rate_limit)
        return self._request(session, P.CoARequest, [], rate_limit=rate_limit)

    @defer.inlineCallbacks
    def _request(self, session: LiveSession, code: int, extra: list[tuple[str, object]],
                 rate_limit: str | None = None) -> Any:
        nas = yield self._client(session.nas_id)
        if nas is None:
            return CutResult(CutOutcome.NO_ROUTE, detail=f"unknown NAS {session.nas_id}")
        net = parse_network(nas.address)
        host = str(net.network_address) if net.num_addresses == 1 else (
            session.nas_ip or None)
        if not host:
            return CutResult(CutOutcome.NO_ROUTE,
                             detail=f"NAS {nas.name} is a network ({nas.address}) and the "
                                    "session has no NAS-IP-Address")
        attrs = identity_attributes(nas.vendor, session, _ipv4(host))
        if not attrs:
            return CutResult(CutOutcome.NO_ROUTE, detail="nothing identifies the session")
        if rate_limit:
            try:
                extra = extra + rate_limit_attributes(nas.vendor, rate_limit)
            except ValueError as exc:
                return CutResult(CutOutcome.NO_ROUTE, detail=str(exc))
        proto = self.protocol()
        ident = proto.allocate_id(host, nas.coa_port)
        try:
            data = encode_request(self.dictionary, code, ident, nas.secret, attrs + extra)
        except Exception as exc:
            return CutResult(CutOutcome.NO_ROUTE, detail=f"cannot encode: {exc}")
        what = "Disconnect-Request" if code == P.DisconnectRequest else "CoA-Request"
        log.info("%s to %s (%s:%d) for %s", what, nas.name, host, nas.coa_port,
                 describe(session))
        try:
            reply, cause = yield proto.send(host, nas.coa_port, ident, data, nas.secret)
        except TimeoutError as exc:
            log.warning("%s to %s for %s: %s", what, nas.name, session.user_name, exc)
            return CutResult(CutOutcome.TIMEOUT, detail=str(exc))
        if reply in ACKS:
            log.info("%s to %s for %s: ACK", what, nas.name, session.user_name)
            return CutResult(CutOutcome.ACK)
        outcome = CutOutcome.GONE if cause == SESSION_CONTEXT_NOT_FOUND else CutOutcome.NAK
        log.info("%s to %s for %s: NAK, Error-Cause %s", what, nas.name, session.user_name,
                 cause)
        return CutResult(outcome, error_cause=cause)
