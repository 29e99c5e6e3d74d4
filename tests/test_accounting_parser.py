"""Accounting-Request packets to records: Gigawords, IPv6 prefixes, times, vendor call mapping."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest
from pyrad.packet import AcctPacket

from aaa.acct import (
    AcctParser,
    Unusable,
    counter64,
    ipv6_prefix,
    parse_call_time,
)
from aaa.clients import NasClient
from aaa.dictionary import load_dictionary
from aaa.vendors import PROFILES, CallAttributes, VendorProfile
from accounting.records import AcctRecord, AcctStatus, call_unique_id, session_unique_id
from core.db.models import Vendor
from tests.test_accounting_support import (
    SECRET,
    accounting_request,
    attr,
    session_packet,
    text,
    u32,
    vsa,
)

NOW = datetime(2024, 3, 4, 10, 0, 0, tzinfo=UTC)
CISCO = 9


def client(vendor: Vendor = Vendor.MIKROTIK, nas_id: int = 7) -> NasClient:
    return NasClient(id=nas_id, name="nas", address="127.0.0.1", secret=SECRET.encode(),
                     vendor=vendor, require_message_authenticator=False, coa_port=3799)


def decode(data: bytes) -> AcctPacket:
    return AcctPacket(packet=data, dict=load_dictionary(), secret=SECRET.encode())


@pytest.fixture(scope="module")
def parser() -> AcctParser:
    return AcctParser(load_dictionary())


def test_interim_with_gigawords_and_ipv6(parser: AcctParser) -> None:
    """Gigawords make 64-bit totals; IPv6 prefixes, ports and station ids are decoded."""
    prefix = bytes([0, 56]) + bytes.fromhex("20010db80002")
    pkt = decode(session_packet(
        1, 3, "alice", "81000001", session_time=3600, octets_in=(5 << 32) + 123,
        octets_out=(1 << 32) - 1, delay=4,
        extra=[attr(8, bytes([100, 64, 0, 7])), attr(97, bytes([0, 64]) +
                                                      bytes.fromhex("20010db800010000")),
               attr(123, prefix), attr(168, bytes.fromhex("20010db8000100000000000000000001")),
               text(31, "AA:BB:CC:DD:EE:FF"), text(30, "pppoe-srv"), u32(5, 15728640),
               text(87, "ether1.100"), u32(61, 15), u32(47, 99), u32(48, 101),
               u32(85, 120), text(50, "multi")]))
    r = parser.parse(client(), pkt, NOW)
    assert r.status == AcctStatus.INTERIM and r.user_name == "alice"
    assert r.input_octets == (5 << 32) + 123 and r.output_octets == (1 << 32) - 1
    assert r.gigawords
    assert (r.input_packets, r.output_packets, r.session_time) == (99, 101, 3600)
    assert r.framed_ip == "100.64.0.7"
    assert r.framed_ipv6_prefix == "2001:db8:1::/64"
    assert r.delegated_ipv6_prefix == "2001:db8:2::/56"
    assert r.framed_ipv6_address == "2001:db8:1::1"
    assert r.calling_station_id == "AA:BB:CC:DD:EE:FF" and r.called_station_id == "pppoe-srv"
    assert (r.nas_port, r.nas_port_id, r.nas_port_type) == (15728640, "ether1.100", "Ethernet")
    assert r.interim_interval == 120 and r.multi_session_id == "multi"
    assert r.event_at == NOW - timedelta(seconds=4) and r.received_at == NOW
    assert r.nas_identity == "10.0.0.1"
    assert r.unique_id == session_unique_id(7, "10.0.0.1", "81000001", "alice", "ether1.100",
                                            15728640)
    assert not r.event_timestamped
    assert r.call is None


def test_record_json_round_trip(parser: AcctParser) -> None:
    """A parsed record survives the spool's JSON form unchanged."""
    pkt = decode(session_packet(2, 2, "bob", "x", session_time=5, octets_in=1, octets_out=2,
                                extra=[u32(49, 11)]))
    r = parser.parse(client(), pkt, NOW)
    assert r.terminate_cause == "NAS-Reboot"
    assert AcctRecord.from_json(r.to_json()) == r


def test_event_timestamp_preferred_when_sane(parser: AcctParser) -> None:
    """Event-Timestamp is the event time, unless it is days away from our clock."""
    stamp = int((NOW - timedelta(seconds=30)).timestamp())
    pkt = decode(session_packet(3, 1, "alice", "s", delay=5, extra=[u32(55, stamp)]))
    assert parser.parse(client(), pkt, NOW).event_at == NOW - timedelta(seconds=30)
    pkt = decode(session_packet(3, 1, "alice", "s", delay=5, extra=[u32(55, 86400)]))
    assert parser.parse(client(), pkt, NOW).event_at == NOW - timedelta(seconds=5)


def test_accounting_on_off_and_nas_identifier(parser: AcctParser) -> None:
    """Accounting-On/Off need no session id; NAS-Identifier names the NAS without an IP."""
    pkt = decode(accounting_request(4, [u32(40, 7), text(32, "bras-1")]))
    r = parser.parse(client(), pkt, NOW)
    assert (r.status, r.nas_identity, r.is_nas_event) == (AcctStatus.ON, "bras-1", True)
    pkt = decode(accounting_request(5, [u32(40, 8)]))
    assert parser.parse(client(), pkt, NOW).nas_identity == "127.0.0.1"


@pytest.mark.parametrize(("attrs", "reason"), [
    ([text(1, "alice"), text(44, "s")], "no Acct-Status-Type"),
    ([u32(40, 1), text(1, "alice")], "no Acct-Session-Id"),
    ([u32(40, 15), text(44, "s")], "is not recorded"),
])
def test_unusable_requests(parser: AcctParser, attrs: list[bytes], reason: str) -> None:
    """Requests without status or session id, or of an unrecorded type, are refused clearly."""
    with pytest.raises(Unusable, match=reason):
        parser.parse(client(), decode(accounting_request(6, attrs)), NOW)


def test_odd_bytes_never_raise(parser: AcctParser) -> None:
    """Invalid UTF-8 and wrong-length integers and prefixes are kept or dropped, never raised."""
    pkt = decode(accounting_request(7, [
        u32(40, 3), attr(1, b"al\xffice"), attr(44, b"\xfe\xfe"), attr(46, b"\x01\x02"),
        attr(97, bytes([0, 200, 1])), attr(8, b"\x01\x02\x03\x04\x05")]))
    r = parser.parse(client(), pkt, NOW)
    assert r.user_name == "al\\xffice" and r.session_id == "\\xfe\\xfe"
    assert r.session_time is None and r.framed_ipv6_prefix is None and r.framed_ip is None


def test_helpers() -> None:
    """counter64, ipv6_prefix and parse_call_time on edge values."""
    assert counter64(struct.pack("!I", 5), struct.pack("!I", 2)) == (2 << 32) + 5
    assert counter64(None, None) is None
    assert counter64(None, struct.pack("!I", 1)) == 1 << 32
    assert ipv6_prefix(bytes([0, 0])) == "::/0"
    assert ipv6_prefix(bytes([0, 48]) + bytes.fromhex("20010db8ffff")) == "2001:db8:ffff::/48"
    fmts = PROFILES[Vendor.CISCO].call_attributes.time_formats  # type: ignore[union-attr]
    assert parse_call_time("*10:20:30.123 UTC Mon Mar 4 2024", fmts) == \
        datetime(2024, 3, 4, 10, 20, 30, 123000, tzinfo=UTC)
    assert parse_call_time(".10:20:30 GMT Mon Mar 4 2024", fmts) == \
        datetime(2024, 3, 4, 10, 20, 30, tzinfo=UTC)
    assert parse_call_time("10:20:30.000 CET Mon Mar 4 2024", fmts) is None
    assert parse_call_time("garbage", fmts) is None


def cisco_leg(identifier: int, status: int, origin: str, *, stop: bool = False) -> bytes:
    attrs = [u32(40, status), text(1, "4930123456"), text(44, f"0000ABCD-{origin}"),
             text(31, "4930123456"), text(30, "4940555000"), attr(4, bytes([10, 9, 9, 9])),
             vsa(CISCO, 1, b"call-id=A1B2C3@10.9.9.9"), vsa(CISCO, 1, b"session-protocol=sipv2"),
             vsa(CISCO, 24, b"h323-conf-id=4A2B1C0D 11223344 55667788 99AABBCC"),
             vsa(CISCO, 26, f"h323-call-origin={origin}".encode()),
             vsa(CISCO, 25, b"h323-setup-time=*10:00:00.000 UTC Mon Mar 4 2024")]
    if stop:
        attrs += [u32(46, 88),
                  vsa(CISCO, 28, b"h323-connect-time=10:00:05.000 UTC Mon Mar 4 2024"),
                  vsa(CISCO, 29, b"h323-disconnect-time=10:01:33.000 UTC Mon Mar 4 2024"),
                  vsa(CISCO, 30, b"h323-disconnect-cause=10")]
    return accounting_request(identifier, attrs)


def test_cisco_h323_call(parser: AcctParser) -> None:
    """A Cisco gateway's Stop with h323 VSAs and Cisco-AVPair call-id becomes call facts."""
    r = parser.parse(client(Vendor.CISCO), decode(cisco_leg(8, 2, "originate", stop=True)), NOW)
    assert r.call is not None
    c = r.call
    assert c.call_id == "A1B2C3@10.9.9.9"
    assert c.conf_id == "4A2B1C0D 11223344 55667788 99AABBCC"
    assert (c.caller, c.callee, c.leg, c.billable) == ("4930123456", "4940555000",
                                                       "originate", True)
    assert c.setup_time == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    assert c.connect_time == datetime(2024, 3, 4, 10, 0, 5, tzinfo=UTC)
    assert c.disconnect_time == datetime(2024, 3, 4, 10, 1, 33, tzinfo=UTC)
    assert c.disconnect_cause == "10" and r.session_time == 88
    assert r.unique_id == call_unique_id(7, "10.9.9.9", "A1B2C3@10.9.9.9")
    answer = parser.parse(client(Vendor.CISCO), decode(cisco_leg(9, 1, "answer")), NOW)
    assert answer.unique_id == r.unique_id and answer.call is not None
    assert not answer.call.billable


def test_cisco_data_session_is_not_a_call(parser: AcctParser) -> None:
    """A Cisco BNG's PPP session (Cisco-AVPair without call-id) stays a data session."""
    pkt = decode(session_packet(10, 3, "alice", "s", session_time=1,
                                extra=[vsa(CISCO, 1, b"connect-progress=LAN Ses Up")]))
    assert parser.parse(client(Vendor.CISCO), pkt, NOW).call is None


def test_generic_pbx_voice_marker(parser: AcctParser) -> None:
    """A plain-RFC PBX marks calls with Service-Type = Voice; the mapping is data."""
    pkt = decode(session_packet(11, 2, "4930123456", "pbx-1", session_time=42,
                                extra=[u32(6, 12), text(30, "112"), text(31, "4930123456")]))
    r = parser.parse(client(Vendor.GENERIC), pkt, NOW)
    assert r.call is not None and r.call.callee == "112" and r.call.billable
    pkt = decode(session_packet(12, 2, "alice", "ppp-1", session_time=42, extra=[u32(6, 2)]))
    assert parser.parse(client(Vendor.GENERIC), pkt, NOW).call is None


def test_profile_mapping_is_data() -> None:
    """A new vendor's calls need only a profile entry: here a made-up AVPair key."""
    profiles = {Vendor.JUNIPER: VendorProfile(
        rate_limit=(), disconnect_keys=(),
        call_attributes=CallAttributes(markers=("Cisco-AVPair:x-call",),
                                       call_id=("Cisco-AVPair:x-call",),
                                       callee=("Cisco-AVPair:x-dest",)))}
    parser = AcctParser(load_dictionary(), profiles)
    pkt = decode(session_packet(13, 2, "u", "s", extra=[vsa(CISCO, 1, b"x-call=77"),
                                                         vsa(CISCO, 1, b"x-dest=999")]))
    r = parser.parse(client(Vendor.JUNIPER), pkt, NOW)
    assert r.call is not None and (r.call.call_id, r.call.callee) == ("77", "999")


def test_ipv4_text_is_what_ipaddress_gives() -> None:
    """The C dotted quad (inet_ntoa) equals str(IPv4Address) for any 4 octets, else None."""
    import ipaddress
    import random

    from aaa.acct import _ipv4

    rng = random.Random(7)
    samples = [bytes(4), b"\xff" * 4, b"\x0a\x00\x00\x01"] + [
        rng.randbytes(4) for _ in range(20_000)]
    for raw in samples:
        assert _ipv4(raw) == str(ipaddress.IPv4Address(raw))
    assert _ipv4(b"\x01\x02\x03") is None and _ipv4(None) is None
