"""pyrad's AcctPacket, with pyrad's DecodePacket loop written for speed; same result.

On the accounting port pyrad's decode was the largest single cost of a
request (bench/acct_bench.py, py-spy): per attribute it slices the rest of
the datagram (``packet = packet[attrlen:]``, quadratic in the number of
attributes), unpacks two octets with struct, and asks the dictionary
whether the code is a TLV through two method calls and a bidict lookup.
:class:`AcctRequestPacket` keeps pyrad's exact algorithm (same checks in the
same order, same PacketError messages, Vendor-Specific and TLV attributes
still decoded by pyrad's own ``_PktDecodeVendorAttribute`` and
``_PktDecodeTlvAttribute``) but walks the datagram by offset and answers the
TLV question from a set computed once per dictionary. Everything else is
pyrad's AcctPacket. tests/test_acct_decode.py checks it against pyrad on
random and malformed datagrams: same attributes in the same order, same
header fields, same flags, same errors.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any

from pyrad import packet as P
from pyrad.dictionary import Dictionary

_HEADER = struct.Struct("!BBH16s")
VENDOR_SPECIFIC = 26
MESSAGE_AUTHENTICATOR = 80

_TLV_CODES: dict[int, tuple[Dictionary, frozenset[int]]] = {}


def tlv_codes(dictionary: Dictionary | None) -> frozenset[int]:
    """Top-level attribute codes pyrad's ``_PktIsTlvAttribute`` says are TLVs."""
    if dictionary is None:
        return frozenset()
    cached = _TLV_CODES.get(id(dictionary))
    if cached is not None and cached[0] is dictionary:
        return cached[1]
    codes = frozenset(
        code for code, name in dictionary.attrindex.backward.items()
        if isinstance(code, int) and getattr(dictionary.attributes.get(name), "type", None)
        == "tlv")
    _TLV_CODES[id(dictionary)] = (dictionary, codes)
    return codes


class AcctRequestPacket(P.AcctPacket):
    """An AcctPacket whose DecodePacket is pyrad's, walked by offset."""

    def DecodePacket(self, packet: bytes) -> None:
        try:
            (self.code, self.id, length, self.authenticator) = _HEADER.unpack_from(packet)
        except struct.error:
            raise P.PacketError("Packet header is corrupt") from None
        if length < 20 or len(packet) < length:
            raise P.PacketError("Packet has invalid length")
        if length > 8192:
            raise P.PacketError(f"Packet length is too long ({length})")
        packet = packet[:length]
        self.raw_packet = packet
        self.clear()
        tlv = tlv_codes(getattr(self, "dict", None))
        get = OrderedDict.get
        put = OrderedDict.__setitem__
        pos = 20
        while pos < length:
            if pos + 2 > length:
                raise P.PacketError("Attribute header is corrupt")
            key = packet[pos]
            attrlen = packet[pos + 1]
            if attrlen < 2:
                raise P.PacketError(f"Attribute length is too small ({attrlen})")
            value = packet[pos + 2:pos + attrlen]
            pos += attrlen
            if key == VENDOR_SPECIFIC:
                for sub_key, sub_value in self._PktDecodeVendorAttribute(value):
                    self.setdefault(sub_key, []).append(sub_value)
                continue
            if key == MESSAGE_AUTHENTICATOR:
                self.message_authenticator = True
            elif key in tlv:
                self._PktDecodeTlvAttribute(key, value)
                continue
            values: Any = get(self, key)
            if values is None:
                put(self, key, [value])
            else:
                values.append(value)
