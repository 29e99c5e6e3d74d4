"""Structural packet checks (aaa.wire) against RFC 2865 sections 3, 5 and 5.26.

Malformed packets are built octet by octet, so each test shows exactly which
rule it breaks; valid ones come from pyrad, as a NAS would send them.
"""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrad import packet as P

from aaa.dictionary import load_dictionary
from aaa.wire import (
    MESSAGE_AUTHENTICATOR,
    PROXY_STATE,
    RFC_MAX_PACKET,
    VENDOR_SPECIFIC,
    Malformed,
    attribute_values,
    check_packet,
)

DICT = load_dictionary()
AUTH = bytes(range(16))


def build(attrs: bytes = b"", *, code: int = P.AccessRequest, ident: int = 1,
          length: int | None = None) -> bytes:
    """Header + attributes, with the Length field computed unless given."""
    size = 20 + len(attrs) if length is None else length
    return struct.pack("!BBH", code, ident, size) + AUTH + attrs


def attr(code: int, value: bytes) -> bytes:
    return bytes([code, 2 + len(value)]) + value


def vsa(vendor: int, inner: bytes) -> bytes:
    return attr(VENDOR_SPECIFIC, struct.pack("!L", vendor) + inner)


USER = attr(1, b"alice")


def pyrad_request() -> bytes:
    pkt = P.AuthPacket(code=P.AccessRequest, id=3, secret=b"secret", dict=DICT,
                       authenticator=os.urandom(16))
    pkt["User-Name"] = "alice"
    pkt["User-Password"] = pkt.PwCrypt("password")
    pkt["NAS-IP-Address"] = "192.0.2.1"
    pkt["NAS-Port"] = 7
    pkt["Cisco-AVPair"] = "client-mac-address=0011.2233.4455"
    pkt.AddAttribute("Proxy-State", b"a")
    pkt.AddAttribute("Proxy-State", b"b")
    pkt.add_message_authenticator()
    return pkt.RequestPacket()


# -- valid packets ----------------------------------------------------------------------


def test_valid_pyrad_packet_passes_unchanged() -> None:
    """A packet pyrad builds (MA, VSA, Proxy-State, integers) passes and comes back as is."""
    raw = pyrad_request()
    assert check_packet(raw) == raw


@pytest.mark.parametrize("attrs", [b"", USER, USER + attr(PROXY_STATE, b"x"),
                                   vsa(9, attr(1, b"a=b")),
                                   vsa(9, attr(1, b"a=b") + attr(1, b"c=d")),
                                   attr(MESSAGE_AUTHENTICATOR, b"\x00" * 16),
                                   attr(4, b"\xc0\x00\x02\x01"),
                                   attr(1, b"x" * 253)])
def test_valid_shapes_pass(attrs: bytes) -> None:
    """Well-formed packets, including an empty one and a 253-octet value, pass."""
    raw = build(attrs)
    assert check_packet(raw) == raw


def test_padding_after_length_is_trimmed() -> None:
    """Octets past the Length field are padding (RFC 2865 section 3) and are cut off."""
    raw = build(USER)
    assert check_packet(raw + b"\x00" * 7 + b"junk") == raw


def test_packet_of_exactly_max_size_passes() -> None:
    """A packet exactly max_size long is allowed; the limit is inclusive."""
    attrs = b"".join(attr(1, b"x" * 200) for _ in range(5))
    raw = build(attrs)
    assert check_packet(raw, max_size=len(raw)) == raw


# -- header -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4, 19])
def test_shorter_than_header_is_malformed(size: int) -> None:
    """Fewer than 20 octets cannot be a RADIUS packet."""
    with pytest.raises(Malformed, match="shorter than a RADIUS header"):
        check_packet(build(USER)[:size])


@pytest.mark.parametrize("length", [0, 1, 19])
def test_length_field_below_header_is_malformed(length: int) -> None:
    """A Length field below 20 is out of range."""
    with pytest.raises(Malformed, match=f"Length field {length} is out of range"):
        check_packet(build(USER, length=length))


def test_length_field_beyond_received_is_malformed() -> None:
    """A Length field larger than the datagram means it was truncated in transit."""
    raw = build(USER, length=20 + len(USER) + 1)
    with pytest.raises(Malformed, match="exceeds the 27 octets received"):
        check_packet(raw)


def test_length_field_beyond_max_is_malformed() -> None:
    """A Length field above the size limit is out of range, whatever the datagram holds."""
    with pytest.raises(Malformed, match="Length field 5000 is out of range"):
        check_packet(build(USER, length=5000))
    with pytest.raises(Malformed, match="Length field 65535 is out of range"):
        check_packet(build(USER, length=65535), max_size=1000)


def test_oversize_datagram_is_malformed() -> None:
    """A datagram longer than max_size is refused before anything is parsed."""
    raw = build(USER) + b"\x00" * RFC_MAX_PACKET
    with pytest.raises(Malformed, match="exceeds the 4096 octet limit"):
        check_packet(raw)


# -- attributes --------------------------------------------------------------------------


@pytest.mark.parametrize("alen", [0, 1, 2])
def test_attribute_length_below_three_is_malformed(alen: int) -> None:
    """Attribute lengths 0, 1 and 2 are invalid (a zero length would loop a naive parser)."""
    attrs = USER + bytes([1, alen]) + b"xxxx"
    with pytest.raises(Malformed, match=f"invalid length {alen}"):
        check_packet(build(attrs))


def test_attribute_overrunning_the_packet_is_malformed() -> None:
    """An attribute whose length runs past the Length field is malformed."""
    attrs = USER + bytes([1, 10]) + b"abc"
    with pytest.raises(Malformed, match="overruns the packet"):
        check_packet(build(attrs))


def test_attribute_overrunning_length_into_padding_is_malformed() -> None:
    """Octets past Length are padding, not attribute data, even if present in the datagram."""
    attrs = USER + bytes([1, 10]) + b"abc"
    raw = build(attrs) + b"defghij"
    with pytest.raises(Malformed, match="overruns"):
        check_packet(raw)


def test_truncated_attribute_header_is_malformed() -> None:
    """A lone octet where an attribute header should be is malformed."""
    with pytest.raises(Malformed, match="truncated attribute header"):
        check_packet(build(USER + b"\x01"))


@pytest.mark.parametrize("size", [0, 1, 15, 17, 32])
def test_message_authenticator_of_wrong_size_is_malformed(size: int) -> None:
    """Message-Authenticator must carry exactly 16 octets (RFC 3579 section 3.2)."""
    ma = bytes([MESSAGE_AUTHENTICATOR, 2 + size]) + b"\x00" * size
    with pytest.raises(Malformed):
        check_packet(build(USER + ma))


@pytest.mark.parametrize(("code", "size"), [(4, 3), (5, 8), (40, 2), (8, 16), (27, 5)])
def test_fixed_length_integer_and_address_attributes_are_checked(code: int, size: int) -> None:
    """Integer and IPv4 address attributes must carry exactly 4 octets."""
    with pytest.raises(Malformed, match="expected 4"):
        check_packet(build(USER + attr(code, b"\x01" * size)))


# -- Vendor-Specific ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3])
def test_vsa_shorter_than_vendor_id_is_malformed(size: int) -> None:
    """A Vendor-Specific value shorter than the 4-octet Vendor-Id is malformed."""
    with pytest.raises(Malformed, match="shorter than a vendor id"):
        check_packet(build(attr(VENDOR_SPECIFIC, b"\x00" * size)))


def test_vsa_without_sub_attribute_is_malformed() -> None:
    """A Vendor-Specific with only a Vendor-Id carries nothing and is malformed."""
    with pytest.raises(Malformed, match="no sub-attribute"):
        check_packet(build(vsa(9, b"")))


@pytest.mark.parametrize("sub_len", [0, 1])
def test_vsa_sub_attribute_length_zero_or_one_is_malformed(sub_len: int) -> None:
    """pyrad #234: a vendor sub-attribute of length 0 looped forever; it is refused first."""
    with pytest.raises(Malformed, match=f"invalid length {sub_len}"):
        check_packet(build(vsa(9, bytes([1, sub_len]) + b"abc")))


def test_vsa_sub_attribute_overrun_is_malformed() -> None:
    """A vendor sub-attribute running past its Vendor-Specific is malformed."""
    with pytest.raises(Malformed, match="invalid length 9"):
        check_packet(build(vsa(9, attr(1, b"a=b") + bytes([1, 9]) + b"abc")))


def test_vsa_truncated_sub_attribute_header_is_malformed() -> None:
    """One stray octet after the last vendor sub-attribute is malformed."""
    with pytest.raises(Malformed, match="truncated vendor sub-attribute"):
        check_packet(build(vsa(9, attr(1, b"a=b") + b"\x01")))


def test_second_vsa_is_checked_too() -> None:
    """Every Vendor-Specific is walked, not only the first."""
    with pytest.raises(Malformed):
        check_packet(build(vsa(9, attr(1, b"ok")) + vsa(14988, b"\x08\x00")))


def test_malformed_is_a_value_error() -> None:
    """Malformed is a ValueError, so generic input-validation handlers catch it."""
    assert issubclass(Malformed, ValueError)


# -- attribute_values --------------------------------------------------------------------


def test_attribute_values_returns_wire_order() -> None:
    """attribute_values lists one attribute's raw values in the order they were sent."""
    raw = build(attr(PROXY_STATE, b"one") + USER + attr(PROXY_STATE, b"two")
                + attr(PROXY_STATE, b"\x00three"))
    assert attribute_values(raw, PROXY_STATE) == [b"one", b"two", b"\x00three"]
    assert attribute_values(raw, 1) == [b"alice"]
    assert attribute_values(raw, 80) == []


# -- property ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_accepted_or_malformed(data: bytes) -> None:
    """Any input either raises Malformed or yields a packet pyrad decodes and a re-check keeps."""
    try:
        checked = check_packet(data)
    except Malformed:
        return
    assert check_packet(checked) == checked
    assert len(checked) == struct.unpack("!H", checked[2:4])[0]
    try:
        P.Packet(packet=checked, dict=DICT)
    except P.PacketError:
        pass  # a tlv with broken inner lengths: the listener drops it as undecodable


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.binary(min_size=1, max_size=40)),
                max_size=8))
def test_well_formed_attribute_lists_pass(attrs: list[tuple[int, bytes]]) -> None:
    """Any list of attributes with correct lengths passes unless a fixed-size or VSA rule bites."""
    raw = build(b"".join(attr(code, value) for code, value in attrs))
    try:
        assert check_packet(raw) == raw
    except Malformed as exc:
        assert any(code in (4, 5, 6, 7, 8, 26, 27, 28, 40, 41, 42, 43, 46, 47, 48, 49, 52, 53,
                            80, 85) for code, _ in attrs), str(exc)
