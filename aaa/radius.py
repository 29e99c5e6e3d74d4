"""The RADIUS listener: decode, validate, de-duplicate and dispatch; nothing else.

Shaped like Twisted's ``names/dns.py`` DNSDatagramProtocol: every datagram is
checked (aaa.wire), matched to a NAS client, verified (Request Authenticator
for accounting, Message-Authenticator whenever present), de-duplicated (RFC
5080) and handed to a handler that returns a Decision. The Decision becomes a
reply only through aaa.outcome's table. Nothing a peer sends can raise out of
``datagramReceived``: malformed input is logged and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pyrad import packet as P
from pyrad.dictionary import Dictionary
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure

from aaa import metrics
from aaa.acct_decode import AcctRequestPacket
from aaa.clients import ClientTable, NasClient
from aaa.dedupe import DuplicateCache, Key, request_key
from aaa.loglimit import LineBudget, suffix
from aaa.maybe import Maybe, is_deferred
from aaa.outcome import Decision, Outcome, rule_for
from aaa.wire import (
    HEADER_LEN,
    MESSAGE_AUTHENTICATOR,
    PROXY_STATE,
    Malformed,
    attribute_combination_problem,
    check_packet,
)
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

PortKind = Literal["auth", "acct"]
ACCEPTED_CODES: dict[str, frozenset[int]] = {
    "auth": frozenset({P.AccessRequest, P.StatusServer}),
    "acct": frozenset({P.AccountingRequest, P.StatusServer}),
}
CODE_NAMES = {P.AccessRequest: "Access-Request", P.AccountingRequest: "Accounting-Request",
              P.StatusServer: "Status-Server"}


class RequestHandler(Protocol):
    """Decides a request: at once when it can, else through a Deferred (aaa.maybe)."""

    def handle(self, client: NasClient, pkt: P.Packet) -> Maybe[Decision]: ...


class UnknownClientLog:
    """Log an unknown source once per address per interval; count every datagram."""

    def __init__(self, clock: IReactorTime, interval: float = 60.0, max_entries: int = 10_000):
        self.clock = clock
        self.interval = interval
        self.max_entries = max_entries
        self._last: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def should_log(self, host: str) -> bool:
        now = self.clock.seconds()
        last = self._last.get(host)
        if last is not None and now - last < self.interval:
            return False
        self._last.pop(host, None)
        if len(self._last) >= self.max_entries:
            self._last.popitem(last=False)
        self._last[host] = now
        return True


class ReplyTemplates:
    """Attribute octets of recent replies, so pyrad encodes each distinct reply once.

    Building a reply with pyrad (CreateReply, AddAttribute by name, then
    ReplyPacket, which encodes every attribute twice) was about a third of the
    CPU of a whole Access-Request (bench/auth_bench.py), and most Accepts of a
    plan carry the same attributes. The octets of (code, Reply-Message,
    attributes) are kept; each reply then costs the header, the copied
    Proxy-State, one HMAC-MD5 for Message-Authenticator and one MD5 for the
    Response Authenticator, laid out exactly as pyrad lays them out
    (Message-Authenticator first, then Proxy-State in order, then the rest).
    Attributes whose encoding depends on the request (hidden or salted, such as
    MS-MPPE keys) and anything pyrad refuses are never cached: ``encode``
    returns None and the caller takes the plain pyrad path.
    """

    def __init__(self, max_entries: int = 16_384) -> None:
        self.max_entries = max_entries
        self._bodies: dict[tuple[object, ...], bytes] = {}
        self._signed: dict[tuple[type, int], bool] = {}

    def __len__(self) -> int:
        return len(self._bodies)

    def encode(self, pkt: P.Packet, code: int, message: str | None,
               attributes: list[tuple[str, object]], with_ma: bool) -> bytes | None:
        try:
            key = (code, message, *attributes)
            body = self._bodies.get(key)
        except TypeError:  # an unhashable value: not worth caching
            return None
        if body is None:
            body = self._build(pkt, message, attributes)
            if body is None:
                return None
            if len(self._bodies) >= self.max_entries:
                del self._bodies[next(iter(self._bodies))]
            self._bodies[key] = body
        attrs = b"".join(bytes((PROXY_STATE, len(v) + 2)) + v
                         for v in OrderedDict.get(pkt, PROXY_STATE, ())) + body
        secret, request_auth = pkt.secret, pkt.authenticator
        if with_ma or self._signed_by_pyrad(pkt):
            attrs = _MA_ZERO + attrs
            header = struct.pack("!BBH", code, pkt.id, 20 + len(attrs))
            # RFC 2869 5.14 / RFC 5997 3: the Request Authenticator, except for an
            # Accounting-Response that does not answer a Status-Server (pyrad's rule too).
            vector = _ZERO16 if code == P.AccountingResponse and pkt.code != P.StatusServer \
                else request_auth
            ma = hmac.digest(secret, header + vector + attrs, "md5")
            attrs = attrs[:2] + ma + attrs[18:]
        else:
            header = struct.pack("!BBH", code, pkt.id, 20 + len(attrs))
        response_auth = hashlib.md5(header + request_auth + attrs + secret).digest()  # noqa: S324
        return header + response_auth + attrs

    def _signed_by_pyrad(self, pkt: P.Packet) -> bool:
        """Whether pyrad's CreateReply signs this kind of request's reply on its own."""
        kind = (type(pkt), pkt.code)
        signed = self._signed.get(kind)
        if signed is None:
            signed = self._signed[kind] = bool(pkt.CreateReply().message_authenticator)
        return signed

    @staticmethod
    def _build(pkt: P.Packet, message: str | None,
               attributes: list[tuple[str, object]]) -> bytes | None:
        scratch = P.Packet(dict=pkt.dict, secret=pkt.secret, authenticator=pkt.authenticator)
        try:
            if message:
                scratch.AddAttribute("Reply-Message", message)
            for name, _ in attributes:
                if pkt.dict.attributes[name.partition(":")[0]].encrypt:
                    return None
            for name, value in attributes:
                scratch.AddAttribute(name, value)
            if OrderedDict.__contains__(scratch, PROXY_STATE) or \
                    OrderedDict.__contains__(scratch, MESSAGE_AUTHENTICATOR):
                return None  # would be grouped with the copied ones: leave it to pyrad
            return scratch._PktEncodeAttributes()
        except Exception:
            return None


_ZERO16 = b"\x00" * 16
_MA_ZERO = bytes((MESSAGE_AUTHENTICATOR, 18)) + _ZERO16


class AuthRequestPacket(P.AuthPacket):
    """pyrad's AuthPacket decoded by the accounting port's offset walk (aaa.acct_decode).

    The same algorithm and result as pyrad's DecodePacket, which was a tenth of
    an Access-Request's CPU (bench/auth_bench.py); tests/test_radius_fastpath.py
    compares the two on random Access-Requests.
    """

    DecodePacket = AcctRequestPacket.DecodePacket


def message_authenticator_ok(data: bytes, secret: bytes) -> bool:
    """RFC 2869 5.14 / RFC 3579 3.2 on a datagram aaa.wire has checked: one C call.

    HMAC-MD5, keyed with the shared secret, of the packet with the (first)
    Message-Authenticator's value zeroed; the Request Authenticator field is
    taken as it is for Access-Request and Status-Server, as 16 zeros for
    Accounting-Request. The same answer as pyrad's verify_message_authenticator
    (tests/test_radius_fastpath.py compares them on random packets), which
    builds an HMAC object and copies the packet several times, a twentieth of
    the listener's CPU (bench/auth_bench.py).
    """
    pos, end = HEADER_LEN, len(data)
    while pos < end and data[pos] != MESSAGE_AUTHENTICATOR:
        pos += data[pos + 1]
    if pos >= end:
        return False
    vector = _ZERO16 if data[0] == P.AccountingRequest else data[4:20]
    signed = data[:4] + vector + data[HEADER_LEN:pos + 2] + _ZERO16 + data[pos + 18:]
    return hmac.compare_digest(hmac.digest(secret, signed, "md5"), data[pos + 2:pos + 18])


def request_authenticator_ok(data: bytes, secret: bytes) -> bool:
    """RFC 2866 section 3: MD5(Code+Identifier+Length+16 zeros+Attributes+Secret)."""
    expected = hashlib.md5(data[:4] + b"\x00" * 16 + data[20:] + secret).digest()  # noqa: S324
    return hmac.compare_digest(expected, data[4:20])


class RadiusServerProtocol(DatagramProtocol):
    def __init__(self, kind: PortKind, clients: ClientTable, dictionary: Dictionary,
                 handler: RequestHandler, clock: IReactorTime, dedupe: DuplicateCache,
                 unknown: UnknownClientLog, max_packet_size: int = 4096,
                 max_in_flight: int = 2048,
                 on_unknown_client: Callable[[str], None] | None = None,
                 lines_per_minute: int = 60) -> None:
        self.kind = kind
        self.clients = clients
        self.dictionary = dictionary
        self.handler = handler
        self.clock = clock
        self.dedupe = dedupe
        self.unknown = unknown
        self.max_packet_size = max_packet_size
        self.max_in_flight = max_in_flight
        self.on_unknown_client = on_unknown_client
        self.in_flight = 0
        self.lines = LineBudget(clock, lines_per_minute)
        self._dropped = {reason: metrics.DROPPED.labels(kind, reason) for reason in (
            "malformed", "unknown-client", "bad-code", "bad-authenticator",
            "bad-message-authenticator", "missing-message-authenticator",
            "proxy-state-without-message-authenticator", "undecodable", "overload", "no-reply",
            "invalid-attributes", "shed")}
        self._duplicates = metrics.DUPLICATES.labels(kind)
        self._in_flight_count = metrics.IN_FLIGHT_COUNTS[kind]
        self._latency = metrics.LATENCY.labels(kind)
        # Counter children bound once each: labels() per request was a lock and a lookup.
        self._requests: dict[int, Any] = {}
        self._outcomes: dict[Outcome, Any] = {}
        self.replies = ReplyTemplates()

    # -- receive -------------------------------------------------------------------

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        try:
            self._receive(data, addr)
        except Exception:
            # Last line of defence: what slipped past the checks costs one packet, not the server.
            log.exception("dropping datagram from %s:%s after an internal error", addr[0], addr[1])
            self._dropped["undecodable"].inc()

    def _drop(self, reason: str, addr: tuple[str, int], detail: str) -> None:
        self._dropped[reason].inc()
        ok, left_out = self.lines.allow("drop:" + reason)
        if ok:
            log.warning("%s port: dropped packet from %s:%s: %s%s", self.kind, addr[0], addr[1],
                        detail, suffix(left_out))

    def _receive(self, data: bytes, addr: tuple[str, int]) -> None:
        host, port = addr[0], addr[1]
        client = self.clients.find(host)
        if client is None:
            self._dropped["unknown-client"].inc()
            if self.unknown.should_log(host):
                log.warning("%s port: packet from unknown client %s ignored "
                            "(add it with 'radbill nas add')", self.kind, host)
            if self.on_unknown_client is not None:
                self.on_unknown_client(host)
            return
        try:
            data = check_packet(data, self.max_packet_size)
        except Malformed as exc:
            self._drop("malformed", addr, f"{client.name}: {exc}")
            return
        code = data[0]
        if code not in ACCEPTED_CODES[self.kind]:
            self._drop("bad-code", addr, f"{client.name}: code {code} not accepted here")
            return
        combination = attribute_combination_problem(data)
        if combination is not None:
            self._drop("invalid-attributes", addr, f"{client.name}: {combination}")
            return
        if code == P.AccountingRequest and not request_authenticator_ok(data, client.secret):
            self._drop("bad-authenticator", addr,
                       f"{client.name}: Request Authenticator mismatch (wrong shared secret?)")
            return
        key = request_key(host, port, data)
        seen, cached = self.dedupe.lookup(key)
        if seen:
            self._duplicates.inc()
            if cached is not None:
                self.transport.write(cached, addr)
            return
        try:
            pkt = self._decode(code, data, client)
        except Exception as exc:
            self.dedupe.done(key, None)
            self._drop("undecodable", addr, f"{client.name}: {exc}")
            return
        problem = self._check_message_authenticator(code, data, pkt, client)
        if problem is not None:
            self.dedupe.done(key, None)
            self._drop(problem[0], addr, f"{client.name}: {problem[1]}")
            return
        if self.in_flight >= self.max_in_flight:
            self.dedupe.done(key, None)
            self._drop("overload", addr, f"{client.name}: {self.in_flight} requests in flight")
            return
        requests = self._requests.get(code)
        if requests is None:
            requests = self._requests[code] = metrics.REQUESTS.labels(self.kind, CODE_NAMES[code])
        requests.inc()
        self._dispatch(code, pkt, client, key, addr)

    def _decode(self, code: int, data: bytes, client: NasClient) -> P.Packet:
        # AcctRequestPacket: pyrad's AcctPacket with a faster, result-identical DecodePacket.
        cls = AcctRequestPacket if self.kind == "acct" else AuthRequestPacket
        return cls(packet=data, dict=self.dictionary, secret=client.secret)

    def _check_message_authenticator(self, code: int, data: bytes, pkt: P.Packet,
                                     client: NasClient) -> tuple[str, str] | None:
        has_ma = OrderedDict.__contains__(pkt, MESSAGE_AUTHENTICATOR)
        if has_ma:
            if not message_authenticator_ok(data, client.secret):
                return ("bad-message-authenticator",
                        "Message-Authenticator invalid (wrong shared secret?)")
            return None
        if code == P.StatusServer:
            return ("missing-message-authenticator",
                    "Status-Server without Message-Authenticator (RFC 5997)")
        if code == P.AccessRequest:
            if client.require_message_authenticator:
                return ("missing-message-authenticator",
                        "Access-Request without Message-Authenticator, which this client must "
                        "send (CVE-2024-3596)")
            if OrderedDict.__contains__(pkt, PROXY_STATE):
                return ("proxy-state-without-message-authenticator",
                        "Proxy-State without Message-Authenticator (CVE-2024-3596)")
        return None

    # -- dispatch and reply ----------------------------------------------------------

    def _dispatch(self, code: int, pkt: P.Packet, client: NasClient,
                  key: Key, addr: tuple[str, int]) -> None:
        started = time.perf_counter()
        self.in_flight += 1
        self._in_flight_count.value += 1
        decision: Maybe[Decision]
        if code == P.StatusServer:
            decision = Decision(Outcome.STATUS_OK)
        else:
            try:
                decision = self.handler.handle(client, pkt)
            except Exception:
                decision = self._failed(Failure(), client)
        if is_deferred(decision):
            decision.addErrback(self._failed, client).addCallback(  # type: ignore[union-attr]
                self._reply, pkt, client, key, addr, started).addErrback(self._reply_failed)
            return
        # Decided at once (a warm cache): no Deferred at all on this path.
        try:
            self._reply(decision, pkt, client, key, addr, started)
        except Exception:
            self._reply_failed(Failure())

    def _failed(self, failure: Failure, client: NasClient) -> Decision:
        if failure.check(DatabaseUnavailable):
            # The outage is logged once (core.db.outage); no traceback per request.
            return Decision(Outcome.FAILED, detail=failure.getErrorMessage())
        log.error("%s port: request from %s failed: %s", self.kind, client.name,
                  failure.getErrorMessage(), exc_info=failure.value)
        return Decision(Outcome.FAILED, detail=failure.getErrorMessage())

    @staticmethod
    def _reply_failed(failure: Failure) -> None:
        log.error("reply failed: %s", failure.getErrorMessage(), exc_info=failure.value)

    def _reply(self, decision: Decision, pkt: P.Packet, client: NasClient,
               key: Key, addr: tuple[str, int], started: float) -> None:
        self.in_flight -= 1
        self._in_flight_count.value -= 1
        raw = None
        try:
            raw = self._encode(pkt, decision, client)
        finally:
            # Even when encoding blows up, forget the request so a resend gets a fresh
            # try instead of being ignored as "in flight" until max_processing runs out.
            self.dedupe.done(key, raw)
        outcome = decision.outcome
        outcomes = self._outcomes.get(outcome)
        if outcomes is None:
            outcomes = self._outcomes[outcome] = metrics.OUTCOMES.labels(self.kind,
                                                                         outcome.value)
        outcomes.inc()
        if raw is None:
            self._dropped["no-reply"].inc()
            return
        if outcome not in (Outcome.ACCEPT, Outcome.ACCOUNTING_STORED, Outcome.STATUS_OK):
            ok, left_out = self.lines.allow(outcome.value)
            if ok:
                log.info("%s: %s from NAS %s (%s)%s", self.kind, outcome.value, client.name,
                         decision.detail, suffix(left_out))
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s from NAS %s (%s)", self.kind, outcome.value, client.name,
                      decision.detail)
        self.transport.write(raw, addr)
        self._latency.observe(time.perf_counter() - started)

    def _encode(self, pkt: P.Packet, decision: Decision, client: NasClient) -> bytes | None:
        rule = rule_for(self.kind, decision.outcome)
        if rule.code is None:
            return None
        message = decision.message or rule.message
        with_ma = rule.code in (P.AccessAccept, P.AccessReject, P.AccessChallenge) or \
            pkt.code == P.StatusServer
        cached = self.replies.encode(pkt, rule.code, message, decision.attributes, with_ma)
        if cached is not None:
            return cached
        reply = pkt.CreateReply()
        reply.code = rule.code
        if message:
            reply.AddAttribute("Reply-Message", message)
        for name, value in decision.attributes:
            try:
                reply.AddAttribute(name, value)
            except Exception as exc:
                log.error("cannot encode reply attribute %s=%r for %s (%s): %s", name, value,
                          client.name, decision.detail, exc)
                if rule.code == P.AccessAccept:
                    # Fail closed: an Accept missing its rate limit or timeout would hand out
                    # more service than was sold.
                    return self._encode(pkt, Decision(Outcome.MISCONFIGURED,
                                                      detail=decision.detail), client)
        if with_ma:
            reply.add_message_authenticator()
        try:
            return reply.ReplyPacket()  # type: ignore[no-any-return]
        except Exception as exc:
            log.error("cannot encode reply to %s: %s", client.name, exc)
            return None
