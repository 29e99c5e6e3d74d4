"""The auth port's fast paths give pyrad's answers: request decoding and Message-Authenticator."""

from __future__ import annotations

import hashlib
import hmac
import random
import struct
from collections import OrderedDict

import pytest
from pyrad import packet as P
from pyrad.dictionary import Dictionary

from aaa.dictionary import load_dictionary
from aaa.radius import AuthRequestPacket, message_authenticator_ok
from aaa.wire import Malformed, check_packet

SECRET = b"testing123"


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    """radbill's shipped dictionaries."""
    return load_dictionary()


def _attributes(rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(rng.randint(0, 20)):
        kind = rng.random()
        if kind < 0.15:  # a MikroTik or Microsoft VSA
            value = rng.randbytes(rng.randint(1, 10))
            sub = bytes((rng.randint(1, 30), len(value) + 2)) + value
            body = struct.pack("!I", rng.choice((14988, 311, 9))) + sub
            out.append(bytes((26, len(body) + 2)) + body)
        elif kind < 0.25:
            out.append(bytes((33, 8)) + rng.randbytes(6))  # Proxy-State, repeated at times
        else:
            value = rng.randbytes(rng.randint(1, 20))
            code = rng.choice((1, 2, 3, 30, 31, 32, 44, 60, 61, 77, 79, 87, 95, 123, 241, 255))
            out.append(bytes((code, len(value) + 2)) + value)
    return out


def _request(rng: random.Random, code: int = P.AccessRequest) -> bytes:
    attrs = _attributes(rng)
    with_ma = rng.random() < 0.8
    if with_ma:
        attrs.insert(rng.randint(0, len(attrs)), bytes((80, 18)) + b"\x00" * 16)
    body = b"".join(attrs)
    header = struct.pack("!BBH", code, rng.randint(0, 255), 20 + len(body))
    authenticator = rng.randbytes(16)
    data = header + authenticator + body
    if with_ma:
        pos = data.index(bytes((80, 18)) + b"\x00" * 16, 20)
        vector = b"\x00" * 16 if code == P.AccountingRequest else authenticator
        mac = hmac.new(SECRET, data[:4] + vector + data[20:], hashlib.md5).digest()
        data = data[:pos + 2] + mac + data[pos + 18:]
    return data


def test_decoding_matches_pyrad_on_random_requests(dictionary: Dictionary) -> None:
    """Every field and every attribute, in order, equal pyrad's AuthPacket decoding."""
    rng = random.Random(2865)
    for _ in range(3000):
        data = _request(rng)
        mine = AuthRequestPacket(packet=data, dict=dictionary, secret=SECRET)
        pyrads = P.AuthPacket(packet=data, dict=dictionary, secret=SECRET)
        assert list(OrderedDict.items(mine)) == list(OrderedDict.items(pyrads))
        mine_fields, pyrad_fields = dict(vars(mine)), dict(vars(pyrads))
        mine_fields.pop("id"), pyrad_fields.pop("id")  # compared from the packet below
        assert mine_fields == pyrad_fields
        assert mine.id == pyrads.id == data[1]
        assert isinstance(mine, P.AuthPacket)


@pytest.mark.parametrize("code", [P.AccessRequest, P.StatusServer, P.AccountingRequest])
def test_message_authenticator_check_matches_pyrad(dictionary: Dictionary, code: int) -> None:
    """Valid, tampered and wrong-secret packets get pyrad's verdict, for each request code."""
    rng = random.Random(code)
    verdicts = set()
    for _ in range(1500):
        data = _request(rng, code)
        how = rng.random()
        secret = SECRET
        if how < 0.2:  # one flipped octet anywhere after the header
            i = rng.randrange(4, len(data))
            data = data[:i] + bytes((data[i] ^ 0x01,)) + data[i + 1:]
        elif how < 0.3:
            secret = b"wrong"
        try:
            data = check_packet(data)
        except Malformed:
            continue
        pkt = P.Packet(packet=data, dict=dictionary, secret=secret)
        if pkt.message_authenticator is None:
            assert not message_authenticator_ok(data, secret)
            continue
        expected = pkt.verify_message_authenticator()
        assert message_authenticator_ok(data, secret) is expected
        verdicts.add(expected)
    assert verdicts == {True, False}  # both answers were exercised
