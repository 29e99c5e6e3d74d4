"""Sockets several processes share: SO_REUSEPORT, for radbill's worker processes.

Each worker makes its own socket with SO_REUSEPORT on the same address and
port and hands it to the reactor (``adoptDatagramPort``/``adoptStreamPort``);
the kernel then spreads datagrams over the workers by a hash of the source
address and port, so one NAS socket keeps landing on the same worker while
the set of workers stays the same.
"""

from __future__ import annotations

import ipaddress
import socket


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def reuseport_socket(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A bound, non-blocking socket with SO_REUSEPORT (TCP ones also listen)."""
    family = family_of(address)
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def adopt_udp(reactor: object, address: str, port: int, protocol: object,
              max_packet_size: int = 65535) -> object:
    """listenUDP's result, on a socket shared with the other workers."""
    sock = reuseport_socket(address, port, socket.SOCK_DGRAM)
    try:
        # The reactor dups the descriptor; ours is closed either way.
        return reactor.adoptDatagramPort(sock.fileno(), sock.family, protocol,  # type: ignore[attr-defined]
                                         maxPacketSize=max_packet_size)
    finally:
        sock.close()


def adopt_tcp(reactor: object, address: str, port: int, factory: object) -> object:
    """listenTCP's result, on a listening socket shared with the other workers."""
    sock = reuseport_socket(address, port, socket.SOCK_STREAM)
    try:
        return reactor.adoptStreamPort(sock.fileno(), sock.family, factory)  # type: ignore[attr-defined]
    finally:
        sock.close()
