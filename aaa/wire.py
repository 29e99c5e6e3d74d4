"""Structural checks on a raw RADIUS datagram before pyrad decodes it.

pyrad decodes what it is given; some shapes have sent decoders into loops or
exceptions (pyrad #234: a zero-length Vendor-Specific sub-attribute). Walking
the attribute list once here, with the rules of RFC 2865 sections 3 and 5,
means everything pyrad sees is well formed and every drop has a reason.
"""

from __future__ import annotations

import struct

HEADER_LEN = 20
RFC_MAX_PACKET = 4096
VENDOR_SPECIFIC = 26
MESSAGE_AUTHENTICATOR = 80
PROXY_STATE = 33

# Attributes whose value has one fixed length (RFC 2865/2869); anything else is malformed.
FIXED_LENGTHS = {MESSAGE_AUTHENTICATOR: 16, 4: 4, 5: 4, 6: 4, 7: 4, 8: 4, 27: 4, 28: 4, 40: 4,
                 41: 4, 42: 4, 43: 4, 46: 4, 47: 4, 48: 4, 49: 4, 52: 4, 53: 4, 85: 4}


class Malformed(ValueError):
    """The datagram is not a well-formed RADIUS packet; the message says why."""


def check_packet(data: bytes, max_size: int = RFC_MAX_PACKET) -> bytes:
    """Return the packet trimmed to its Length field, or raise Malformed.

    Octets past Length are padding (RFC 2865 section 3) and are ignored.
    """
    if len(data) < HEADER_LEN:
        raise Malformed(f"datagram of {len(data)} octets is shorter than a RADIUS header")
    if len(data) > max_size:
        raise Malformed(f"datagram of {len(data)} octets exceeds the {max_size} octet limit")
    (length,) = struct.unpack_from("!H", data, 2)
    if length < HEADER_LEN or length > max_size:
        raise Malformed(f"Length field {length} is out of range")
    if length > len(data):
        raise Malformed(f"Length field {length} exceeds the {len(data)} octets received")
    data = data[:length]
    pos = HEADER_LEN
    while pos < length:
        if length - pos < 2:
            raise Malformed(f"truncated attribute header at offset {pos}")
        code, alen = data[pos], data[pos + 1]
        if alen < 3:
            raise Malformed(f"attribute {code} at offset {pos} has invalid length {alen}")
        if pos + alen > length:
            raise Malformed(f"attribute {code} at offset {pos} overruns the packet")
        fixed = FIXED_LENGTHS.get(code)
        if fixed is not None and alen - 2 != fixed:
            raise Malformed(f"attribute {code} has length {alen - 2}, expected {fixed}")
        if code == VENDOR_SPECIFIC:
            _check_vsa(data[pos + 2:pos + alen], pos)
        pos += alen
    return data


def _check_vsa(value: bytes, offset: int) -> None:
    if len(value) < 4:
        raise Malformed(f"Vendor-Specific at offset {offset} is shorter than a vendor id")
    if len(value) == 4:
        raise Malformed(f"Vendor-Specific at offset {offset} carries no sub-attribute")
    pos = 4
    while pos < len(value):
        if len(value) - pos < 2:
            raise Malformed(f"truncated vendor sub-attribute at offset {offset}")
        sub_len = value[pos + 1]
        if sub_len < 3 or pos + sub_len > len(value):
            raise Malformed(f"vendor sub-attribute {value[pos]} at offset {offset} has "
                            f"invalid length {sub_len}")
        pos += sub_len


def attribute_values(data: bytes, code: int) -> list[bytes]:
    """Raw values of one top-level attribute in wire order, from a checked packet.

    Used for Proxy-State, whose order in the reply must be the order received
    (RFC 2865 section 5.33) whatever grouping the decoder does.
    """
    out = []
    pos = HEADER_LEN
    while pos < len(data):
        alen = data[pos + 1]
        if data[pos] == code:
            out.append(data[pos + 2:pos + alen])
        pos += alen
    return out
