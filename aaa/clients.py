"""NAS clients: who may talk to radbill, with which secret, in which vendor dialect.

Clients live in the database; the server keeps an in-memory copy for the hot
path (every packet needs its client's secret) and reloads it on a timer and
when an unknown address shows up, at most every ``min_reload`` seconds, so a
``radbill nas add`` takes effect within seconds without a restart.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass

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
