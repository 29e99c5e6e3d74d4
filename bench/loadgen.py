#!/usr/bin/env python3
"""A RADIUS Access-Request load generator that should never be the slowest party.

Why it looks the way it does: a Python client that builds packets with pyrad
and waits on a Deferred per request tops out below the servers it measures.
Everything expensive therefore happens before the clock starts: every
datagram (PAP, User-Password hidden with its own Request Authenticator per
RFC 2865 section 5.2, Message-Authenticator per RFC 3579/CVE-2024-3596) is
built up front, all distinct, so a server's RFC 5080 duplicate cache never
answers for it. The measured loop only calls send()/recv() on connected,
non-blocking UDP sockets, matches replies by (socket, Identifier) and reads
the clock.

Two modes:

* closed loop (``--window W``): keep W requests in flight, as fast as the
  server answers: the peak rate;
* open loop (``--rate R``): send at fixed instants R times per second whatever
  the server does; latency is measured from the *intended* send instant so a
  stalled server cannot hide its queue (no coordinated omission).

Runs are bounded by ``--count`` and ``--duration``; replies older than
``--timeout`` count as lost. Only loopback targets are accepted. The result
is one JSON object on stdout; ``--pin CPU`` pins this process first.

Run ``python bench/loadgen.py --help``; bench/auth_bench.py drives it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import json
import os
import resource
import select
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
IDS_PER_SOCKET = 256
MAX_SOCKETS = 256
MAX_IN_FLIGHT_PER_SOCKET = 32  # an eighth of the Identifier space: only stragglers collide

# Attribute codes (RFC 2865/2869).
USER_NAME, USER_PASSWORD, NAS_IP_ADDRESS, NAS_PORT = 1, 2, 4, 5
SERVICE_TYPE, FRAMED_PROTOCOL, CALLING_STATION_ID, NAS_PORT_TYPE = 6, 7, 31, 61
MESSAGE_AUTHENTICATOR = 80


def login_for(prefix: str, i: int) -> str:
    """The bench's subscriber names: shared by the generator and every server's user list."""
    return f"{prefix}{i:05d}"


def password_for(prefix: str, i: int) -> str:
    return f"pw-{prefix}-{i:05d}"


def _attr(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 section 5.2: pad to 16, XOR each block with MD5(secret + previous)."""
    if not password:
        password = b"\x00"
    padded = password + b"\x00" * (-len(password) % 16)
    out = bytearray()
    previous = authenticator
    for start in range(0, len(padded), 16):
        pad = hashlib.md5(secret + previous).digest()  # noqa: S324 - RFC 2865 mandates MD5
        block = bytes(a ^ b for a, b in zip(padded[start:start + 16], pad, strict=True))
        out += block
        previous = block
    return bytes(out)


SHAPES = ("pppoe", "minimal")


def access_request(ident: int, user: bytes, password: bytes, secret: bytes, nas_port: int,
                   authenticator: bytes | None = None, shape: str = "pppoe") -> bytes:
    """One Access-Request, Message-Authenticator first.

    ``pppoe``: as a NAS sends it for a PPPoE login (NAS-Port, NAS-Port-Type,
    Service-Type, Framed-Protocol, Calling-Station-Id). ``minimal``: only
    User-Name, User-Password and NAS-IP-Address besides Message-Authenticator,
    the shape of a simple C generator (and of many hotspot controllers).
    """
    auth = authenticator if authenticator is not None else os.urandom(16)
    parts = [
        _attr(USER_NAME, user),
        _attr(USER_PASSWORD, hide_password(password, secret, auth)),
        _attr(NAS_IP_ADDRESS, socket.inet_aton("127.0.0.1")),
    ]
    if shape == "pppoe":
        mac = "02:00:" + ":".join(f"{b:02x}" for b in nas_port.to_bytes(4, "big"))
        parts += [
            _attr(NAS_PORT, struct.pack("!I", nas_port)),
            _attr(NAS_PORT_TYPE, struct.pack("!I", 15)),  # Ethernet
            _attr(SERVICE_TYPE, struct.pack("!I", 2)),  # Framed-User
            _attr(FRAMED_PROTOCOL, struct.pack("!I", 1)),  # PPP
            _attr(CALLING_STATION_ID, mac.encode()),
        ]
    elif shape != "minimal":
        raise ValueError(f"unknown request shape {shape!r}")
    attrs = b"".join(parts)
    ma_zero = _attr(MESSAGE_AUTHENTICATOR, b"\x00" * 16)
    length = 20 + len(ma_zero) + len(attrs)
    header = struct.pack("!BBH", ACCESS_REQUEST, ident, length) + auth
    digest = hmac.digest(secret, header + ma_zero + attrs, "md5")
    return header + _attr(MESSAGE_AUTHENTICATOR, digest) + attrs


def build_datagrams(count: int, sockets: int, prefix: str, users: int, first_user: int,
                    secret: bytes, password: str | None = None,
                    shape: str = "pppoe") -> list[list[bytes]]:
    """``count`` distinct requests dealt round-robin to the sockets, Identifier = position % 256.

    Request j goes to socket j % sockets as that socket's (j // sockets)-th
    datagram and asks for user first_user + j % users, so consecutive
    requests walk through every subscriber before any repeats. ``password``
    gives every user the same password instead of their own.
    """
    per_socket: list[list[bytes]] = [[] for _ in range(sockets)]
    names = [login_for(prefix, first_user + u).encode() for u in range(users)]
    passwords = [(password if password is not None else password_for(prefix, first_user + u))
                 .encode() for u in range(users)]
    for j in range(count):
        s, k = j % sockets, j // sockets
        u = j % users
        per_socket[s].append(access_request(k % IDS_PER_SOCKET, names[u], passwords[u], secret,
                                            first_user + u, shape=shape))
    return per_socket


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-pct * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


@dataclass
class Result:
    mode: str
    target: str
    window: int
    rate_requested: float
    sockets: int
    sent: int = 0
    completed: int = 0
    accepted: int = 0
    other_code: int = 0
    lost: int = 0
    skipped: int = 0
    stray: int = 0
    send_errors: int = 0
    duration_s: float = 0.0
    rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    send_lag_ms: dict[str, float] = field(default_factory=dict)
    generator_cpu_pct: float = 0.0
    precompute_s: float = 0.0


def _summary(values_s: list[float]) -> dict[str, float]:
    values = sorted(values_s)
    if not values:
        return {}
    return {
        "p50": round(percentile(values, 50) * 1000, 3),
        "p90": round(percentile(values, 90) * 1000, 3),
        "p99": round(percentile(values, 99) * 1000, 3),
        "p999": round(percentile(values, 99.9) * 1000, 3),
        "max": round(values[-1] * 1000, 3),
        "mean": round(sum(values) / len(values) * 1000, 3),
    }


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Generator:
    """The sockets, the in-flight table and the counters of one run."""

    def __init__(self, host: str, port: int, datagrams: list[list[bytes]], timeout: float):
        self.datagrams = datagrams
        self.timeout = timeout
        self.socks = []
        for _ in datagrams:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.connect((host, port))  # connected: send()/recv(), and the kernel filters strangers
            s.setblocking(False)
            self.socks.append(s)
        self.poller = select.epoll()
        self.fd_index = {}
        for i, s in enumerate(self.socks):
            self.poller.register(s.fileno(), select.EPOLLIN)
            self.fd_index[s.fileno()] = i
        # sent_at[socket][Identifier]: when the request was (meant to be) sent; 0.0 = free.
        self.sent_at = [[0.0] * IDS_PER_SOCKET for _ in self.socks]
        self.latencies: list[float] = []
        self.in_flight = 0
        self.accepted = self.other_code = self.lost = self.stray = 0
        self.last_reply = 0.0

    def close(self) -> None:
        self.poller.close()
        for s in self.socks:
            s.close()

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for readable sockets and consume every reply queued there."""
        clock = time.perf_counter
        append = self.latencies.append
        for fd, _ in self.poller.poll(timeout):
            i = self.fd_index[fd]
            recv = self.socks[i].recv
            table = self.sent_at[i]
            while True:
                try:
                    data = recv(4096)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:  # ICMP port unreachable: server not there (yet)
                    continue
                now = clock()
                if len(data) < 20:
                    self.stray += 1
                    continue
                sent = table[data[1]]
                if not sent:
                    self.stray += 1  # a late reply to a request already counted lost
                    continue
                table[data[1]] = 0.0
                self.in_flight -= 1
                append(now - sent)
                self.last_reply = now
                if data[0] == ACCESS_ACCEPT:
                    self.accepted += 1
                else:
                    self.other_code += 1

    def expire(self, now: float) -> None:
        """Give up on requests older than the timeout, freeing their Identifiers."""
        limit = now - self.timeout
        for table in self.sent_at:
            for ident, sent in enumerate(table):
                if sent and sent < limit:
                    table[ident] = 0.0
                    self.in_flight -= 1
                    self.lost += 1

    def finish(self, result: Result, start: float, end_send: float, cpu0: float) -> Result:
        """Wait for stragglers (bounded by the timeout), then fill the result."""
        clock = time.perf_counter
        give_up = clock() + self.timeout
        while self.in_flight > 0 and clock() < give_up:
            self.drain(0.01)
        self.expire(float("inf"))
        wall = clock() - start
        end = max(self.last_reply, end_send)
        result.completed = len(self.latencies)
        result.accepted, result.other_code = self.accepted, self.other_code
        result.lost, result.stray = self.lost, self.stray
        result.duration_s = round(end - start, 4)
        result.rate = round(result.completed / (end - start), 1) if end > start else 0.0
        result.latency_ms = _summary(self.latencies)
        result.generator_cpu_pct = round(100 * (_cpu_seconds() - cpu0) / wall, 1) if wall else 0.0
        return result

    def run_closed(self, result: Result, window: int, count: int, duration: float) -> Result:
        """Keep ``window`` requests in flight until ``count`` are sent or ``duration`` is over."""
        nsock = len(self.socks)
        sends = [s.send for s in self.socks]
        sent_at = self.sent_at
        datagrams = self.datagrams
        clock = time.perf_counter
        drain = self.drain
        cpu0 = _cpu_seconds()
        start = clock()
        deadline = start + duration
        next_sweep = start + min(0.1, self.timeout / 4)
        j = 0
        while j < count:
            now = clock()
            if now >= deadline:
                break
            while self.in_flight < window and j < count:
                s, k = j % nsock, j // nsock
                ident = k & 0xFF
                table = sent_at[s]
                if table[ident]:
                    result.skipped += 1  # a straggler still holds this Identifier
                    j += 1
                    continue
                try:
                    sends[s](datagrams[s][k])
                except BlockingIOError:  # socket buffer full: let replies drain first
                    break
                except ConnectionRefusedError:  # ICMP port unreachable: nobody listens
                    result.send_errors += 1
                    j += 1
                    continue
                table[ident] = clock()
                self.in_flight += 1
                j += 1
            drain(0.05)
            if now >= next_sweep:
                self.expire(now)
                next_sweep = now + min(0.1, self.timeout / 4)
        result.sent = j - result.skipped - result.send_errors
        return self.finish(result, start, clock(), cpu0)

    def run_open(self, result: Result, rate: float, count: int, duration: float) -> Result:
        """Send at fixed instants; latency counts from the instant each request was due."""
        nsock = len(self.socks)
        sends = [s.send for s in self.socks]
        sent_at = self.sent_at
        datagrams = self.datagrams
        clock = time.perf_counter
        drain = self.drain
        interval = 1.0 / rate
        lags: list[float] = []
        lag = lags.append
        cpu0 = _cpu_seconds()
        start = clock()
        deadline = start + duration
        due = start
        next_sweep = start + min(0.1, self.timeout / 4)
        j = 0
        while j < count:
            now = clock()
            if now >= deadline:
                break
            while due <= now and j < count:
                s, k = j % nsock, j // nsock
                ident = k & 0xFF
                table = sent_at[s]
                j += 1
                if table[ident]:
                    result.skipped += 1
                else:
                    try:
                        sends[s](datagrams[s][k])
                        table[ident] = due
                        self.in_flight += 1
                        lag(clock() - due)
                    except (BlockingIOError, ConnectionRefusedError):
                        result.send_errors += 1
                due += interval
            # Busy-poll: the generator owns its core, and a sleeping poll would make sends late.
            drain(0)
            if now >= next_sweep:
                self.expire(now)
                next_sweep = now + min(0.1, self.timeout / 4)
        result.sent = j - result.skipped - result.send_errors
        result.send_lag_ms = _summary(lags)
        return self.finish(result, start, clock(), cpu0)


def check_loopback(host: str) -> str:
    """Refuse any target off this machine: load goes to 127.0.0.0/8 only."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise SystemExit(f"loadgen: {host!r} is not an IP address") from None
    if not (ip.version == 4 and ip.is_loopback):
        raise SystemExit(f"loadgen: refusing {host}: only 127.0.0.0/8 targets are allowed")
    return host


def run(host: str, port: int, secret: bytes, *, window: int = 64, rate: float = 0.0,
        count: int = 100_000, duration: float = 10.0, timeout: float = 2.0,
        users: int = 10_000, first_user: int = 0, prefix: str = "bench",
        sockets: int = 0, password: str | None = None, shape: str = "pppoe") -> Result:
    """One run: closed loop with ``window`` in flight, or open loop when ``rate`` > 0."""
    check_loopback(host)
    if sockets <= 0:
        if rate <= 0:
            sockets = max(1, -(-window // MAX_IN_FLIGHT_PER_SOCKET))
        else:  # enough Identifiers that only a request older than the timeout can block one
            sockets = min(MAX_SOCKETS, max(4, int(-(-rate * timeout // (IDS_PER_SOCKET // 2)))))
    if rate <= 0 and window >= sockets * IDS_PER_SOCKET:
        raise SystemExit(f"loadgen: window {window} needs more than {sockets} sockets "
                         f"({IDS_PER_SOCKET} Identifiers each)")
    t0 = time.perf_counter()
    datagrams = build_datagrams(count, sockets, prefix, users, first_user, secret, password,
                                shape)
    precompute = time.perf_counter() - t0
    result = Result(mode="open" if rate > 0 else "closed", target=f"{host}:{port}",
                    window=window if rate <= 0 else 0, rate_requested=rate, sockets=sockets,
                    precompute_s=round(precompute, 3))
    gen = Generator(host, port, datagrams, timeout)
    try:
        if rate > 0:
            return gen.run_open(result, rate, count, duration)
        return gen.run_closed(result, window, count, duration)
    finally:
        gen.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="target (loopback only)")
    p.add_argument("--port", type=int, default=1812)
    p.add_argument("--secret", default="testing123")
    p.add_argument("--window", type=int, default=64, help="closed loop: requests in flight")
    p.add_argument("--rate", type=float, default=0.0,
                   help="open loop: requests per second (0 = closed loop)")
    p.add_argument("--count", type=int, default=100_000, help="at most this many requests")
    p.add_argument("--duration", type=float, default=10.0, help="at most this many seconds")
    p.add_argument("--timeout", type=float, default=2.0, help="a reply later than this is lost")
    p.add_argument("--users", type=int, default=10_000, help="distinct User-Names to cycle")
    p.add_argument("--first-user", type=int, default=0)
    p.add_argument("--prefix", default="bench", help="User-Name prefix")
    p.add_argument("--password", default=None,
                   help="one password for every user (default: each user's own)")
    p.add_argument("--sockets", type=int, default=0, help="source sockets (0 = automatic)")
    p.add_argument("--pin", type=int, default=None, help="pin this process to this CPU")
    p.add_argument("--shape", choices=SHAPES, default="pppoe",
                   help="Access-Request attributes: a PPPoE login's, or only User-Name, "
                        "User-Password, NAS-IP-Address (+ Message-Authenticator)")
    args = p.parse_args(argv)
    if args.count <= 0 or args.duration <= 0 or args.timeout <= 0 or args.users <= 0 \
            or args.window <= 0 or args.rate < 0:
        p.error("count, duration, timeout, users and window must be positive, rate >= 0")
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    result = run(args.host, args.port, args.secret.encode(), window=args.window, rate=args.rate,
                 count=args.count, duration=args.duration, timeout=args.timeout,
                 users=args.users, first_user=args.first_user, prefix=args.prefix,
                 sockets=args.sockets, password=args.password, shape=args.shape)
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
