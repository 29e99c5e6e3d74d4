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
USER_NAME = 1
USER_PASSWORD = 2
CHAP_PASSWORD = 3
EAP_MESSAGE = 79
ACCESS_REQUEST = 1

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


def attribute_combination_problem(data: bytes) -> str | None:
    """Why a checked packet's attribute set is one a server must not act on, or None.

    The combinations FreeRADIUS refuses (``rad_packet_ok`` and the decoders):
    more than one Message-Authenticator (RFC 3579 3.2: only one can be the
    signature; a second could carry anything); in an Access-Request, more than
    one User-Name, User-Password or CHAP-Password (RFC 2865 5.44: "0-1"), both
    User-Password and CHAP-Password (RFC 2865 4.1: MUST NOT), EAP-Message with
    either password attribute (RFC 3579 3.1: the EAP method carries the
    credentials) and EAP-Message without Message-Authenticator (RFC 3579 3.3:
    silently discard). All are dropped, never answered: an answer would tell
    the sender which of two conflicting credentials was believed.
    """
    counts: dict[int, int] = {}
    pos, end = HEADER_LEN, len(data)
    while pos < end:
        code = data[pos]
        if code in _COUNTED:
            counts[code] = counts.get(code, 0) + 1
        pos += data[pos + 1]
    if counts.get(MESSAGE_AUTHENTICATOR, 0) > 1:
        return "more than one Message-Authenticator (RFC 3579 3.2)"
    if data[0] != ACCESS_REQUEST:
        return None
    for code, name in ((USER_NAME, "User-Name"), (USER_PASSWORD, "User-Password"),
                       (CHAP_PASSWORD, "CHAP-Password")):
        if counts.get(code, 0) > 1:
            return f"more than one {name} (RFC 2865 5.44)"
    if USER_PASSWORD in counts and CHAP_PASSWORD in counts:
        return "both User-Password and CHAP-Password (RFC 2865 4.1)"
    if EAP_MESSAGE in counts:
        if USER_PASSWORD in counts or CHAP_PASSWORD in counts:
            return "EAP-Message together with a User-Password or CHAP-Password (RFC 3579 3.1)"
        if MESSAGE_AUTHENTICATOR not in counts:
            return "EAP-Message without Message-Authenticator (RFC 3579 3.3)"
    return None


_COUNTED = frozenset({MESSAGE_AUTHENTICATOR, USER_NAME, USER_PASSWORD, CHAP_PASSWORD,
                      EAP_MESSAGE})
