"""Accounting load generator: sessions of Start, Interim-Updates and Stop, many in flight.

One process, raw non-blocking UDP sockets (256 Identifiers each), packets
built with struct and hashlib (no pyrad), so it costs a few microseconds per
request and is not what limits the measured server. Each session sends its
requests one after the other (the next only once the previous is answered),
as a NAS does; ``--window`` sessions run at once. An unanswered request is
resent unchanged after ``--timeout`` seconds. Bounded by ``--sessions`` and
``--max-seconds``.

Prints one JSON object: counts, elapsed time, requests/s, and per session the
index of the last acknowledged request (so the caller can check the database
holds every acknowledged record).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import selectors
import socket
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass

ACCOUNTING_REQUEST = 4
ACCOUNTING_RESPONSE = 5


def attr(code: int, value: bytes) -> bytes:
    return bytes([code, len(value) + 2]) + value


def u32(code: int, value: int) -> bytes:
    return bytes([code, 6]) + struct.pack("!I", value & 0xFFFFFFFF)


def expected(k: int, index: int, interims: int) -> tuple[int, int, int]:
    """(session time, input octets, output octets) after request ``index`` of session k."""
    if index == 0:
        return 0, 0, 0
    step = min(index, interims + 1)
    octets_in = step * 1_000_003 * (k % 97 + 1)
    return 60 * step, octets_in, 3 * octets_in


def session_id(prefix: str, k: int) -> str:
    return f"{prefix}-{k:07d}"


def build(k: int, index: int, identifier: int, args: argparse.Namespace) -> bytes:
    """Request ``index`` of session k: 0 Start, 1..interims Interim-Update, then Stop."""
    last = args.interims + 1
    status = 1 if index == 0 else (2 if index == last else 3)
    seconds, octets_in, octets_out = expected(k, index, args.interims)
    user = f"user{k % args.users}".encode()
    attrs = [
        u32(40, status), attr(1, user), attr(44, session_id(args.prefix, k).encode()),
        attr(4, bytes([10, 0, 0, 1])), u32(5, k), u32(61, 15),
        attr(8, bytes([100, 64, (k >> 8) & 255, k & 255])),
        attr(31, f"02:00:00:{(k >> 16) & 255:02x}:{(k >> 8) & 255:02x}:{k & 255:02x}".encode()),
        u32(55, int(time.time())), u32(41, 0),
    ]
    if status != 1:
        attrs += [u32(46, seconds), u32(42, octets_in), u32(52, octets_in >> 32),
                  u32(43, octets_out), u32(53, octets_out >> 32),
                  u32(47, octets_in // 1000), u32(48, octets_out // 1000)]
    if status == 2:
        attrs.append(u32(49, 1))
    body = b"".join(attrs)
    header = struct.pack("!BBH", ACCOUNTING_REQUEST, identifier, 20 + len(body))
    auth = hashlib.md5(header + b"\x00" * 16 + body + args.secret_bytes).digest()  # noqa: S324
    return header + auth + body


@dataclass
class Flow:
    k: int
    index: int
    packet: bytes
    sent_at: float
    tries: int = 1


def run(args: argparse.Namespace) -> dict[str, object]:
    args.secret_bytes = args.secret.encode()
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(args.sockets):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.connect((args.host, args.port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks.append(s)
    # Identifiers are used least-recently-used first, as a NAS does, so one is reused only
    # after many others: a server may still be finishing the previous request on it.
    slots = deque((i, ident) for ident in range(256) for i in range(args.sockets))
    flows: dict[tuple[int, int], Flow] = {}
    active = 0
    last_acked: dict[int, int] = {}
    next_k = 0
    sent = acked = retransmits = 0
    last_index = args.interims + 1
    started = time.perf_counter()
    cpu0 = time.process_time()
    deadline = started + args.max_seconds
    last_scan = started

    def send(slot: tuple[int, int], flow: Flow) -> None:
        nonlocal sent
        try:
            socks[slot[0]].send(flow.packet)
        except (BlockingIOError, ConnectionRefusedError):
            pass  # lost like any datagram (buffer full, server not there): resent later
        sent += 1

    while (flows or next_k < args.sessions) and time.perf_counter() < deadline:
        while active < args.window and slots and next_k < args.sessions:
            slot = slots.popleft()
            flow = Flow(next_k, 0, build(next_k, 0, slot[1], args), time.perf_counter())
            flows[slot] = flow
            next_k += 1
            active += 1
            send(slot, flow)
        for key, _ in sel.select(timeout=0.02):
            i = key.data
            sock = socks[i]
            while True:
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if len(data) < 20 or data[0] != ACCOUNTING_RESPONSE:
                    continue
                slot = (i, data[1])
                flow = flows.get(slot)
                if flow is None:
                    continue
                check = hashlib.md5(data[:4] + flow.packet[4:20] + data[20:]  # noqa: S324
                                    + args.secret_bytes).digest()
                if check != data[4:20]:
                    continue  # a late answer to an earlier request on this slot
                acked += 1
                last_acked[flow.k] = flow.index
                del flows[slot]
                slots.append(slot)
                if flow.index == last_index:
                    active -= 1
                    continue
                slot = slots.popleft()
                flow.index += 1
                flow.packet = build(flow.k, flow.index, slot[1], args)
                flow.sent_at = time.perf_counter()
                flow.tries = 1
                flows[slot] = flow
                send(slot, flow)
        now = time.perf_counter()
        if now - last_scan > args.timeout / 4:
            last_scan = now
            for slot, flow in flows.items():
                if now - flow.sent_at > args.timeout:
                    flow.sent_at = now
                    flow.tries += 1
                    retransmits += 1
                    send(slot, flow)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    complete = sum(1 for i in last_acked.values() if i == last_index)
    return {
        "sessions": args.sessions, "interims": args.interims, "window": args.window,
        "requests_planned": args.sessions * (args.interims + 2),
        "sent": sent, "acked": acked, "retransmits": retransmits,
        "sessions_complete": complete, "elapsed": round(elapsed, 3),
        "acked_per_second": round(acked / elapsed, 1) if elapsed else 0.0,
        "loadgen_cpu_seconds": round(cpu, 3),
        "timed_out": bool(flows or next_k < args.sessions),
        "last_acked": last_acked,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", default="benchsecret")
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--interims", type=int, default=8)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--sockets", type=int, default=8)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--prefix", default=f"b{os.getpid()}")
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("::1", "localhost"):
        p.error("load is only ever sent to the loopback interface")
    json.dump(run(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
