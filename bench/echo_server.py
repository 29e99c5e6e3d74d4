#!/usr/bin/env python3
"""A trivial UDP echo for checking that bench/loadgen.py is not the bottleneck.

It answers every datagram with a fixed 20-octet reply (code Access-Accept,
the request's Identifier, Length 20, the request's authenticator copied):
enough for the generator's checks, with no RADIUS work at all. Whatever rate
the generator reaches against it is the rate the generator can measure; it
must be well above the rate of any server it is used on.

Usage: python bench/echo_server.py --port N [--pin CPU]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.protocol import DatagramProtocol

REPLY_HEAD = b"\x02"
REPLY_LENGTH = b"\x00\x14"


class Echo(DatagramProtocol):
    transport: Any

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 20:
            self.transport.write(REPLY_HEAD + data[1:2] + REPLY_LENGTH + data[4:20], addr)


def main() -> int:
    p = argparse.ArgumentParser(description="fixed-reply UDP echo for the load generator check")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pin", type=int, default=None, help="pin to this CPU")
    args = p.parse_args()
    reactor: Any = _reactor
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    port = reactor.listenUDP(args.port, Echo(), interface=args.host)
    print(f"READY {port.getHost().port}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
