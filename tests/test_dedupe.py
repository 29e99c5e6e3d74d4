"""Duplicate detection (RFC 5080 section 2.2.2): aaa.dedupe.DuplicateCache and the listener.

Unit tests drive the cache with a task.Clock; protocol tests check what a NAS
sees when it retransmits: nothing while the first copy is in flight, the
byte-identical cached reply once it is answered, a fresh processing after the
window.
"""

from __future__ import annotations

from pyrad import packet as P
from twisted.internet import task

from aaa.dedupe import DuplicateCache, request_key
from aaa.outcome import Decision, Outcome
from tests.test_radius_protocol import (
    NAS_ADDR,
    NAS_IP,
    RecordingHandler,
    access_request,
    accounting_request,
    counter,
    decode_reply,
    make_harness,
)

KEY = ("192.0.2.1", 1645, 7, b"A" * 16)


def make_cache(**kwargs: float) -> tuple[task.Clock, DuplicateCache]:
    clock = task.Clock()
    clock.advance(1000)
    return clock, DuplicateCache(clock, **kwargs)  # type: ignore[arg-type]


# -- DuplicateCache ----------------------------------------------------------------------


def test_new_request_is_marked_in_flight() -> None:
    """A first lookup is 'not seen'; the next one is 'seen' with no reply yet."""
    _, cache = make_cache()
    assert cache.lookup(KEY) == (False, None)
    assert cache.lookup(KEY) == (True, None)
    assert len(cache) == 1


def test_answered_request_returns_cached_reply() -> None:
    """After done(key, reply) a lookup returns that reply."""
    _, cache = make_cache()
    cache.lookup(KEY)
    cache.done(KEY, b"reply-bytes")
    assert cache.lookup(KEY) == (True, b"reply-bytes")


def test_done_without_reply_forgets_the_request() -> None:
    """done(key, None) forgets the request, so the next copy is processed as new."""
    _, cache = make_cache()
    cache.lookup(KEY)
    cache.done(KEY, None)
    assert len(cache) == 0
    assert cache.lookup(KEY) == (False, None)


def test_reply_expires_after_window() -> None:
    """A cached reply is served for ``window`` seconds, then the request is new again."""
    clock, cache = make_cache(window=5.0)
    cache.lookup(KEY)
    cache.done(KEY, b"r")
    clock.advance(4.9)
    assert cache.lookup(KEY) == (True, b"r")
    clock.advance(0.1)
    assert cache.lookup(KEY) == (False, None)


def test_in_flight_mark_expires_after_max_processing() -> None:
    """A request stuck in processing stops blocking its retransmissions after max_processing."""
    clock, cache = make_cache(max_processing=30.0)
    cache.lookup(KEY)
    clock.advance(29)
    assert cache.lookup(KEY) == (True, None)
    clock.advance(1)
    assert cache.lookup(KEY) == (False, None)


def test_expired_reply_behind_a_long_in_flight_entry_is_not_served() -> None:
    """Expiry is per entry: an old reply is not served just because an older entry lingers."""
    clock, cache = make_cache(window=5.0, max_processing=30.0)
    slow = ("192.0.2.1", 1645, 1, b"S" * 16)
    cache.lookup(slow)  # in flight for up to 30 s, at the head of the cache
    clock.advance(1)
    cache.lookup(KEY)
    cache.done(KEY, b"r")
    clock.advance(6)  # KEY's window is over, slow is still in flight
    assert cache.lookup(KEY) == (False, None)
    assert cache.lookup(slow) == (True, None)


def test_expired_entries_are_swept_out() -> None:
    """Answered requests leave the cache once their window is over, not only when looked up."""
    clock, cache = make_cache(window=5.0)
    for i in range(50):
        key = ("192.0.2.1", 1645, i, bytes(16))
        cache.lookup(key)
        cache.done(key, b"r")
    clock.advance(5.0)
    cache.lookup(KEY)
    assert len(cache) == 1


def test_key_fields_all_matter() -> None:
    """Address, port, Identifier and Request Authenticator each make a different request."""
    _, cache = make_cache()
    cache.lookup(KEY)
    for other in [("192.0.2.2", *KEY[1:]), (KEY[0], 1646, *KEY[2:]), (*KEY[:2], 8, KEY[3]),
                  (*KEY[:3], b"B" * 16)]:
        assert cache.lookup(other) == (False, None)  # type: ignore[arg-type]


def test_request_key_tells_every_field_apart() -> None:
    """The listener's key differs with address, port, Identifier or authenticator, else equal."""
    datagram = bytes((1, 7, 0, 20)) + b"A" * 16
    key = request_key("192.0.2.1", 1645, datagram)
    assert key == request_key("192.0.2.1", 1645, bytes(datagram))
    others = [request_key("192.0.2.11", 1645, datagram), request_key("192.0.2.1", 1646, datagram),
              request_key("192.0.2.1", 1645, datagram[:1] + b"\x08" + datagram[2:]),
              request_key("192.0.2.1", 1645, datagram[:4] + b"B" * 16),
              request_key("2001:db8::1", 1645, datagram)]
    assert len({key, *others}) == 6


def test_cache_is_bounded_by_max_entries() -> None:
    """A flood of distinct requests never grows the cache beyond max_entries."""
    _, cache = make_cache(max_entries=10)
    keys = [("192.0.2.1", 1645, i % 256, i.to_bytes(16, "big")) for i in range(100)]
    for key in keys:
        cache.lookup(key)
        assert len(cache) <= 10
    # The evicted in-flight requests finish late: their replies must not overflow the cache.
    for key in keys:
        cache.done(key, b"reply")
        assert len(cache) <= 10


# -- the listener ------------------------------------------------------------------------


def test_retransmission_in_flight_is_not_processed_or_answered() -> None:
    """A resend while the first copy is in flight neither reaches the handler nor gets a reply."""
    h = make_harness()
    before = counter("radbill_radius_duplicates_total", port="auth")
    req, raw = access_request()
    h.send(raw)
    h.send(raw)
    h.send(raw)
    assert len(h.handler.requests) == 1 and h.replies == []
    assert counter("radbill_radius_duplicates_total", port="auth") == before + 2
    h.handler.answer(Decision(Outcome.ACCEPT))
    assert len(h.replies) == 1  # one answer for the one request
    assert req.VerifyReply(decode_reply(req, h.replies[0]), h.replies[0])


def test_answered_retransmission_gets_byte_identical_cached_reply() -> None:
    """Once answered, a resend gets exactly the same bytes without calling the handler."""
    h = make_harness()
    _, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.WRONG_PASSWORD))
    h.clock.advance(4)
    h.send(raw)
    assert len(h.handler.requests) == 1
    assert len(h.replies) == 2 and h.replies[0] == h.replies[1]
    assert h.transport.written[1][1] == NAS_ADDR


def test_accounting_retransmission_gets_cached_reply() -> None:
    """An Accounting-Request resent after its response is answered from the cache."""
    h = make_harness(kind="acct", handler=RecordingHandler(Decision(Outcome.ACCOUNTING_STORED)))
    _, raw = accounting_request()
    h.send(raw)
    h.send(raw)
    assert len(h.handler.requests) == 1
    assert len(h.replies) == 2 and h.replies[0] == h.replies[1]


def test_retransmission_after_window_is_processed_again() -> None:
    """After the duplicate window the same packet is a new request."""
    h = make_harness(window=5.0)
    _, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.ACCEPT))
    h.clock.advance(5.0)
    h.send(raw)
    assert len(h.handler.requests) == 2


def test_same_id_different_authenticator_is_a_new_request() -> None:
    """A reused Identifier with a new Request Authenticator is processed, not deduplicated."""
    h = make_harness()
    _, first = access_request(ident=9)
    _, second = access_request(ident=9)
    assert first[1] == second[1] and first[4:20] != second[4:20]
    h.send(first)
    h.send(second)
    assert len(h.handler.requests) == 2


def test_same_packet_from_another_source_port_is_a_new_request() -> None:
    """The source port is part of the key: two NAS processes do not share replies."""
    h = make_harness()
    _, raw = access_request()
    h.send(raw, (NAS_IP, 1000))
    h.send(raw, (NAS_IP, 1001))
    assert len(h.handler.requests) == 2


def test_dropped_request_is_not_remembered() -> None:
    """A request dropped after the dedupe lookup (bad signature) does not block a good copy."""
    h = make_harness()
    _, raw = access_request()
    forged = raw[:30] + bytes([raw[30] ^ 0xFF]) + raw[31:]  # same key, broken signature
    h.send(forged)
    assert h.handler.requests == []
    h.send(raw)
    assert len(h.handler.requests) == 1


def test_listener_cache_is_bounded() -> None:
    """The listener's duplicate cache stays within max_entries under many distinct requests."""
    h = make_harness(dedupe_max=5, handler=RecordingHandler(Decision(Outcome.ACCEPT)))
    for i in range(40):
        h.send(access_request(ident=i)[1])
        assert len(h.dedupe) <= 5
    assert len(h.replies) == 40
    req, raw = access_request(ident=200)
    h.send(raw)
    reply = decode_reply(req, h.replies[-1])
    assert reply.code == P.AccessAccept and req.VerifyReply(reply, h.replies[-1])
