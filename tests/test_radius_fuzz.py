"""Hostile input for the RADIUS listener: fuzzing, weird-but-decodable credentials, a flood.

Three kinds of input go into RadiusServerProtocol.datagramReceived:
arbitrary bytes; valid Access-Requests with flipped, cut or extended octets;
and random attribute lists (VSAs with bad lengths included) that are signed
correctly, so they pass the Message-Authenticator check and reach pyrad and
the handler. Nothing may end in an internal error (the listener's
catch-all logs those at ERROR with a traceback), the duplicate cache and the
in-flight count stay bounded, and a valid request is still answered
correctly afterwards. The real AccessHandler (with an in-memory credential
store and a synchronous argon2 verifier) must turn every decodable oddity
into an Access-Reject with a sensible Reply-Message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad import packet as P
from twisted.internet import defer

from aaa.access import AccessHandler
from aaa.authenticate import Authenticator
from aaa.chap import chap_response
from aaa.credentials import PlanService, SubscriberAuth
from aaa.mschap import generate_nt_response, mppe_keys, nt_password_hash
from aaa.outcome import ACCESS_REPLIES, Decision, Outcome
from aaa.pap import verify_password
from aaa.wire import FIXED_LENGTHS
from core.db.models import SubscriberStatus, Vendor
from tests.test_radius_protocol import (
    DICT,
    NAS_ADDR,
    SECRET,
    Harness,
    RecordingHandler,
    access_request,
    counter,
    decode_reply,
    make_harness,
    nas_client,
    reply_ma_ok,
)

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DEDUPE_MAX = 64
MAX_IN_FLIGHT = 16
MICROSOFT = 311


# -- building signed packets by hand ------------------------------------------------------


def attr(code: int, value: bytes) -> bytes:
    return bytes([code, 2 + len(value)]) + value


def vsa(vendor: int, sub_code: int, value: bytes) -> bytes:
    return attr(26, struct.pack("!L", vendor) + attr(sub_code, value))


def sign_access(attrs: bytes, *, code: int = P.AccessRequest, ident: int = 1,
                secret: bytes = SECRET, authenticator: bytes | None = None) -> bytes:
    """An Access-Request/Status-Server with a correct Message-Authenticator put first.

    Built without pyrad so that attribute octets pyrad would refuse to
    encode (bad VSA lengths, odd sizes) can still be signed.
    """
    authenticator = authenticator or os.urandom(16)
    body = attr(80, b"\x00" * 16) + attrs
    header = struct.pack("!BBH", code, ident & 0xFF, 20 + len(body) & 0xFFFF)
    mac = hmac.new(secret, header + authenticator + body, hashlib.md5).digest()
    return header + authenticator + body[:2] + mac + body[18:]


def sign_accounting(attrs: bytes, *, ident: int = 1, secret: bytes = SECRET) -> bytes:
    """An Accounting-Request with a correct Request Authenticator (RFC 2866 section 3)."""
    header = struct.pack("!BBH", P.AccountingRequest, ident & 0xFF, 20 + len(attrs) & 0xFFFF)
    auth = hashlib.md5(header + b"\x00" * 16 + attrs + secret).digest()  # noqa: S324
    return header + auth + attrs


# -- watching for internal errors ------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_errors_logged() -> Iterator[list[logging.LogRecord]]:
    """Fail if anything under aaa logs at ERROR: that is how internal errors surface."""
    collector = _Collect()
    logger = logging.getLogger("aaa")
    logger.addHandler(collector)
    try:
        yield collector.records
    finally:
        logger.removeHandler(collector)
    details = [f"{r.getMessage()} {r.exc_info!r}" for r in collector.records]
    assert details == []


def check_bounded(h: Harness, dedupe_max: int = DEDUPE_MAX) -> None:
    assert len(h.dedupe) <= dedupe_max
    assert 0 <= h.proto.in_flight <= MAX_IN_FLIGHT
    assert h.proto.in_flight == len(h.handler.pending)


def check_still_serving(h: Harness) -> None:
    """After whatever came before, a fresh valid Access-Request is answered correctly."""
    while h.handler.pending:
        h.handler.answer(Decision(Outcome.ACCEPT))
    assert h.proto.in_flight == 0
    req, raw = access_request(ident=77)
    sent = len(h.replies)
    h.send(raw)
    h.handler.answer(Decision(Outcome.ACCEPT, attributes=[("Session-Timeout", 60)]))
    assert len(h.replies) == sent + 1
    data = h.replies[-1]
    reply = decode_reply(req, data)
    assert reply.code == P.AccessAccept and req.VerifyReply(reply, data)
    assert reply_ma_ok(data, req.authenticator)
    assert reply["Session-Timeout"] == [60]


def fuzz_harness(kind: str = "auth") -> Harness:
    return make_harness(kind=kind, dedupe_max=DEDUPE_MAX, max_in_flight=MAX_IN_FLIGHT)


# -- strategies ------------------------------------------------------------------------------

Mutation = tuple[str, int, int]

mutations = st.lists(st.tuples(st.sampled_from(["flip", "truncate", "extend", "length", "insert"]),
                               st.integers(0, 5000), st.integers(0, 255)), min_size=1, max_size=4)


def mutate(raw: bytes, steps: list[Mutation], extra: bytes) -> bytes:
    data = bytearray(raw)
    for op, pos, value in steps:
        if op == "flip" and data:
            data[pos % len(data)] ^= value or 1
        elif op == "truncate":
            del data[pos % (len(data) + 1):]
        elif op == "extend":
            data += extra[: value % (len(extra) + 1)]
        elif op == "length" and len(data) >= 4:
            data[2:4] = struct.pack("!H", pos if value & 1 else len(data) + value - 128 & 0xFFFF)
        elif op == "insert":
            at = pos % (len(data) + 1)
            data[at:at] = bytes([value, pos & 0xFF])
    return bytes(data)


@st.composite
def pyrad_requests(draw: st.DrawFn) -> bytes:
    """Valid Access-Requests as pyrad builds them, with varied content."""
    pkt = P.AuthPacket(code=P.AccessRequest, id=draw(st.integers(0, 255)), secret=SECRET,
                       dict=DICT, authenticator=draw(st.binary(min_size=16, max_size=16)))
    pkt[1] = [draw(st.binary(min_size=1, max_size=64))]
    if draw(st.booleans()):
        pkt["User-Password"] = pkt.PwCrypt(draw(st.binary(max_size=128)))
    for state in draw(st.lists(st.binary(min_size=1, max_size=40), max_size=3)):
        pkt.AddAttribute("Proxy-State", state)
    if draw(st.booleans()):
        pkt["Cisco-AVPair"] = draw(st.text(min_size=1, max_size=60))
    if draw(st.booleans()):
        pkt.add_message_authenticator()
    return pkt.RequestPacket()  # type: ignore[no-any-return]


INTERESTING_CODES = [1, 2, 3, 4, 5, 18, 24, 25, 26, 31, 33, 40, 44, 60, 61, 79, 80, 87, 255]
# Credential attributes at the sizes that reach the crypto code, so its paths get exercised.
CREDENTIALS = [(2, 16), (2, 32), (3, 17), (60, 16), (79, 5), ((MICROSOFT, 11), 16),
               ((MICROSOFT, 25), 50), ((MICROSOFT, 1), 50)]


@st.composite
def attribute_lists(draw: st.DrawFn, broken: bool = True) -> bytes:
    """Random attributes; with ``broken`` also VSAs with bad inner lengths and bad lengths."""
    kinds = ["plain", "plain", "vsa", "ms", "credential", "credential"]
    if broken:
        kinds += ["vsa-raw", "bad-length"]
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(kinds))
        if kind == "plain":
            code = draw(st.sampled_from(INTERESTING_CODES) | st.integers(0, 255))
            if code in FIXED_LENGTHS and draw(st.booleans()):
                value = draw(st.binary(min_size=FIXED_LENGTHS[code],
                                       max_size=FIXED_LENGTHS[code]))
            else:
                value = draw(st.binary(min_size=1, max_size=60))
            parts.append(attr(code, value))
        elif kind == "vsa":
            vendor = draw(st.sampled_from([9, 311, 3561, 4874, 14988, 10055, 0, 0xFFFFFFFF]))
            parts.append(vsa(vendor, draw(st.integers(0, 255)),
                             draw(st.binary(min_size=0 if broken else 1, max_size=50))))
        elif kind == "ms":
            sub = draw(st.sampled_from([1, 11, 25, 16, 17]))
            parts.append(vsa(MICROSOFT, sub, draw(st.binary(min_size=1, max_size=60))))
        elif kind == "credential":
            key, size = draw(st.sampled_from(CREDENTIALS))
            value = draw(st.binary(min_size=size, max_size=size))
            parts.append(vsa(key[0], key[1], value) if isinstance(key, tuple)
                         else attr(key, value))
        elif kind == "vsa-raw":
            # Vendor-Id plus raw octets: sub-attribute lengths 0, 1 or overrunning.
            parts.append(attr(26, draw(st.binary(min_size=0, max_size=60))))
        else:
            code = draw(st.integers(0, 255))
            value = draw(st.binary(max_size=30))
            parts.append(bytes([code, draw(st.integers(0, 255))]) + value)
    return b"".join(parts)


# -- fuzz properties ----------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=700), st.sampled_from(["auth", "acct"]))
def test_arbitrary_bytes_never_raise(data: bytes, kind: str) -> None:
    """Arbitrary datagrams from a known client are dropped or handled, never an internal error."""
    h = fuzz_harness(kind)
    with no_errors_logged():
        h.send(data)
        h.send(data)  # and its retransmission
        check_bounded(h)
    if kind == "auth":
        check_still_serving(h)


@FUZZ
@given(pyrad_requests(), mutations, st.binary(max_size=300))
def test_mutated_access_requests_never_raise(raw: bytes, steps: list[Mutation],
                                             extra: bytes) -> None:
    """Valid Access-Requests with flipped, cut, extended or re-lengthed octets are handled."""
    h = fuzz_harness()
    with no_errors_logged():
        h.send(raw)
        h.send(mutate(raw, steps, extra))
        check_bounded(h)
        check_still_serving(h)


@FUZZ
@given(attribute_lists() | attribute_lists(broken=False),
       st.sampled_from([P.AccessRequest, P.StatusServer, 0]),
       st.integers(0, 255))
def test_signed_random_attributes_never_raise(attrs: bytes, code: int, ident: int) -> None:
    """Signed packets with random attributes reach pyrad and the handler without internal errors."""
    h = fuzz_harness("auth" if code else "acct")
    raw = sign_access(attrs, code=code, ident=ident) if code else sign_accounting(attrs,
                                                                                  ident=ident)
    with no_errors_logged():
        h.send(raw)
        check_bounded(h)
        for _, pkt in list(h.handler.requests):
            # Whatever the handler reads by name must not take the server down either.
            for name in pkt.keys():
                try:
                    pkt.get(name)
                except Exception:  # noqa: S110 - decoding by name may fail; the listener must not
                    pass
        while h.handler.pending:
            h.handler.answer(Decision(Outcome.ACCEPT if code else Outcome.ACCOUNTING_STORED))
        check_bounded(h)
    if code:
        check_still_serving(h)


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=100), pyrad_requests()), min_size=1,
                max_size=60), st.randoms(use_true_random=False))
def test_streams_keep_counters_bounded(datagrams: list[bytes], rnd: random.Random) -> None:
    """A stream of garbage and requests, answered in random order, keeps every counter bounded."""
    h = make_harness(dedupe_max=4, max_in_flight=MAX_IN_FLIGHT)
    with no_errors_logged():
        for data in datagrams:
            h.send(data, (NAS_ADDR[0], rnd.choice([1000, 1001])))
            check_bounded(h, dedupe_max=4)
            if h.handler.pending and rnd.random() < 0.5:
                outcome = rnd.choice([Outcome.ACCEPT, Outcome.WRONG_PASSWORD, Outcome.FAILED])
                h.handler.answer(Decision(outcome), rnd.randrange(len(h.handler.pending)))
            h.clock.advance(rnd.choice([0, 0, 0.5, 6]))
        check_still_serving(h)


# -- the real AccessHandler ---------------------------------------------------------------------

PASSWORD = "correct horse"
CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
NT_HASH = nt_password_hash(PASSWORD)
SUBSCRIBER = SubscriberAuth(
    id=1, login="alice", status=SubscriberStatus.ACTIVE, password_hash=CHEAP_HASH,
    nt_hash=NT_HASH, chap_enabled=True, cleartext=PASSWORD.encode(), static_ip=None,
    plan=PlanService(id=1, name="home", rate_limit="10M/20M", session_timeout=3600,
                     idle_timeout=None, interim_interval=300, simultaneous_use=None,
                     framed_protocol="PPP", extra_reply=()))


class FixedCredentials:
    """A credential store with one subscriber; everyone else is unknown."""

    def __init__(self, sub: SubscriberAuth = SUBSCRIBER) -> None:
        self.sub = sub
        self.asked: list[str] = []

    def get(self, login: str) -> defer.Deferred[SubscriberAuth | None]:
        self.asked.append(login)
        return defer.succeed(self.sub if login == self.sub.login else None)


class SyncVerifier:
    """The real argon2 check, run inline: the protocol tests have no thread pool."""

    def tag(self, sub: object, credential: str, password: bytes) -> bytes:
        return b""

    def known(self, sub: object, credential: str, password: bytes, tag: object = None) -> bool:
        return False

    def known_wrong(self, sub: object, credential: str, password: bytes,
                    tag: object = None) -> bool:
        return False

    def slow(self, sub: object, credential: str, password: bytes, check: object,
             priority: object = None, tag: object = None) -> defer.Deferred[bool]:
        return defer.succeed(verify_password(credential, password))


def access_harness(vendor: Vendor = Vendor.MIKROTIK) -> Harness:
    handler = AccessHandler(FixedCredentials(), Authenticator(SyncVerifier()))  # type: ignore[arg-type]
    return make_harness(clients=[nas_client(vendor=vendor)], handler=handler,  # type: ignore[arg-type]
                        dedupe_max=DEDUPE_MAX, max_in_flight=MAX_IN_FLIGHT)


def ask(h: Harness, attrs: bytes) -> tuple[P.Packet, bytes]:
    """Send a signed Access-Request with these attributes; return the decoded reply and bytes."""
    authenticator = os.urandom(16)
    raw = sign_access(attrs, authenticator=authenticator)
    request = P.AuthPacket(packet=raw, secret=SECRET, dict=DICT)
    before = len(h.replies)
    h.send(raw)
    assert len(h.replies) == before + 1, "no reply"
    data = h.replies[-1]
    reply = decode_reply(request, data)
    assert request.VerifyReply(reply, data)
    assert reply_ma_ok(data, authenticator)
    return reply, data


def user_password(password: bytes, authenticator: bytes, size: int | None = None) -> bytes:
    """RFC 2865 5.2 hiding, or just ``size`` random octets when a bad length is wanted."""
    if size is not None:
        return os.urandom(size)
    pkt = P.AuthPacket(secret=SECRET, authenticator=authenticator, dict=DICT)
    return pkt.PwCrypt(password)  # type: ignore[no-any-return]


def reject_message(outcome: Outcome) -> str:
    message = ACCESS_REPLIES[outcome].message
    assert message
    return message


USER = attr(1, b"alice")
CHALLENGE16 = bytes(range(16))

WEIRD_CASES: dict[str, tuple[Callable[[], bytes], Outcome]] = {
    "user-name-invalid-utf8": (lambda: attr(1, b"\xff\xfealice") + attr(2, os.urandom(16)),
                               Outcome.UNKNOWN_LOGIN),
    "user-password-17-octets": (lambda: USER + attr(2, os.urandom(17)),
                                Outcome.MALFORMED_CREDENTIALS),
    "user-password-144-octets": (lambda: USER + attr(2, os.urandom(144)),
                                 Outcome.MALFORMED_CREDENTIALS),
    "ms-chap2-response-49-octets": (lambda: USER + vsa(MICROSOFT, 11, CHALLENGE16)
                                    + vsa(MICROSOFT, 25, os.urandom(49)),
                                    Outcome.MALFORMED_CREDENTIALS),
    "ms-chap2-response-51-octets": (lambda: USER + vsa(MICROSOFT, 11, CHALLENGE16)
                                    + vsa(MICROSOFT, 25, os.urandom(51)),
                                    Outcome.MALFORMED_CREDENTIALS),
    "ms-chap2-without-challenge": (lambda: USER + vsa(MICROSOFT, 25, os.urandom(50)),
                                   Outcome.MALFORMED_CREDENTIALS),
    "ms-chap-challenge-8-octets": (lambda: USER + vsa(MICROSOFT, 11, CHALLENGE16[:8])
                                   + vsa(MICROSOFT, 25, os.urandom(50)),
                                   Outcome.MALFORMED_CREDENTIALS),
    "chap-password-16-octets": (lambda: USER + attr(3, os.urandom(16)),
                                Outcome.MALFORMED_CREDENTIALS),
    "chap-password-18-octets": (lambda: USER + attr(3, os.urandom(18)),
                                Outcome.MALFORMED_CREDENTIALS),
    "chap-challenge-3-octets": (lambda: USER + attr(3, os.urandom(17)) + attr(60, b"abc"),
                                Outcome.MALFORMED_CREDENTIALS),
    "eap-message": (lambda: USER + attr(79, b"\x02\x01\x00\x0a\x01alice"),
                    Outcome.UNSUPPORTED_METHOD),
    "eap-peap": (lambda: USER + attr(79, b"\x02\x02\x00\x06\x19\x00"),
                 Outcome.UNSUPPORTED_METHOD),
    "eap-garbage": (lambda: USER + attr(79, b"\xff"), Outcome.UNSUPPORTED_METHOD),
    "ms-chap-v1-wrong": (lambda: USER + vsa(MICROSOFT, 11, CHALLENGE16[:8])
                         + vsa(MICROSOFT, 1, b"\x01\x01" + os.urandom(48)),
                         Outcome.WRONG_PASSWORD),
    "ms-chap-v1-lm-only": (lambda: USER + vsa(MICROSOFT, 11, CHALLENGE16[:8])
                           + vsa(MICROSOFT, 1, b"\x01\x00" + os.urandom(48)),
                           Outcome.UNSUPPORTED_METHOD),
    "ms-chap-v1-challenge-16-octets": (lambda: USER + vsa(MICROSOFT, 11, CHALLENGE16)
                                       + vsa(MICROSOFT, 1, b"\x01\x01" + os.urandom(48)),
                                       Outcome.MALFORMED_CREDENTIALS),
    "ms-chap-v1-response-49-octets": (lambda: USER + vsa(MICROSOFT, 11, CHALLENGE16[:8])
                                      + vsa(MICROSOFT, 1, os.urandom(49)),
                                      Outcome.MALFORMED_CREDENTIALS),
    "no-password": (lambda: USER + attr(4, b"\xc0\x00\x02\x0a"), Outcome.NO_CREDENTIALS),
    "no-user-name": (lambda: attr(2, os.urandom(16)), Outcome.NO_CREDENTIALS),
    "unknown-login": (lambda: attr(1, b"mallory") + attr(2, os.urandom(16)),
                      Outcome.UNKNOWN_LOGIN),
    "user-name-with-nul": (lambda: attr(1, b"alice\x00") + attr(2, os.urandom(16)),
                           Outcome.UNKNOWN_LOGIN),
}


@pytest.mark.parametrize("case", sorted(WEIRD_CASES))
def test_weird_but_decodable_requests_are_rejected_sensibly(case: str) -> None:
    """Each odd-but-decodable request gets an Access-Reject with the outcome's Reply-Message."""
    build, outcome = WEIRD_CASES[case]
    h = access_harness()
    with no_errors_logged():
        reply, _ = ask(h, build())
    assert reply.code == P.AccessReject
    assert reply["Reply-Message"] == [reject_message(outcome)]
    assert "Mikrotik-Rate-Limit" not in reply


@pytest.mark.parametrize("password", [b"wrong", b"\xff\xfe\xfd", b"correct horse\x00x",
                                      b"x" * 128])
def test_pap_wrong_or_non_utf8_password_is_rejected(password: bytes) -> None:
    """A wrong PAP password (even invalid UTF-8 or 128 octets) is a 'Wrong password' reject."""
    h = access_harness()
    auth = os.urandom(16)
    raw = sign_access(USER + attr(2, user_password(password, auth)), authenticator=auth)
    request = P.AuthPacket(packet=raw, secret=SECRET, dict=DICT)
    with no_errors_logged():
        h.send(raw)
    reply = decode_reply(request, h.replies[-1])
    assert reply.code == P.AccessReject
    assert reply["Reply-Message"] == [reject_message(Outcome.WRONG_PASSWORD)]


def test_pap_right_password_is_accepted_with_plan_attributes() -> None:
    """The right PAP password through the real handler yields an Accept with the plan's limits."""
    h = access_harness(Vendor.MIKROTIK)
    auth = os.urandom(16)
    raw = sign_access(USER + attr(2, user_password(PASSWORD.encode(), auth)),
                      authenticator=auth)
    request = P.AuthPacket(packet=raw, secret=SECRET, dict=DICT)
    with no_errors_logged():
        h.send(raw)
    data = h.replies[-1]
    reply = decode_reply(request, data)
    assert reply.code == P.AccessAccept and request.VerifyReply(reply, data)
    assert reply["Mikrotik-Rate-Limit"] == ["10M/20M"]
    assert reply["Session-Timeout"] == [3600] and reply["Acct-Interim-Interval"] == [300]


def test_chap_right_password_is_accepted() -> None:
    """A correct CHAP-Password through the real handler yields an Accept."""
    h = access_harness()
    challenge = os.urandom(16)
    chap = bytes([7]) + chap_response(7, PASSWORD.encode(), challenge)
    with no_errors_logged():
        reply, _ = ask(h, USER + attr(3, chap) + attr(60, challenge))
    assert reply.code == P.AccessAccept


def test_mschapv2_right_password_is_accepted_with_mppe_keys() -> None:
    """A correct MS-CHAPv2 response yields an Accept with MS-CHAP2-Success and MPPE keys."""
    h = access_harness()
    peer = os.urandom(16)
    nt_response = generate_nt_response(CHALLENGE16, peer, b"alice", NT_HASH)
    response = bytes([5, 0]) + peer + b"\x00" * 8 + nt_response
    with no_errors_logged():
        reply, _ = ask(h, USER + vsa(MICROSOFT, 11, CHALLENGE16) + vsa(MICROSOFT, 25, response))
    assert reply.code == P.AccessAccept
    (success,) = reply["MS-CHAP2-Success"]
    assert success[:3] == b"\x05S=" and len(success) == 43
    send_key, recv_key = mppe_keys(NT_HASH, nt_response)
    assert reply["MS-MPPE-Send-Key"] == [send_key]
    assert reply["MS-MPPE-Recv-Key"] == [recv_key]


@FUZZ
@given(attribute_lists(broken=False),
       st.sampled_from([b"alice", b"alice", b"mallory", b"\xff", b"alice\x00"]))
def test_real_handler_turns_random_attributes_into_accept_or_reject(attrs: bytes,
                                                                    user: bytes) -> None:
    """Random signed attributes through the real AccessHandler: a verified reply or a drop."""
    h = access_harness()
    failed = counter("radbill_radius_outcomes_total", port="auth", outcome="failed")
    authenticator = os.urandom(16)
    raw = sign_access(attr(1, user) + attrs, authenticator=authenticator)
    with no_errors_logged():
        h.send(raw)
    assert counter("radbill_radius_outcomes_total", port="auth", outcome="failed") == failed
    assert h.proto.in_flight == 0
    if h.replies:
        (data,) = h.replies
        assert data[0] in (P.AccessAccept, P.AccessReject)
        assert reply_ma_ok(data, authenticator)
        request = P.AuthPacket(packet=raw, secret=SECRET, dict=DICT)
        assert request.VerifyReply(decode_reply(request, data), data)


# -- a flood -------------------------------------------------------------------------------------


def test_flood_of_mixed_datagrams_keeps_memory_bounded() -> None:
    """20,000 garbage/unknown-client/valid datagrams: caches stay within their limits."""
    rnd = random.Random(20_000)
    unknown_max = 500
    handler = RecordingHandler()
    h = make_harness(handler=handler, dedupe_max=DEDUPE_MAX, max_in_flight=MAX_IN_FLIGHT,
                     unknown_max=unknown_max)
    template = USER + attr(4, b"\xc0\x00\x02\x0a")
    answered = 0
    with no_errors_logged():
        for i in range(20_000):
            roll = i % 4
            if roll == 0:  # garbage from the known NAS
                h.send(rnd.randbytes(rnd.randrange(0, 200)), (NAS_ADDR[0], rnd.randrange(1, 65536)))
            elif roll == 1:  # a valid request from an ever new unknown address
                h.send(sign_access(template, ident=i), (f"198.18.{i >> 8 & 255}.{i & 255}", 1812))
            else:  # valid, distinct requests from the NAS, some left in flight for a while
                h.send(sign_access(template, ident=i), (NAS_ADDR[0], 2000 + i % 50))
                if handler.pending and rnd.random() < 0.9:
                    handler.answer(Decision(rnd.choice([Outcome.ACCEPT, Outcome.FAILED])),
                                   rnd.randrange(len(handler.pending)))
            if i % 100 == 0:
                h.clock.advance(1)
                answered += len(h.transport.written)
                h.transport.written.clear()
            assert len(h.dedupe) <= DEDUPE_MAX
            assert len(h.unknown) <= unknown_max
            assert h.proto.in_flight <= MAX_IN_FLIGHT
        while handler.pending:
            handler.answer(Decision(Outcome.ACCEPT))
    assert h.proto.in_flight == 0
    assert len(h.unknown) == unknown_max  # 5,000 distinct unknown sources were seen
    assert answered > 1000  # the flood did not stop the NAS from being served
    check_still_serving(h)
