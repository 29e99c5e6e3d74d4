"""The Accounting-Response radbill sends (aaa.radius ReplyTemplates) is byte for byte pyrad's."""

from __future__ import annotations

import hashlib
import hmac
import random
import struct
from collections import OrderedDict

from pyrad import packet as P

from aaa.acct_decode import AcctRequestPacket
from aaa.dictionary import load_dictionary
from aaa.outcome import Outcome, rule_for
from aaa.radius import ReplyTemplates


def _request(rng: random.Random, secret: bytes) -> bytes:
    """An Accounting-Request with random attributes, Proxy-State and maybe Message-Authenticator."""
    attrs = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.random()
        if kind < 0.3:
            value = rng.randbytes(rng.randint(1, 40))
            attrs.append(bytes((33, len(value) + 2)) + value)  # Proxy-State
        elif kind < 0.5:
            attrs.append(bytes((40, 6)) + struct.pack("!I", rng.choice((1, 2, 3, 7, 8))))
        else:
            value = rng.randbytes(rng.randint(0, 30))
            attrs.append(bytes((rng.choice((1, 31, 44, 87)), len(value) + 2)) + value)
    with_ma = rng.random() < 0.3
    if with_ma:
        attrs.insert(rng.randint(0, len(attrs)), bytes((80, 18)) + bytes(16))
    body = b"".join(attrs)
    header = struct.pack("!BBH", P.AccountingRequest, rng.randint(0, 255), 20 + len(body))
    if with_ma:  # RFC 3579: HMAC-MD5 over the packet with a zero authenticator and MA
        ma = hmac.digest(secret, header + bytes(16) + body, "md5")
        at = body.index(bytes((80, 18)) + bytes(16))
        body = body[:at + 2] + ma + body[at + 18:]
    auth = hashlib.md5(header + bytes(16) + body + secret).digest()  # noqa: S324
    return header + auth + body


def test_accounting_response_equals_pyrads_on_random_requests() -> None:
    """5,000 random requests: the cached-template reply equals pyrad's CreateReply/ReplyPacket."""
    dictionary = load_dictionary()
    rng = random.Random(5)
    templates = ReplyTemplates()
    rule = rule_for("acct", Outcome.ACCOUNTING_STORED)
    assert rule.code == P.AccountingResponse
    proxied = 0
    for _ in range(5_000):
        secret = rng.choice((b"testing123", b"s", rng.randbytes(rng.randint(1, 40))))
        data = _request(rng, secret)
        pkt = AcctRequestPacket(packet=data, dict=dictionary, secret=secret)
        ours = templates.encode(pkt, P.AccountingResponse, rule.message, [], with_ma=False)
        theirs = P.AcctPacket(packet=data, dict=dictionary, secret=secret).CreateReply()
        theirs.code = P.AccountingResponse
        assert ours == theirs.ReplyPacket(), data.hex()
        proxied += OrderedDict.__contains__(pkt, 33)
    assert proxied > 1_000  # Proxy-State copying was really exercised
