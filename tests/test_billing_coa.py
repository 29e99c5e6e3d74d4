"""aaa.coa: RFC 5176 encoding, reply checks, retries with backoff, on a Clock and fake transport."""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

import pytest
from pyrad import packet as P
from twisted.internet import defer
from twisted.internet.task import Clock

from aaa.clients import NasClient
from aaa.coa import (
    CoaClientProtocol,
    CoaDisconnector,
    encode_request,
    error_cause,
    identity_attributes,
    iter_attributes,
    verify_reply,
)
from aaa.dictionary import load_dictionary
from billing.cutoff import CutAction, CutOutcome, LiveSession
from core.db.models import Vendor

SECRET = b"coa-secret"
DICT = load_dictionary()
LIVE = LiveSession(subscriber_id=1, user_name="alice", nas_id=7, acct_session_id="81000001",
                   framed_ip="10.0.0.5", source_id="u1", nas_ip="192.0.2.1")


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))


def reply(request: bytes, code: int, attrs: bytes = b"", secret: bytes = SECRET,
          with_ma: bool = False) -> bytes:
    """A NAS's answer, signed as RFC 5176 section 3.3 says (optionally with a MA)."""
    if with_ma:
        attrs = bytes([80, 18]) + b"\x00" * 16 + attrs
    header = struct.pack("!BBH", code, request[1], 20 + len(attrs))
    if with_ma:
        mac = hmac.new(secret, header + request[4:20] + attrs, hashlib.md5).digest()
        attrs = bytes([80, 18]) + mac + attrs[18:]
    auth = hashlib.md5(header + request[4:20] + attrs + secret).digest()  # noqa: S324
    return header + auth + attrs


def check_request(data: bytes, secret: bytes = SECRET) -> None:
    """What a NAS checks: Request Authenticator and Message-Authenticator (zeroed vector)."""
    expected = hashlib.md5(data[:4] + b"\x00" * 16 + data[20:] + secret).digest()  # noqa: S324
    assert data[4:20] == expected
    attrs = iter_attributes(data)
    assert attrs[0][0] == 80
    zeroed = data[:4] + b"\x00" * 16 + data[20:22] + b"\x00" * 16 + data[38:]
    assert hmac.new(secret, zeroed, hashlib.md5).digest() == attrs[0][1]


def test_request_is_signed_per_rfc5176() -> None:
    """Request Authenticator and Message-Authenticator verify with the shared secret."""
    data = encode_request(DICT, P.DisconnectRequest, 5, SECRET,
                          [("User-Name", "alice"), ("Acct-Session-Id", "81000001")])
    assert data[0] == P.DisconnectRequest and data[1] == 5
    check_request(data)
    with pytest.raises(AssertionError):
        check_request(data, b"wrong")
    decoded = P.CoAPacket(packet=data, dict=DICT, secret=SECRET)
    assert decoded["User-Name"] == ["alice"] and decoded.VerifyCoARequest()


def test_identity_follows_vendor_profile() -> None:
    """MikroTik is named by Framed-IP-Address, Cisco by Acct-Session-Id, in profile order."""
    assert [k for k, _ in identity_attributes(Vendor.MIKROTIK, LIVE, None)] == \
        ["User-Name", "Acct-Session-Id", "Framed-IP-Address"]
    assert [k for k, _ in identity_attributes(Vendor.CISCO, LIVE, None)] == \
        ["Acct-Session-Id", "User-Name"]
    generic = identity_attributes(Vendor.GENERIC, LIVE, None)
    assert ("NAS-IP-Address", "192.0.2.1") in generic


def test_reply_verification() -> None:
    """A reply must carry the right Response Authenticator and, if present, MA."""
    req = encode_request(DICT, P.DisconnectRequest, 9, SECRET, [("User-Name", "a")])
    good = reply(req, P.DisconnectACK, with_ma=True)
    assert verify_reply(good, req[4:20], SECRET) is None
    assert "Response Authenticator" in (verify_reply(good, req[4:20], b"x") or "")
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    assert verify_reply(tampered, req[4:20], SECRET) is not None
    nak = reply(req, P.DisconnectNAK, bytes([101, 6]) + (503).to_bytes(4, "big"))
    assert error_cause(nak) == 503


def make_protocol(clock: Clock, retries: int = 2) -> tuple[CoaClientProtocol, FakeTransport]:
    proto = CoaClientProtocol(clock, timeout=1.0, retries=retries)
    transport = FakeTransport()
    proto.transport = transport  # type: ignore[assignment]
    return proto, transport


def test_retries_with_backoff_then_timeout() -> None:
    """Unanswered: resent the same bytes after 1 s, then 2 s, then TimeoutError after 4 s."""
    clock = Clock()
    proto, transport = make_protocol(clock, retries=2)
    req = encode_request(DICT, P.DisconnectRequest, 1, SECRET, [("User-Name", "a")])
    d = proto.send("127.0.0.1", 3799, 1, req, SECRET)
    failures: list[Any] = []
    d.addErrback(failures.append)
    assert len(transport.sent) == 1
    clock.advance(0.99)
    assert len(transport.sent) == 1
    clock.advance(0.02)
    assert len(transport.sent) == 2 and transport.sent[1][0] == req
    clock.advance(2.0)
    assert len(transport.sent) == 3
    assert not failures
    clock.advance(4.0)
    assert failures and failures[0].check(TimeoutError)
    assert not proto.pending


def test_ack_ends_request_and_cancels_timer() -> None:
    """An authentic ACK fires the request; the retry timer is cancelled."""
    clock = Clock()
    proto, _transport = make_protocol(clock)
    req = encode_request(DICT, P.DisconnectRequest, 3, SECRET, [("User-Name", "a")])
    results: list[Any] = []
    proto.send("127.0.0.1", 3799, 3, req, SECRET).addCallback(results.append)
    proto.datagramReceived(reply(req, P.DisconnectACK), ("127.0.0.1", 3799))
    assert results == [(P.DisconnectACK, None)]
    assert clock.getDelayedCalls() == []


@pytest.mark.parametrize("bad", ["wrong-secret", "wrong-peer", "wrong-code", "short"])
def test_forged_or_stray_replies_are_dropped(bad: str) -> None:
    """Replies with a bad authenticator, from elsewhere, of the wrong code, or short are ignored."""
    clock = Clock()
    proto, _ = make_protocol(clock)
    req = encode_request(DICT, P.DisconnectRequest, 4, SECRET, [("User-Name", "a")])
    results: list[Any] = []
    proto.send("127.0.0.1", 3799, 4, req, SECRET).addBoth(results.append)
    data, addr = reply(req, P.DisconnectACK), ("127.0.0.1", 3799)
    if bad == "wrong-secret":
        data = reply(req, P.DisconnectACK, secret=b"other")
    elif bad == "wrong-peer":
        addr = ("127.0.0.2", 3799)
    elif bad == "wrong-code":
        data = reply(req, P.CoAACK)
    else:
        data = data[:10]
    proto.datagramReceived(data, addr)
    assert results == []
    assert proto.pending


class StubPool:
    def run(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        return defer.succeed([NasClient(7, "mt", "127.0.0.1", SECRET, Vendor.MIKROTIK, False,
                                        3799)])


class StubReactor(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.proto: Any = None

    def listenUDP(self, port: int, proto: Any, interface: str = "") -> Any:
        self.proto = proto
        proto.transport = FakeTransport()

        class Port:
            def stopListening(self) -> None:
                return None
        return Port()


@pytest.mark.parametrize("code,cause,outcome", [
    (P.DisconnectACK, None, CutOutcome.ACK),
    (P.DisconnectNAK, 503, CutOutcome.GONE),
    (P.DisconnectNAK, 504, CutOutcome.NAK),
])
def test_disconnector_reads_ack_and_error_cause(code: int, cause: int | None,
                                                outcome: CutOutcome) -> None:
    """ACK, NAK 503 (session gone) and other NAKs map to the outcomes billing records."""
    reactor = StubReactor()
    coa = CoaDisconnector(StubPool(), reactor, DICT, timeout=1.0, retries=1)
    results: list[Any] = []
    coa.disconnect(LIVE).addCallback(results.append)
    sent, addr = reactor.proto.transport.sent[0]
    assert addr == ("127.0.0.1", 3799)
    check_request(sent)
    attrs = b"" if cause is None else bytes([101, 6]) + cause.to_bytes(4, "big")
    reactor.proto.datagramReceived(reply(sent, code, attrs), addr)
    assert results[0].outcome is outcome and results[0].error_cause == cause


def test_disconnector_timeout_and_throttle_coa() -> None:
    """No answer -> TIMEOUT; a throttle is a CoA-Request carrying the vendor's rate limit."""
    reactor = StubReactor()
    coa = CoaDisconnector(StubPool(), reactor, DICT, timeout=1.0, retries=0)
    results: list[Any] = []
    coa.disconnect(LIVE).addCallback(results.append)
    reactor.advance(1.5)
    assert results[0].outcome is CutOutcome.TIMEOUT
    coa.change(LIVE, CutAction.THROTTLE, "1M/2M").addCallback(results.append)
    sent, _ = reactor.proto.transport.sent[-1]
    assert sent[0] == P.CoARequest
    decoded = P.CoAPacket(packet=sent, dict=DICT, secret=SECRET)
    assert decoded["Mikrotik-Rate-Limit"] == ["1M/2M"]
