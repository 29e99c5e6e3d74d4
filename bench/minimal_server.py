#!/usr/bin/env python3
"""The ceiling of this runtime: the least a Twisted + pyrad PAP server can do per request.

radbill's speed target is relative to this server, so it does the work any
correct PAP server must do and nothing else: decode the Access-Request with
pyrad (the same dictionaries radbill ships), verify its Message-Authenticator
(required by default for radbill's clients, CVE-2024-3596), un-hide the
User-Password (pyrad's PwDecrypt), compare it with a password held in a
Python dict of the bench's 10,000 subscribers, and answer Access-Accept with
Message-Authenticator first and the same six attributes radbill sends for
the bench's plan on a MikroTik NAS:

    Service-Type = Framed-User, Framed-Protocol = PPP, Session-Timeout = 86400,
    Idle-Timeout = 600, Acct-Interim-Interval = 300, Mikrotik-Rate-Limit = "10M/10M"

A wrong password gets Access-Reject with Message-Authenticator. No database,
no duplicate cache, no metrics, no logging per request, no thread pool.

Usage: python bench/minimal_server.py --port N [--users 10000] [--pin CPU]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pyrad import packet as P
from pyrad.dictionary import Dictionary
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import DatagramProtocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import login_for, password_for

DICTIONARY = Path(__file__).resolve().parent.parent / "conf" / "dictionaries" / "dictionary"
REPLY_ATTRIBUTES: tuple[tuple[str, object], ...] = (
    ("Service-Type", "Framed-User"),
    ("Framed-Protocol", "PPP"),
    ("Session-Timeout", 86400),
    ("Idle-Timeout", 600),
    ("Acct-Interim-Interval", 300),
    ("Mikrotik-Rate-Limit", "10M/10M"),
)
USER_PASSWORD = 2


class MinimalRadius(DatagramProtocol):
    def __init__(self, dictionary: Dictionary, secret: bytes, users: dict[str, str]) -> None:
        self.dictionary = dictionary
        self.secret = secret
        self.users = users
        self.dropped = 0

    transport: Any

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            pkt = P.AuthPacket(packet=data, dict=self.dictionary, secret=self.secret)
            if pkt.code != P.AccessRequest or pkt.message_authenticator is None \
                    or not pkt.verify_message_authenticator():
                self.dropped += 1
                return
            user = pkt["User-Name"][0]
            password = pkt.PwDecrypt(OrderedDict.__getitem__(pkt, USER_PASSWORD)[0])
            reply = pkt.CreateReply()
            reply.add_message_authenticator()
            if self.users.get(user) == password:
                reply.code = P.AccessAccept
                for name, value in REPLY_ATTRIBUTES:
                    reply.AddAttribute(name, value)
            else:
                reply.code = P.AccessReject
            self.transport.write(reply.ReplyPacket(), addr)
        except Exception:  # a bench server: a bad packet costs a drop, never the process
            self.dropped += 1


def main() -> int:
    p = argparse.ArgumentParser(description="minimal Twisted + pyrad PAP server (the ceiling)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", default="testing123")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--prefix", default="bench")
    p.add_argument("--pin", type=int, default=None, help="pin to this CPU")
    args = p.parse_args()
    reactor: Any = _reactor
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    users = {login_for(args.prefix, i): password_for(args.prefix, i) for i in range(args.users)}
    proto = MinimalRadius(Dictionary(str(DICTIONARY)), args.secret.encode(), users)
    port = reactor.listenUDP(args.port, proto, interface=args.host,
                             maxPacketSize=65535)
    print(f"READY {port.getHost().port}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
