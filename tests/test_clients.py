"""NAS client lookup (aaa.clients): exact addresses, CIDRs, IPv6, and loading from the DB."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from aaa.clients import ClientTable, NasClient, parse_network, thd_load_clients
from core.db.models import Nas, Vendor
from core.db.pool import DBPool

SECRET = b"very-secret-shared-key"


def client(address: str, name: str | None = None, client_id: int = 1) -> NasClient:
    return NasClient(id=client_id, name=name or address, address=address, secret=SECRET,
                     vendor=Vendor.GENERIC, require_message_authenticator=True, coa_port=3799)


def found(table: ClientTable, host: str) -> str | None:
    c = table.find(host)
    return None if c is None else c.name


def test_exact_ipv4_match() -> None:
    """An exact IPv4 address matches only itself."""
    table = ClientTable([client("192.0.2.1", "a"), client("192.0.2.2", "b")])
    assert found(table, "192.0.2.1") == "a"
    assert found(table, "192.0.2.2") == "b"
    assert found(table, "192.0.2.3") is None


def test_exact_ipv6_match_in_any_spelling() -> None:
    """An IPv6 client stored in any notation matches the canonical source address."""
    table = ClientTable([client("2001:DB8:0:0::0:10", "v6")])
    assert found(table, "2001:db8::10") == "v6"
    assert found(table, "2001:db8::11") is None


def test_host_cidr_counts_as_exact() -> None:
    """A /32 or /128 is an exact address."""
    table = ClientTable([client("192.0.2.7/32", "v4"), client("2001:db8::7/128", "v6")])
    assert found(table, "192.0.2.7") == "v4"
    assert found(table, "2001:db8::7") == "v6"


def test_cidr_match() -> None:
    """An address inside a CIDR client's network matches it; outside does not."""
    table = ClientTable([client("10.20.0.0/16", "pop")])
    assert found(table, "10.20.255.1") == "pop"
    assert found(table, "10.21.0.1") is None


def test_most_specific_cidr_wins() -> None:
    """Of overlapping networks the longest prefix wins, and an exact address beats both."""
    table = ClientTable([client("10.0.0.0/8", "wide"), client("10.1.2.0/24", "narrow"),
                         client("10.1.0.0/16", "middle"), client("10.1.2.3", "exact")])
    assert found(table, "10.1.2.3") == "exact"
    assert found(table, "10.1.2.4") == "narrow"
    assert found(table, "10.1.3.4") == "middle"
    assert found(table, "10.9.9.9") == "wide"


def test_ipv6_cidr_and_scoped_source() -> None:
    """IPv6 networks match, also for a link-local source carrying a zone id."""
    table = ClientTable([client("2001:db8:100::/48", "v6net"), client("fe80::/64", "ll")])
    assert found(table, "2001:db8:100:5::1") == "v6net"
    assert found(table, "fe80::1%eth0") == "ll"
    assert found(table, "2001:db8:101::1") is None


def test_ipv4_mapped_ipv6_source_matches_ipv4_client() -> None:
    """A dual-stack socket reports ::ffff:a.b.c.d; it matches the IPv4 client (exact or CIDR)."""
    exact_only = ClientTable([client("192.0.2.1", "exact")])
    assert found(exact_only, "::ffff:192.0.2.1") == "exact"
    with_net = ClientTable([client("192.0.2.1", "exact"), client("198.51.100.0/24", "net")])
    assert found(with_net, "::ffff:192.0.2.1") == "exact"
    assert found(with_net, "::ffff:198.51.100.9") == "net"
    assert found(with_net, "::ffff:203.0.113.1") is None


def test_versions_do_not_cross_match() -> None:
    """An IPv4 network never matches an IPv6 source and vice versa."""
    table = ClientTable([client("0.0.0.0/0", "all4")])
    assert found(table, "2001:db8::1") is None
    table = ClientTable([client("::/0", "all6")])
    assert found(table, "192.0.2.1") is None


@pytest.mark.parametrize("host", ["", "not-an-ip", "192.0.2.256", "::g", "192.0.2.1 "])
def test_unknown_or_garbage_host_returns_none(host: str) -> None:
    """Unknown or unparseable source strings return None instead of raising."""
    table = ClientTable([client("192.0.2.1"), client("10.0.0.0/8")])
    assert table.find(host) is None


def test_empty_table_finds_nothing() -> None:
    """An empty table answers None for every address."""
    table = ClientTable()
    assert len(table) == 0
    assert table.find("192.0.2.1") is None and table.find("::ffff:192.0.2.1") is None


def test_invalid_address_is_skipped_with_a_log(caplog: pytest.LogCaptureFixture) -> None:
    """A NAS row with a bad address is logged and ignored; the others still load."""
    with caplog.at_level(logging.ERROR, logger="aaa.clients"):
        table = ClientTable([client("192.0.2.1", "good"), client("300.1.1.1", "bad"),
                             client("10.0.0.0/33", "badnet")])
    assert len(table) == 1
    assert found(table, "192.0.2.1") == "good"
    messages = [r.getMessage() for r in caplog.records]
    assert any("bad" in m and "300.1.1.1" in m for m in messages)
    assert any("badnet" in m and "10.0.0.0/33" in m for m in messages)


def test_replace_swaps_the_whole_table() -> None:
    """replace() drops clients that are gone and adds new ones in one step."""
    table = ClientTable([client("192.0.2.1", "old"), client("10.0.0.0/8", "oldnet")])
    table.replace([client("192.0.2.2", "new")])
    assert found(table, "192.0.2.1") is None and found(table, "10.1.1.1") is None
    assert found(table, "192.0.2.2") == "new"


def test_parse_network_names_bad_value() -> None:
    """parse_network raises ValueError naming the bad value; host bits are allowed."""
    assert str(parse_network(" 10.1.2.3/8 ")) == "10.0.0.0/8"
    with pytest.raises(ValueError, match="'nope' is not an IP address or CIDR"):
        parse_network("nope")


def test_nas_client_repr_hides_secret() -> None:
    """repr(), str() and formatting of a NasClient never reveal its shared secret."""
    c = client("192.0.2.1", "edge-1")
    for text in (repr(c), str(c), f"{c}", f"{c!r}", repr([c]), repr({"c": c})):
        assert "very-secret" not in text and "secret=" not in text
        assert "edge-1" in text


def test_thd_load_clients_reads_nas_rows(engine: Engine) -> None:
    """thd_load_clients turns every nas row into a NasClient with the secret as bytes."""
    with Session(engine) as session, session.begin():
        session.add_all([
            Nas(name="mt", address="192.0.2.1", secret="s1", vendor=Vendor.MIKROTIK,
                require_message_authenticator=False, coa_port=1700),
            Nas(name="pop", address="10.0.0.0/8", secret="s\u00e92", vendor=Vendor.CISCO),
        ])
    pool = DBPool(engine)
    clients = {c.name: c for c in pool.run_sync(thd_load_clients)}
    assert clients["mt"].secret == b"s1" and clients["mt"].vendor is Vendor.MIKROTIK
    assert clients["mt"].require_message_authenticator is False
    assert clients["mt"].coa_port == 1700
    assert clients["pop"].secret == "s\u00e92".encode()
    assert clients["pop"].require_message_authenticator is True
    table = ClientTable(clients.values())
    assert found(table, "10.2.3.4") == "pop" and found(table, "192.0.2.1") == "mt"


def test_scoped_source_matches_exact_link_local_client() -> None:
    """A link-local source with a zone id matches the exact client address without it."""
    table = ClientTable([client("fe80::1", "ll")])
    assert found(table, "fe80::1%eth0") == "ll"
