"""Attribute combinations FreeRADIUS refuses are dropped, never answered (issue 12).

Each packet here is otherwise valid: right secret, a Message-Authenticator
that verifies (signed over the whole packet the way RFC 3579 3.2 says), so
only the combination rule can drop it.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from pyrad import packet as P

from aaa.outcome import Decision, Outcome
from aaa.wire import attribute_combination_problem
from tests.test_radius_protocol import (
    DICT,
    NAS_IP,
    SECRET,
    RecordingHandler,
    dropped,
    make_harness,
)

USER_NAME, USER_PASSWORD, CHAP_PASSWORD, EAP_MESSAGE, MA = 1, 2, 3, 79, 80


def attr(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def signed(attributes: list[bytes], *, code: int = P.AccessRequest, secret: bytes = SECRET,
           ident: int = 9) -> bytes:
    """A packet whose FIRST Message-Authenticator is valid over everything that follows."""
    body = b"".join(attributes)
    authenticator = os.urandom(16)
    header = bytes((code, ident)) + (20 + len(body)).to_bytes(2, "big")
    pos = body.find(bytes((MA, 18)))
    if pos < 0 or code != P.AccessRequest:
        return header + authenticator + body
    zeroed = body[:pos + 2] + b"\x00" * 16 + body[pos + 18:]
    mac = hmac.new(secret, header + authenticator + zeroed, hashlib.md5).digest()
    return header + authenticator + body[:pos + 2] + mac + body[pos + 18:]


def pap_value(password: bytes = b"pw") -> bytes:
    """Any 16-octet hidden password: the rule never looks at its value."""
    return hashlib.md5(password).digest()  # noqa: S324


NAS = attr(4, bytes(int(x) for x in NAS_IP.split(".")))
MA_ZERO = attr(MA, b"\x00" * 16)
NAME = attr(USER_NAME, b"alice")
PAP = attr(USER_PASSWORD, pap_value())
CHAP = attr(CHAP_PASSWORD, b"\x01" + os.urandom(16))
EAP = attr(EAP_MESSAGE, b"\x02\x01\x00\x0a\x01alice")

BAD = {
    "two Message-Authenticators, second random": [MA_ZERO, NAME, PAP, NAS,
                                                  attr(MA, os.urandom(16))],
    "EAP-Message with User-Password": [MA_ZERO, NAME, PAP, EAP, NAS],
    "EAP-Message with CHAP-Password": [MA_ZERO, NAME, CHAP, EAP, NAS],
    "User-Password with CHAP-Password": [MA_ZERO, NAME, PAP, CHAP, NAS],
    "two User-Names": [MA_ZERO, NAME, attr(USER_NAME, b"bob"), PAP, NAS],
    "two User-Passwords": [MA_ZERO, NAME, PAP, attr(USER_PASSWORD, pap_value(b"x")), NAS],
    "two CHAP-Passwords": [MA_ZERO, NAME, CHAP, attr(CHAP_PASSWORD, b"\x02" + os.urandom(16)),
                           NAS],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_refused_combination_is_dropped_and_counted(case: str) -> None:
    """Each combination FreeRADIUS refuses is dropped before the handler, counted, logged."""
    h = make_harness(handler=RecordingHandler(auto=Decision(Outcome.ACCEPT)))
    before = dropped("auth", "invalid-attributes")
    h.send(signed(BAD[case]))
    assert h.handler.requests == [] and h.replies == []
    assert dropped("auth", "invalid-attributes") == before + 1


def test_eap_without_message_authenticator_is_dropped() -> None:
    """RFC 3579 3.3: an EAP-Message without Message-Authenticator is silently discarded."""
    h = make_harness(handler=RecordingHandler(auto=Decision(Outcome.ACCEPT)))
    h.send(signed([NAME, EAP, NAS]))
    assert h.handler.requests == [] and h.replies == []


def test_the_signing_helper_makes_packets_the_server_accepts() -> None:
    """Control: the same helper's well-formed PAP request is answered, so the drops above are
    the rule's doing and not a bad signature."""
    h = make_harness(handler=RecordingHandler(auto=Decision(Outcome.ACCEPT)))
    h.send(signed([MA_ZERO, NAME, PAP, NAS]))
    assert len(h.handler.requests) == 1 and len(h.replies) == 1
    pkt = P.AuthPacket(packet=h.replies[0], secret=SECRET, dict=DICT)
    assert pkt.code == P.AccessAccept


def test_accounting_two_message_authenticators_is_a_problem() -> None:
    """The Message-Authenticator rule holds on every port, not only for Access-Request."""
    raw = signed([attr(MA, os.urandom(16)), NAME, attr(MA, os.urandom(16))],
                 code=P.AccountingRequest)
    assert attribute_combination_problem(raw) is not None
    assert attribute_combination_problem(signed([NAME, attr(USER_NAME, b"b")],
                                                code=P.AccountingRequest)) is None
