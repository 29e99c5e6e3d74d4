"""NAS clients: who may talk to radbill, with which secret, in which vendor dialect.

Clients live in the database; the server keeps an in-memory copy for the hot
path (every packet needs its client's secret) and reloads it on a timer and
when an unknown address shows up, at most every ``min_reload`` seconds, so a
``radbill nas add`` takes effect within seconds without a restart.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Nas, Vendor

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NasClient:
    id: int
    name: str
    address: str
    secret: bytes
    vendor: Vendor
    require_message_authenticator: bool
    coa_port: int

    def __repr__(self) -> str:
        # The secret never reaches a log line, not even through repr().
        return f"NasClient(id={self.id}, name={self.name!r}, address={self.address!r})"


def parse_network(address: str) -> IPNetwork:
    """An address or CIDR as a network; raises ValueError naming the bad value."""
    try:
        return ipaddress.ip_network(address.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{address!r} is not an IP address or CIDR") from None


def thd_load_clients(session: Session) -> list[NasClient]:
    rows = session.scalars(select(Nas)).all()
    return [NasClient(id=r.id, name=r.name, address=r.address, secret=r.secret.encode(),
                      vendor=Vendor(r.vendor),
                      require_message_authenticator=r.require_message_authenticator,
                      coa_port=r.coa_port) for r in rows]


def save_clients(path: Path, clients: Iterable[NasClient]) -> None:
    """Keep the last client list beside the spool (0600: it holds the shared secrets).

    So that after a crash during a database outage radbill can still tell its
    NASes from strangers and put their accounting into the spool, instead of
    dropping it all as "unknown client". Written to a temporary file and
    renamed, so a crash mid-write leaves the previous copy.
    """
    data = [{"id": c.id, "name": c.name, "address": c.address, "secret": c.secret.hex(),
             "vendor": c.vendor.value, "require_message_authenticator":
             c.require_message_authenticator, "coa_port": c.coa_port} for c in clients]
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # workers save at once
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def read_saved_clients(path: Path) -> list[NasClient]:
    """The client list save_clients wrote; raises OSError or ValueError when unusable."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [NasClient(id=int(d["id"]), name=str(d["name"]), address=str(d["address"]),
                      secret=bytes.fromhex(d["secret"]), vendor=Vendor(d["vendor"]),
                      require_message_authenticator=bool(d["require_message_authenticator"]),
                      coa_port=int(d["coa_port"])) for d in data]


class ClientTable:
    """Exact addresses in a dict, CIDRs most specific first."""

    def __init__(self, clients: Iterable[NasClient] = ()) -> None:
        self._exact: dict[str, NasClient] = {}
        self._networks: list[tuple[IPNetwork, NasClient]] = []
        self.replace(clients)

    def replace(self, clients: Iterable[NasClient]) -> None:
        exact: dict[str, NasClient] = {}
        networks: list[tuple[IPNetwork, NasClient]] = []
        for client in clients:
            try:
                net = parse_network(client.address)
            except ValueError:
                log.error("NAS %s has an invalid address %r; ignored", client.name, client.address)
                continue
            if net.num_addresses == 1:
                exact[str(net.network_address)] = client
            else:
                networks.append((net, client))
        networks.sort(key=lambda item: item[0].prefixlen, reverse=True)
        self._exact, self._networks = exact, networks

    def __len__(self) -> int:
        return len(self._exact) + len(self._networks)

    def find(self, host: str) -> NasClient | None:
        client = self._exact.get(host)
        if client is not None:
            return client
        if not self._networks and ":" not in host:
            return None  # an IPv4 miss with no CIDRs: nothing else can match
        # IPv6 spellings (IPv4-mapped from a dual-stack socket, a zone id) must be
        # normalised before the exact table is asked again, CIDRs or not.
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        client = self._exact.get(str(ip))
        if client is not None:
            return client
        for net, client in self._networks:
            if ip.version == net.version and ip in net:
                return client
        return None
