"""Protocol tests of aaa.radius.RadiusServerProtocol without a reactor.

The protocol is built directly with a ClientTable, the shipped dictionary, a
recording handler whose Deferreds the test fires, a task.Clock and a fake
datagram transport. Requests are built and replies checked with pyrad, the
way a NAS would, plus an independent HMAC computation of the reply's
Message-Authenticator. The helpers here are shared with test_dedupe.py and
test_radius_fuzz.py.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY
from pyrad import packet as P
from twisted.internet import defer, task

from aaa.clients import ClientTable, NasClient
from aaa.dedupe import DuplicateCache
from aaa.dictionary import load_dictionary
from aaa.outcome import ACCESS_REPLIES, Decision, Outcome
from aaa.radius import RadiusServerProtocol, UnknownClientLog
from aaa.wire import MESSAGE_AUTHENTICATOR, PROXY_STATE, attribute_values
from core.db.models import Vendor

SECRET = b"s3cret-nas"
NAS_IP = "192.0.2.10"
NAS_ADDR = (NAS_IP, 32768)
PASSWORD = "pw"
DICT = load_dictionary()


# -- test doubles and builders -------------------------------------------------------


class FakeDatagramTransport:
    """Records what the protocol sends; Twisted ships no UDP fake."""

    def __init__(self) -> None:
        self.written: list[tuple[bytes, tuple[str, int]]] = []

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.written.append((data, addr))


class RecordingHandler:
    """Records every request it is given; answers with ``auto`` or a Deferred the test fires."""

    def __init__(self, auto: Decision | None = None) -> None:
        self.auto = auto
        self.requests: list[tuple[NasClient, P.Packet]] = []
        self.pending: list[defer.Deferred[Decision]] = []

    def handle(self, client: NasClient, pkt: P.Packet) -> defer.Deferred[Decision]:
        self.requests.append((client, pkt))
        if self.auto is not None:
            return defer.succeed(self.auto)
        d: defer.Deferred[Decision] = defer.Deferred()
        self.pending.append(d)
        return d

    def answer(self, decision: Decision, index: int = 0) -> None:
        self.pending.pop(index).callback(decision)


def nas_client(address: str = NAS_IP, *, secret: bytes = SECRET, require_ma: bool = False,
               name: str = "nas1", client_id: int = 1,
               vendor: Vendor = Vendor.GENERIC) -> NasClient:
    return NasClient(id=client_id, name=name, address=address, secret=secret, vendor=vendor,
                     require_message_authenticator=require_ma, coa_port=3799)


@dataclass
class Harness:
    proto: RadiusServerProtocol
    transport: FakeDatagramTransport
    handler: RecordingHandler
    clock: task.Clock
    dedupe: DuplicateCache
    unknown: UnknownClientLog

    def send(self, raw: bytes, addr: tuple[str, int] = NAS_ADDR) -> None:
        self.proto.datagramReceived(raw, addr)

    @property
    def replies(self) -> list[bytes]:
        return [data for data, _ in self.transport.written]


def make_harness(kind: str = "auth", clients: Iterable[NasClient] | None = None,
                 handler: RecordingHandler | None = None, *, max_in_flight: int = 2048,
                 dedupe_max: int = 100_000, window: float = 5.0,
                 unknown_interval: float = 60.0, unknown_max: int = 10_000,
                 on_unknown_client=None) -> Harness:  # type: ignore[no-untyped-def]
    clock = task.Clock()
    clock.advance(1_000_000)  # a clock at 0 would hide off-by-one expiry bugs
    dedupe = DuplicateCache(clock, window=window, max_entries=dedupe_max)
    unknown = UnknownClientLog(clock, interval=unknown_interval, max_entries=unknown_max)
    handler = handler if handler is not None else RecordingHandler()
    table = ClientTable([nas_client()] if clients is None else clients)
    proto = RadiusServerProtocol(kind, table, DICT, handler, clock, dedupe,  # type: ignore[arg-type]
                                 unknown, max_in_flight=max_in_flight,
                                 on_unknown_client=on_unknown_client)
    transport = FakeDatagramTransport()
    proto.transport = transport  # type: ignore[assignment]
    return Harness(proto, transport, handler, clock, dedupe, unknown)


def access_request(*, ident: int = 1, secret: bytes = SECRET, user: str | bytes = "alice",
                   password: str | None = PASSWORD, ma: bool = True,
                   proxy_states: Sequence[bytes] = (), authenticator: bytes | None = None,
                   code: int = P.AccessRequest) -> tuple[P.AuthPacket, bytes]:
    """An Access-Request (or Status-Server) as a NAS builds it, and its bytes."""
    pkt = P.AuthPacket(code=code, id=ident, secret=secret, dict=DICT,
                       authenticator=authenticator or os.urandom(16))
    if code == P.AccessRequest:
        pkt[1] = [user.encode() if isinstance(user, str) else user]
        if password is not None:
            pkt["User-Password"] = pkt.PwCrypt(password)
        pkt["NAS-IP-Address"] = NAS_IP
    for state in proxy_states:
        pkt.AddAttribute("Proxy-State", state)
    if ma:
        pkt.add_message_authenticator()
    return pkt, pkt.RequestPacket()


def status_server(kind: str, *, ma: bool = True,
                  secret: bytes = SECRET) -> tuple[P.Packet, bytes]:
    """A Status-Server (RFC 5997) for the auth or the acct port."""
    if kind == "auth":
        return access_request(code=P.StatusServer, ma=ma, secret=secret)
    pkt = P.AcctPacket(code=P.StatusServer, id=7, secret=secret, dict=DICT,
                       authenticator=os.urandom(16))
    pkt.message_authenticator = ma
    return pkt, pkt.RequestPacket()


def accounting_request(*, ident: int = 3, secret: bytes = SECRET, session: str = "sess-1",
                       ma: bool = False,
                       proxy_states: Sequence[bytes] = ()) -> tuple[P.AcctPacket, bytes]:
    pkt = P.AcctPacket(code=P.AccountingRequest, id=ident, secret=secret, dict=DICT)
    pkt["User-Name"] = "alice"
    pkt["Acct-Status-Type"] = "Start"
    pkt["Acct-Session-Id"] = session
    pkt["NAS-IP-Address"] = NAS_IP
    for state in proxy_states:
        pkt.AddAttribute("Proxy-State", state)
    if ma:
        pkt.add_message_authenticator()
    return pkt, pkt.RequestPacket()


def with_attributes(raw: bytes, extra: bytes) -> bytes:
    """Append raw attribute octets and fix the Length field (unsigned requests only)."""
    body = raw + extra
    return body[:2] + len(body).to_bytes(2, "big") + body[4:]


def decode_reply(request: P.Packet, raw: bytes) -> P.Packet:
    reply = request.CreateReply(packet=raw)
    # Salt-encrypted attributes (MS-MPPE keys) decrypt with the Request Authenticator.
    reply.request_authenticator = request.authenticator
    return reply


def reply_ma_ok(raw: bytes, request_authenticator: bytes, secret: bytes = SECRET) -> bool:
    """Independent RFC 3579 3.2 check: HMAC-MD5 over the reply with the Request Authenticator."""
    assert raw[20] == MESSAGE_AUTHENTICATOR and raw[21] == 18, "Message-Authenticator not first"
    zeroed = raw[:4] + request_authenticator + raw[20:22] + b"\x00" * 16 + raw[38:]
    expected = hmac.new(secret, zeroed, hashlib.md5).digest()
    return hmac.compare_digest(expected, raw[22:38])


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def dropped(kind: str, reason: str) -> float:
    return counter("radbill_radius_dropped_total", port=kind, reason=reason)


# -- Access-Request ------------------------------------------------------------------


def test_pap_request_reaches_handler_once_and_accept_is_signed_first() -> None:
    """A PAP Access-Request is handled once; the Accept has a valid Message-Authenticator first."""
    h = make_harness()
    req, raw = access_request(ident=42)
    h.send(raw)
    assert len(h.handler.requests) == 1
    client, pkt = h.handler.requests[0]
    assert client.name == "nas1"
    assert pkt[1] == [b"alice"] and pkt.authenticator == req.authenticator
    assert h.replies == []  # nothing before the handler decides
    h.handler.answer(Decision(Outcome.ACCEPT, attributes=[("Session-Timeout", 3600)]))
    assert len(h.replies) == 1
    data, addr = h.transport.written[0]
    assert addr == NAS_ADDR
    reply = decode_reply(req, data)
    assert reply.code == P.AccessAccept and reply.id == 42
    assert req.VerifyReply(reply, data)
    assert reply_ma_ok(data, req.authenticator)
    assert reply["Session-Timeout"] == [3600]
    assert h.proto.in_flight == 0


@pytest.mark.parametrize("outcome", [o for o, rule in ACCESS_REPLIES.items()
                                     if rule.code == P.AccessReject])
def test_reject_carries_reply_message_from_outcome_table(outcome: Outcome) -> None:
    """Every reject outcome becomes a signed Access-Reject with the table's Reply-Message."""
    h = make_harness()
    req, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(outcome, detail="test"))
    (data,) = h.replies
    reply = decode_reply(req, data)
    assert reply.code == P.AccessReject
    assert req.VerifyReply(reply, data) and reply_ma_ok(data, req.authenticator)
    assert reply["Reply-Message"] == [ACCESS_REPLIES[outcome].message]


def test_decision_message_replaces_table_message() -> None:
    """A handler's own message wins over the outcome table's Reply-Message."""
    h = make_harness()
    req, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.NO_BALANCE, message="Top up at example.net"))
    reply = decode_reply(req, h.replies[0])
    assert reply["Reply-Message"] == ["Top up at example.net"]


def test_two_proxy_states_are_copied_in_order() -> None:
    """Both Proxy-State attributes come back unchanged and in the order received."""
    h = make_harness()
    req, raw = access_request(proxy_states=(b"first-hop", b"\x00second\xff"))
    h.send(raw)
    h.handler.answer(Decision(Outcome.ACCEPT))
    (data,) = h.replies
    assert attribute_values(data, PROXY_STATE) == [b"first-hop", b"\x00second\xff"]
    assert req.VerifyReply(decode_reply(req, data), data)
    assert reply_ma_ok(data, req.authenticator)


def test_proxy_state_without_message_authenticator_is_dropped() -> None:
    """Proxy-State without Message-Authenticator is dropped even from a lenient client."""
    h = make_harness(clients=[nas_client(require_ma=False)])
    before = dropped("auth", "proxy-state-without-message-authenticator")
    _, raw = access_request(ma=False, proxy_states=(b"x",))
    h.send(raw)
    assert h.handler.requests == [] and h.replies == []
    assert dropped("auth", "proxy-state-without-message-authenticator") == before + 1


def test_lenient_client_may_omit_message_authenticator() -> None:
    """A client with require_message_authenticator=False is served without one."""
    h = make_harness(clients=[nas_client(require_ma=False)])
    req, raw = access_request(ma=False)
    h.send(raw)
    assert len(h.handler.requests) == 1
    h.handler.answer(Decision(Outcome.ACCEPT))
    data = h.replies[0]
    assert req.VerifyReply(decode_reply(req, data), data)
    assert reply_ma_ok(data, req.authenticator)  # replies are always signed


def test_strict_client_without_message_authenticator_is_dropped() -> None:
    """require_message_authenticator=True drops an Access-Request without it."""
    h = make_harness(clients=[nas_client(require_ma=True)])
    before = dropped("auth", "missing-message-authenticator")
    _, raw = access_request(ma=False)
    h.send(raw)
    assert h.handler.requests == [] and h.replies == []
    assert dropped("auth", "missing-message-authenticator") == before + 1


def test_strict_client_with_valid_message_authenticator_is_served() -> None:
    """require_message_authenticator=True accepts a request with a valid one."""
    h = make_harness(clients=[nas_client(require_ma=True)])
    req, raw = access_request(ma=True)
    h.send(raw)
    assert len(h.handler.requests) == 1
    h.handler.answer(Decision(Outcome.ACCEPT))
    assert req.VerifyReply(decode_reply(req, h.replies[0]), h.replies[0])


@pytest.mark.parametrize("how", ["flipped", "wrong-secret"])
def test_wrong_message_authenticator_is_dropped(how: str) -> None:
    """A Message-Authenticator that does not verify drops the request."""
    h = make_harness(clients=[nas_client(require_ma=False)])
    before = dropped("auth", "bad-message-authenticator")
    if how == "flipped":
        _, raw = access_request()
        assert raw[20] == MESSAGE_AUTHENTICATOR
        raw = raw[:30] + bytes([raw[30] ^ 0x01]) + raw[31:]
    else:
        _, raw = access_request(secret=b"not-the-secret")
    h.send(raw)
    assert h.handler.requests == [] and h.replies == []
    assert dropped("auth", "bad-message-authenticator") == before + 1


def test_access_request_on_acct_port_is_dropped() -> None:
    """An Access-Request sent to the accounting port is dropped as a bad code."""
    h = make_harness(kind="acct")
    before = dropped("acct", "bad-code")
    _, raw = access_request()
    h.send(raw)
    assert h.handler.requests == [] and h.replies == []
    assert dropped("acct", "bad-code") == before + 1


def test_accounting_request_on_auth_port_is_dropped() -> None:
    """An Accounting-Request sent to the authentication port is dropped as a bad code."""
    h = make_harness(kind="auth")
    before = dropped("auth", "bad-code")
    _, raw = accounting_request()
    h.send(raw)
    assert h.handler.requests == [] and h.replies == []
    assert dropped("auth", "bad-code") == before + 1


@pytest.mark.parametrize("code", [P.AccessAccept, P.AccessReject, P.AccountingResponse,
                                  P.AccessChallenge, P.DisconnectRequest, P.CoARequest, 0, 255])
def test_reply_and_unknown_codes_are_dropped(code: int) -> None:
    """Codes a server does not accept on the auth port are dropped, never answered."""
    h = make_harness()
    _, raw = access_request()
    h.send(bytes([code]) + raw[1:])
    assert h.handler.requests == [] and h.replies == []


def test_malformed_packet_from_known_client_is_dropped_and_counted() -> None:
    """A structurally broken packet is dropped with reason 'malformed' and a log line."""
    h = make_harness()
    before = dropped("auth", "malformed")
    _, raw = access_request(ma=False)
    assert raw[20] == 1  # User-Name comes first without Message-Authenticator
    h.send(raw[:21] + b"\x00" + raw[22:])  # give it length 0
    assert h.handler.requests == [] and h.replies == []
    assert dropped("auth", "malformed") == before + 1


def test_undecodable_tlv_is_dropped_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """A TLV attribute whose inner lengths are broken is a logged drop, not an internal error."""
    h = make_harness()
    before = dropped("auth", "undecodable")
    _, raw = access_request(ma=False)
    # ADSL-Forum (3561) attribute 255 is a tlv; its inner sub-attribute has length 0, which
    # aaa.wire does not look into and pyrad refuses with PacketError.
    vsa = (3561).to_bytes(4, "big") + b"\xff\x05\x01\x00\x00"
    raw = with_attributes(raw, bytes([26, 2 + len(vsa)]) + vsa)
    with caplog.at_level(logging.WARNING, logger="aaa.radius"):
        h.send(raw)
    assert h.handler.requests == [] and h.replies == []
    assert dropped("auth", "undecodable") == before + 1
    assert not any(r.exc_info for r in caplog.records)


def test_unencodable_accept_attribute_turns_into_reject() -> None:
    """An Accept with an attribute the dictionary cannot encode fails closed as a Reject."""
    h = make_harness()
    req, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.ACCEPT, attributes=[
        ("Session-Timeout", "not a number"), ("Idle-Timeout", 60)]))
    (data,) = h.replies
    reply = decode_reply(req, data)
    assert reply.code == P.AccessReject and req.VerifyReply(reply, data)
    assert reply["Reply-Message"] == ["Service configuration error"]
    assert "Idle-Timeout" not in reply


def test_unencodable_reject_attribute_is_skipped() -> None:
    """A Reject keeps its reason when an extra attribute cannot be encoded; that one is dropped."""
    h = make_harness()
    req, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.WRONG_PASSWORD, attributes=[("No-Such-Attribute", 1)]))
    (data,) = h.replies
    reply = decode_reply(req, data)
    assert reply.code == P.AccessReject and req.VerifyReply(reply, data)
    assert reply["Reply-Message"] == ["Wrong password"]


# -- Accounting-Request and Status-Server -------------------------------------------------


def test_accounting_request_with_wrong_secret_is_dropped() -> None:
    """An Accounting-Request whose Request Authenticator does not verify is dropped."""
    h = make_harness(kind="acct", handler=RecordingHandler(Decision(Outcome.ACCOUNTING_STORED)))
    before = dropped("acct", "bad-authenticator")
    _, raw = accounting_request(secret=b"wrong-secret")
    h.send(raw)
    assert h.handler.requests == [] and h.replies == []
    assert dropped("acct", "bad-authenticator") == before + 1


def test_accounting_request_with_right_secret_is_answered() -> None:
    """A correctly signed Accounting-Request gets an Accounting-Response that pyrad verifies."""
    h = make_harness(kind="acct", handler=RecordingHandler(Decision(Outcome.ACCOUNTING_STORED)))
    req, raw = accounting_request(proxy_states=(b"ps",))
    h.send(raw)
    assert len(h.handler.requests) == 1
    assert h.handler.requests[0][1]["Acct-Session-Id"] == ["sess-1"]
    (data,) = h.replies
    reply = decode_reply(req, data)
    assert reply.code == P.AccountingResponse
    assert req.VerifyReply(reply, data)
    assert attribute_values(data, PROXY_STATE) == [b"ps"]


def test_accounting_request_with_message_authenticator_is_checked() -> None:
    """Accounting-Request: a valid Message-Authenticator passes, a corrupted one is dropped."""
    h = make_harness(kind="acct", handler=RecordingHandler(Decision(Outcome.ACCOUNTING_STORED)))
    req, raw = accounting_request(ma=True)
    h.send(raw)
    assert len(h.handler.requests) == 1
    assert req.VerifyReply(decode_reply(req, h.replies[0]), h.replies[0])
    # Corrupt the Message-Authenticator but re-sign the Request Authenticator, so only it fails.
    pkt, _ = accounting_request(ma=False, session="sess-2")
    pkt[80] = [b"\x55" * 16]
    bad = pkt.RequestPacket()
    before = dropped("acct", "bad-message-authenticator")
    h.send(bad)
    assert len(h.handler.requests) == 1 and len(h.replies) == 1
    assert dropped("acct", "bad-message-authenticator") == before + 1


def test_accounting_failure_sends_nothing_and_retransmission_is_retried() -> None:
    """Outcome.FAILED on accounting: no reply, so the NAS's resend is processed again."""
    h = make_harness(kind="acct")
    req, raw = accounting_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.FAILED, detail="db down"))
    assert h.replies == []
    h.send(raw)
    assert len(h.handler.requests) == 2
    h.handler.answer(Decision(Outcome.ACCOUNTING_STORED))
    assert req.VerifyReply(decode_reply(req, h.replies[0]), h.replies[0])


@pytest.mark.parametrize(("kind", "reply_code"), [("auth", P.AccessAccept),
                                                  ("acct", P.AccountingResponse)])
def test_status_server_is_answered_without_the_handler(kind: str, reply_code: int) -> None:
    """Status-Server with Message-Authenticator: Accept on auth, Accounting-Response on acct."""
    h = make_harness(kind=kind)
    req, raw = status_server(kind)
    h.send(raw)
    assert h.handler.requests == []
    (data,) = h.replies
    reply = decode_reply(req, data)
    assert reply.code == reply_code
    assert req.VerifyReply(reply, data, enforce_ma=True)
    assert reply_ma_ok(data, req.authenticator)


@pytest.mark.parametrize("kind", ["auth", "acct"])
def test_status_server_without_message_authenticator_is_dropped(kind: str) -> None:
    """RFC 5997: a Status-Server without Message-Authenticator is dropped silently."""
    h = make_harness(kind=kind)
    before = dropped(kind, "missing-message-authenticator")
    _, raw = status_server(kind, ma=False)
    h.send(raw)
    assert h.replies == [] and h.handler.requests == []
    assert dropped(kind, "missing-message-authenticator") == before + 1


@pytest.mark.parametrize("kind", ["auth", "acct"])
def test_status_server_with_wrong_secret_is_dropped(kind: str) -> None:
    """A Status-Server signed with another secret gets no answer (no oracle for scanners)."""
    h = make_harness(kind=kind)
    _, raw = status_server(kind, secret=b"guess")
    h.send(raw)
    assert h.replies == []


# -- unknown clients ------------------------------------------------------------------------


def test_unknown_client_is_dropped_counted_and_logged_once_per_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    """Unknown sources: every datagram counted, one log line per address per interval."""
    seen: list[str] = []
    h = make_harness(unknown_interval=60.0, on_unknown_client=seen.append)
    before = dropped("auth", "unknown-client")
    _, raw = access_request()

    def unknown_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "unknown client" in r.getMessage()]

    with caplog.at_level(logging.WARNING, logger="aaa.radius"):
        for _ in range(3):
            h.send(raw, ("198.51.100.1", 1812))
        h.send(raw, ("198.51.100.2", 1812))
        assert len(unknown_lines()) == 2
        h.clock.advance(59)
        h.send(raw, ("198.51.100.1", 1812))
        assert len(unknown_lines()) == 2
        h.clock.advance(1)
        h.send(raw, ("198.51.100.1", 1812))
        assert len(unknown_lines()) == 3
    assert "198.51.100.1" in unknown_lines()[0]
    assert dropped("auth", "unknown-client") == before + 6
    assert seen == ["198.51.100.1"] * 3 + ["198.51.100.2"] + ["198.51.100.1"] * 2
    assert h.handler.requests == [] and h.replies == []


def test_unknown_client_log_is_bounded() -> None:
    """UnknownClientLog forgets the oldest address instead of growing without limit."""
    clock = task.Clock()
    log = UnknownClientLog(clock, interval=60.0, max_entries=10)
    assert all(log.should_log(f"10.0.0.{i}") for i in range(50))
    assert len(log) == 10
    assert not log.should_log("10.0.0.49")  # recent ones are still remembered
    assert log.should_log("10.0.0.0")  # the oldest was forgotten


def test_ipv6_client_is_served() -> None:
    """A NAS on IPv6 (exact address) is matched and answered on its address."""
    h = make_harness(clients=[nas_client("2001:db8::10")])
    req, raw = access_request()
    h.send(raw, ("2001:db8::10", 5000))
    h.handler.answer(Decision(Outcome.ACCEPT))
    data, addr = h.transport.written[0]
    assert addr == ("2001:db8::10", 5000)
    assert req.VerifyReply(decode_reply(req, data), data)


# -- failures and overload ---------------------------------------------------------------------


def test_failed_outcome_sends_nothing_and_retransmission_is_processed_again() -> None:
    """Outcome.FAILED: no reply, the request is forgotten, the NAS's resend is handled anew."""
    h = make_harness()
    before = dropped("auth", "no-reply")
    req, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.FAILED, detail="database down"))
    assert h.replies == []
    assert dropped("auth", "no-reply") == before + 1
    h.send(raw)
    assert len(h.handler.requests) == 2
    h.handler.answer(Decision(Outcome.ACCEPT))
    assert req.VerifyReply(decode_reply(req, h.replies[0]), h.replies[0])


def test_handler_exception_is_treated_as_failure(caplog: pytest.LogCaptureFixture) -> None:
    """A handler error sends no reply, is logged, and the retransmission is processed again."""
    h = make_harness()
    _, raw = access_request()
    h.send(raw)
    with caplog.at_level(logging.ERROR, logger="aaa.radius"):
        h.handler.pending.pop().errback(RuntimeError("boom"))
    assert h.replies == [] and h.proto.in_flight == 0
    assert any("boom" in r.getMessage() for r in caplog.records)
    h.send(raw)
    assert len(h.handler.requests) == 2


def test_handler_returning_garbage_does_not_wedge_the_request() -> None:
    """A handler that returns no Decision costs one reply, not 30 s of ignored resends."""
    h = make_harness()
    req, raw = access_request()
    h.send(raw)
    h.handler.pending.pop().callback(None)  # type: ignore[arg-type]
    assert h.replies == [] and h.proto.in_flight == 0
    h.send(raw)
    assert len(h.handler.requests) == 2
    h.handler.answer(Decision(Outcome.ACCEPT))
    assert req.VerifyReply(decode_reply(req, h.replies[0]), h.replies[0])


def test_max_in_flight_drops_new_requests_until_one_finishes() -> None:
    """Beyond max_in_flight new requests are dropped (counted); capacity comes back on reply."""
    h = make_harness(max_in_flight=2)
    before = dropped("auth", "overload")
    packets = [access_request(ident=i) for i in range(4)]
    for _, raw in packets[:3]:
        h.send(raw)
    assert len(h.handler.requests) == 2 and h.proto.in_flight == 2
    assert dropped("auth", "overload") == before + 1
    h.handler.answer(Decision(Outcome.ACCEPT))
    assert h.proto.in_flight == 1
    h.send(packets[2][1])  # the NAS resends the dropped one: now it is processed
    assert len(h.handler.requests) == 3
    h.send(packets[3][1])
    assert len(h.handler.requests) == 3
    assert dropped("auth", "overload") == before + 2
    while h.handler.pending:
        h.handler.answer(Decision(Outcome.ACCEPT))
    assert h.proto.in_flight == 0 and len(h.replies) == 3


def test_in_flight_gauge_follows_requests() -> None:
    """The in-flight gauge rises with dispatched requests and falls with replies."""
    h = make_harness()
    base = counter("radbill_radius_in_flight", port="auth")
    h.send(access_request(ident=1)[1])
    h.send(access_request(ident=2)[1])
    assert counter("radbill_radius_in_flight", port="auth") == base + 2
    h.handler.answer(Decision(Outcome.ACCEPT))
    h.handler.answer(Decision(Outcome.FAILED))
    assert counter("radbill_radius_in_flight", port="auth") == base
