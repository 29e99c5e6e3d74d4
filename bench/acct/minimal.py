"""The ceiling of this runtime for accounting: a Twisted + pyrad responder that stores nothing.

radbill's accounting rate is bounded by what one Python process with Twisted
and pyrad can do per Accounting-Request before any storage, so this server
does only what every correct accounting server must: decode the request with
pyrad (the dictionaries radbill ships), check its Request Authenticator
(pyrad's ``VerifyAcctRequest``, RFC 2866 section 3), and answer an
Accounting-Response built by pyrad (``CreateReply``/``ReplyPacket``, which
copies Proxy-State). It stores NOTHING: no database, no spool, no duplicate
cache, no metrics, no logging per request, no thread pool. Whatever radbill
does on top (parse into a record, group commit, fsync, usage deltas) can only
make it slower than this.

Usage: python -m bench.acct.minimal --port N [--secret S] [--pin CPU] [--reuse-port]
Prints "READY <port>" once bound.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from pyrad import packet as P
from pyrad.dictionary import Dictionary
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import DatagramProtocol

DICTIONARY = Path(__file__).resolve().parents[2] / "conf" / "dictionaries" / "dictionary"


class MinimalAccounting(DatagramProtocol):
    transport: Any

    def __init__(self, dictionary: Dictionary, secret: bytes) -> None:
        self.dictionary = dictionary
        self.secret = secret
        self.dropped = 0

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        try:
            pkt = P.AcctPacket(packet=data, dict=self.dictionary, secret=self.secret)
            if pkt.code != P.AccountingRequest or not pkt.VerifyAcctRequest():
                self.dropped += 1
                return
            self.transport.write(pkt.CreateReply().ReplyPacket(), addr)
        except Exception:  # a bench server: a bad packet costs a drop, never the process
            self.dropped += 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--secret", default="benchsecret")
    p.add_argument("--pin", type=int, default=None, help="pin to this CPU")
    p.add_argument("--reuse-port", action="store_true",
                   help="bind with SO_REUSEPORT so several processes share --port")
    args = p.parse_args()
    if not args.host.startswith("127.") and args.host != "::1":
        p.error("the bench only listens on the loopback interface")
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    reactor: Any = _reactor
    proto = MinimalAccounting(Dictionary(str(DICTIONARY)), args.secret.encode())
    if args.reuse_port:
        # Several processes bound to one port: the kernel spreads the NAS's source
        # addresses over them (bench only: shows what N processes could reach).
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind((args.host, args.port))
        sock.setblocking(False)
        port = reactor.adoptDatagramPort(sock.fileno(), socket.AF_INET, proto,
                                         maxPacketSize=65535)
        sock.close()  # the reactor holds its own duplicate of the descriptor
    else:
        port = reactor.listenUDP(args.port, proto, interface=args.host, maxPacketSize=65535)
        # The same receive buffer radbill sets (radius.receive_buffer), so a burst of the
        # 256 requests in flight is queued, not dropped and resent 2 s later.
        port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    print(f"READY {port.getHost().port}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
