"""aaa.acct_decode: the offset-walking DecodePacket gives exactly pyrad's AcctPacket result."""

from __future__ import annotations

import random
import struct
from collections import OrderedDict
from typing import Any

import pytest
from pyrad import packet as P
from pyrad.dictionary import Dictionary

from aaa.acct_decode import AcctRequestPacket, tlv_codes
from aaa.dictionary import load_dictionary

SECRET = b"testing123"
VENDORS = (14988, 9, 311, 3561, 2011, 4874, 1, 0xFFFFFFFF)


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    """radbill's shipped dictionaries."""
    return load_dictionary()


def _attribute(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.25:  # Vendor-Specific: well formed, or with sub-lengths that do not add up
        subs = b""
        for _ in range(rng.randint(0, 3)):
            value = rng.randbytes(rng.randint(0, 12))
            length = len(value) + 2 if rng.random() < 0.85 else rng.randint(0, 20)
            subs += bytes((rng.randint(1, 255), length)) + value
        body = struct.pack("!I", rng.choice(VENDORS)) + subs
        if rng.random() < 0.1:
            body = body[:rng.randint(0, 5)]
        body = body[:253]
        return bytes((26, len(body) + 2)) + body
    if kind < 0.3:
        return bytes((80, 18)) + rng.randbytes(16)
    value = rng.randbytes(rng.randint(0, 20))
    return bytes((rng.choice((1, 4, 8, 31, 40, 42, 44, 46, 52, 55, 87, 97, 123, 241, 255)),
                  len(value) + 2)) + value


def _datagram(rng: random.Random) -> bytes:
    body = b"".join(_attribute(rng) for _ in range(rng.randint(0, 25)))
    damage = rng.random()
    if damage < 0.05 and body:  # an attribute length of 0 or 1
        i = rng.randrange(0, len(body))
        body = body[:i] + bytes((rng.randint(0, 255), rng.randint(0, 1))) + body[i:]
    elif damage < 0.10 and body:  # cut anywhere, also inside a header
        body = body[:rng.randrange(0, len(body))]
    elif damage < 0.15:  # an attribute claiming more than is left
        body += bytes((44, rng.randint(3, 255))) + rng.randbytes(rng.randint(0, 3))
    length = 20 + len(body)
    if damage > 0.97:
        length = rng.choice((0, 19, length + 1, 8193, rng.randint(0, 65535)))
    header = struct.pack("!BBH", 4, rng.randint(0, 255), length & 0xFFFF)
    data = header + rng.randbytes(16) + body
    if rng.random() < 0.05:
        data += rng.randbytes(rng.randint(1, 10))  # padding beyond Length: ignored
    if rng.random() < 0.01:
        data = data[:rng.randint(0, 19)]
    return data


def _decode(cls: type[P.AcctPacket], data: bytes, dictionary: Dictionary) -> Any:
    try:
        pkt = cls(packet=data, dict=dictionary, secret=SECRET)
    except Exception as exc:
        return ("error", type(exc), str(exc))
    return (list(OrderedDict.items(pkt)), pkt.code, pkt.id, pkt.authenticator, pkt.raw_packet,
            pkt.message_authenticator, pkt.secret)


def test_same_result_as_pyrad_on_random_datagrams(dictionary: Dictionary) -> None:
    """30,000 random datagrams (VSAs, repeats, bad lengths, padding) decode exactly as pyrad's."""
    rng = random.Random(2866)
    errors = 0
    for _ in range(30_000):
        data = _datagram(rng)
        ours = _decode(AcctRequestPacket, data, dictionary)
        theirs = _decode(P.AcctPacket, data, dictionary)
        assert ours == theirs, data.hex()
        errors += ours[0] == "error"
    assert 300 < errors < 10_000  # the malformed cases were really exercised


def test_tlv_attributes_go_to_pyrads_tlv_decoder() -> None:
    """A top-level TLV attribute is decoded by pyrad's TLV code, as in pyrad's own loop."""
    import tempfile
    from pathlib import Path

    text = ("ATTRIBUTE\tUser-Name\t1\tstring\n"
            "ATTRIBUTE\tTest-TLV\t245\ttlv\n"
            "ATTRIBUTE\tTest-TLV-A\t245.1\tinteger\n"
            "ATTRIBUTE\tTest-TLV-B\t245.2\tstring\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dictionary"
        path.write_text(text)
        small = Dictionary(str(path))
    assert tlv_codes(small) == frozenset({245})
    inner = bytes((1, 6)) + struct.pack("!I", 7) + bytes((2, 5)) + b"abc"
    body = bytes((1, 5)) + b"bob" + bytes((245, len(inner) + 2)) + inner
    data = struct.pack("!BBH", 4, 9, 20 + len(body)) + bytes(16) + body
    ours = _decode(AcctRequestPacket, data, small)
    assert ours == _decode(P.AcctPacket, data, small)
    assert dict(ours[0])[245] == {1: [struct.pack("!I", 7)], 2: [b"abc"]}


def test_named_access_still_works(dictionary: Dictionary) -> None:
    """It is a pyrad AcctPacket: named reads, VerifyAcctRequest and CreateReply behave as usual."""
    body = bytes((1, 7)) + b"alice" + bytes((40, 6)) + struct.pack("!I", 3)
    header = struct.pack("!BBH", 4, 1, 20 + len(body))
    import hashlib

    auth = hashlib.md5(header + bytes(16) + body + SECRET).digest()  # noqa: S324
    pkt = AcctRequestPacket(packet=header + auth + body, dict=dictionary, secret=SECRET)
    assert isinstance(pkt, P.AcctPacket)
    assert pkt["User-Name"] == ["alice"]
    assert pkt["Acct-Status-Type"] == ["Interim-Update"]
    assert pkt.VerifyAcctRequest()
    assert pkt.CreateReply().ReplyPacket() == P.AcctPacket(
        packet=header + auth + body, dict=dictionary, secret=SECRET).CreateReply().ReplyPacket()
