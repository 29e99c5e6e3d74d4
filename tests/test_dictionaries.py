"""Tests of the RADIUS dictionaries shipped in conf/dictionaries, loaded with pyrad."""

from __future__ import annotations

import logging
import re
import struct
from pathlib import Path

import pytest
from pyrad import packet
from pyrad.dictionary import Dictionary

DICT_DIR = Path(__file__).resolve().parent.parent / "conf" / "dictionaries"
TOP = DICT_DIR / "dictionary"

SECRET = b"testing123"
REQUEST_AUTHENTICATOR = bytes(range(16))

INCLUDE_RE = re.compile(r"^\s*\$INCLUDE(-?)\s+(\S+)", re.IGNORECASE)


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    return Dictionary(str(TOP))


# (name, code, type) of standard attributes, one or more from each RFC file
STANDARD_ATTRIBUTES = [
    # RFC 2865
    ("User-Name", 1, "string"),
    ("User-Password", 2, "string"),
    ("CHAP-Password", 3, "octets"),
    ("NAS-IP-Address", 4, "ipaddr"),
    ("Service-Type", 6, "integer"),
    ("Framed-Protocol", 7, "integer"),
    ("Framed-IP-Address", 8, "ipaddr"),
    ("Filter-Id", 11, "string"),
    ("Reply-Message", 18, "string"),
    ("Class", 25, "octets"),
    ("Session-Timeout", 27, "integer"),
    ("Calling-Station-Id", 31, "string"),
    ("NAS-Identifier", 32, "string"),
    ("Proxy-State", 33, "octets"),
    ("CHAP-Challenge", 60, "octets"),
    ("NAS-Port-Type", 61, "integer"),
    # RFC 2866
    ("Acct-Status-Type", 40, "integer"),
    ("Acct-Input-Octets", 42, "integer"),
    ("Acct-Output-Octets", 43, "integer"),
    ("Acct-Session-Id", 44, "string"),
    ("Acct-Session-Time", 46, "integer"),
    ("Acct-Terminate-Cause", 49, "integer"),
    ("Acct-Multi-Session-Id", 50, "string"),
    # RFC 2867
    ("Acct-Tunnel-Connection", 68, "string"),
    # RFC 2868
    ("Tunnel-Type", 64, "integer"),
    ("Tunnel-Password", 69, "string"),
    ("Tunnel-Private-Group-Id", 81, "string"),
    # RFC 2869
    ("Acct-Input-Gigawords", 52, "integer"),
    ("Acct-Output-Gigawords", 53, "integer"),
    ("Event-Timestamp", 55, "date"),
    ("Connect-Info", 77, "string"),
    ("EAP-Message", 79, "octets"),
    ("Message-Authenticator", 80, "octets"),
    ("Acct-Interim-Interval", 85, "integer"),
    ("NAS-Port-Id", 87, "string"),
    ("Framed-Pool", 88, "string"),
    # RFC 3162
    ("NAS-IPv6-Address", 95, "ipv6addr"),
    ("Framed-Interface-Id", 96, "ifid"),
    ("Framed-IPv6-Prefix", 97, "ipv6prefix"),
    ("Framed-IPv6-Pool", 100, "string"),
    # RFC 3576 / RFC 5176
    ("Error-Cause", 101, "integer"),
    # RFC 4072
    ("EAP-Key-Name", 102, "octets"),
    # RFC 4372
    ("Chargeable-User-Identity", 89, "octets"),
    # RFC 4675
    ("Egress-VLANID", 56, "integer"),
    # RFC 4818
    ("Delegated-IPv6-Prefix", 123, "ipv6prefix"),
    # RFC 4849
    ("NAS-Filter-Rule", 92, "string"),
    # RFC 6911
    ("Framed-IPv6-Address", 168, "ipv6addr"),
    ("DNS-Server-IPv6-Address", 169, "ipv6addr"),
    ("Delegated-IPv6-Prefix-Pool", 171, "string"),
    # accel-ppp / ABillS rate limits (not vendor attributes)
    ("PPPD-Upstream-Speed-Limit", 230, "integer"),
    ("PPPD-Downstream-Speed-Limit", 231, "integer"),
]

# (name, vendor, code, type) of vendor attributes
VENDOR_ATTRIBUTES = [
    ("MS-CHAP-Response", "Microsoft", 1, "octets"),
    ("MS-CHAP-Error", "Microsoft", 2, "string"),
    ("MS-CHAP-NT-Enc-PW", "Microsoft", 6, "octets"),
    ("MS-MPPE-Encryption-Policy", "Microsoft", 7, "integer"),
    ("MS-MPPE-Encryption-Types", "Microsoft", 8, "integer"),
    ("MS-CHAP-Challenge", "Microsoft", 11, "octets"),
    ("MS-MPPE-Send-Key", "Microsoft", 16, "octets"),
    ("MS-MPPE-Recv-Key", "Microsoft", 17, "octets"),
    ("MS-CHAP2-Response", "Microsoft", 25, "octets"),
    ("MS-CHAP2-Success", "Microsoft", 26, "octets"),
    ("MS-Primary-DNS-Server", "Microsoft", 28, "ipaddr"),
    ("Mikrotik-Recv-Limit", "Mikrotik", 1, "integer"),
    ("Mikrotik-Xmit-Limit", "Mikrotik", 2, "integer"),
    ("Mikrotik-Group", "Mikrotik", 3, "string"),
    ("Mikrotik-Rate-Limit", "Mikrotik", 8, "string"),
    ("Mikrotik-Total-Limit", "Mikrotik", 17, "integer"),
    ("Mikrotik-Address-List", "Mikrotik", 19, "string"),
    ("Mikrotik-Delegated-IPv6-Pool", "Mikrotik", 22, "string"),
    ("Cisco-AVPair", "Cisco", 1, "string"),
    ("Cisco-NAS-Port", "Cisco", 2, "string"),
    ("h323-remote-address", "Cisco", 23, "string"),
    ("h323-conf-id", "Cisco", 24, "string"),
    ("h323-setup-time", "Cisco", 25, "string"),
    ("h323-call-origin", "Cisco", 26, "string"),
    ("h323-call-type", "Cisco", 27, "string"),
    ("h323-connect-time", "Cisco", 28, "string"),
    ("h323-disconnect-time", "Cisco", 29, "string"),
    ("h323-disconnect-cause", "Cisco", 30, "string"),
    ("h323-voice-quality", "Cisco", 31, "string"),
    ("h323-gw-id", "Cisco", 33, "string"),
    ("h323-credit-amount", "Cisco", 101, "string"),
    ("h323-credit-time", "Cisco", 102, "string"),
    ("h323-return-code", "Cisco", 103, "string"),
    ("h323-prompt-id", "Cisco", 104, "string"),
    ("h323-billing-model", "Cisco", 109, "string"),
    ("h323-currency", "Cisco", 110, "string"),
    ("Cisco-Disconnect-Cause", "Cisco", 195, "integer"),
    ("Juniper-Local-User-Name", "Juniper", 1, "string"),
    ("Juniper-Junosspace-Profile", "Juniper", 11, "string"),
    ("ERX-Virtual-Router-Name", "ERX", 1, "string"),
    ("ERX-Primary-Dns", "ERX", 4, "ipaddr"),
    ("ERX-Secondary-Dns", "ERX", 5, "ipaddr"),
    ("ERX-Ingress-Policy-Name", "ERX", 10, "string"),
    ("ERX-Egress-Policy-Name", "ERX", 11, "string"),
    ("ERX-Qos-Profile-Name", "ERX", 26, "string"),
    ("ERX-Service-Activate", "ERX", 65, "string"),
    ("ERX-Service-Deactivate", "ERX", 66, "string"),
    ("ERX-IPv6-NdRa-Prefix", "ERX", 129, "ipv6prefix"),
    ("Accel-VRF-Name", "Accel-PPP", 1, "string"),
    ("RP-Upstream-Speed-Limit", "Roaring-Penguin", 1, "integer"),
    ("RP-Downstream-Speed-Limit", "Roaring-Penguin", 2, "integer"),
    ("ADSL-Agent-Circuit-Id", "ADSL-Forum", 1, "octets"),
    ("ADSL-Agent-Remote-Id", "ADSL-Forum", 2, "octets"),
    ("Actual-Data-Rate-Downstream", "ADSL-Forum", 130, "integer"),
]

VENDOR_IDS = {
    "Microsoft": 311,
    "Mikrotik": 14988,
    "Cisco": 9,
    "Juniper": 2636,
    "ERX": 4874,
    "Accel-PPP": 55999,
    "Roaring-Penguin": 10055,
    "ADSL-Forum": 3561,
}

# (attribute, value name, number)
NAMED_VALUES = [
    ("Acct-Status-Type", "Start", 1),
    ("Acct-Status-Type", "Stop", 2),
    ("Acct-Status-Type", "Interim-Update", 3),
    ("Acct-Status-Type", "Accounting-On", 7),
    ("Acct-Status-Type", "Accounting-Off", 8),
    ("Service-Type", "Framed-User", 2),
    ("Service-Type", "Authorize-Only", 17),
    ("Framed-Protocol", "PPP", 1),
    ("NAS-Port-Type", "Virtual", 5),
    ("NAS-Port-Type", "Ethernet", 15),
    ("NAS-Port-Type", "PPPoEoVLAN", 33),
    ("Acct-Terminate-Cause", "User-Request", 1),
    ("Acct-Terminate-Cause", "Lost-Carrier", 2),
    ("Acct-Terminate-Cause", "Idle-Timeout", 4),
    ("Acct-Terminate-Cause", "Session-Timeout", 5),
    ("Acct-Terminate-Cause", "Admin-Reset", 6),
    ("Acct-Terminate-Cause", "NAS-Reboot", 11),
    ("Acct-Terminate-Cause", "Port-Disabled", 22),
    ("Tunnel-Type", "L2TP", 3),
    ("Tunnel-Type", "VLAN", 13),
    ("Tunnel-Medium-Type", "IEEE-802", 6),
    ("Error-Cause", "Residual-Context-Removed", 201),
    ("Error-Cause", "Unsupported-Attribute", 401),
    ("Error-Cause", "Missing-Attribute", 402),
    ("Error-Cause", "NAS-Identification-Mismatch", 403),
    ("Error-Cause", "Invalid-Request", 404),
    ("Error-Cause", "Unsupported-Service", 405),
    ("Error-Cause", "Invalid-Attribute-Value", 407),
    ("Error-Cause", "Administratively-Prohibited", 501),
    ("Error-Cause", "Session-Context-Not-Found", 503),
    ("Error-Cause", "Session-Context-Not-Removable", 504),
    ("Error-Cause", "Resources-Unavailable", 506),
    ("Error-Cause", "Multiple-Session-Selection-Unsupported", 508),
    ("MS-MPPE-Encryption-Policy", "Encryption-Required", 2),
    ("MS-MPPE-Encryption-Types", "RC4-40or128-bit-Allowed", 6),
]


def included_files(path: Path, seen: set[Path] | None = None) -> set[Path]:
    """Return path and every file it $INCLUDEs, directly or indirectly."""
    seen = set() if seen is None else seen
    seen.add(path)
    for line in path.read_text().splitlines():
        match = INCLUDE_RE.match(line)
        if not match:
            continue
        target = (path.parent / match.group(2)).resolve()
        if match.group(1) and not target.exists():
            continue
        assert target.is_file(), f"{path.name} includes missing file {match.group(2)}"
        if target not in seen:
            included_files(target, seen)
    return seen


def test_top_file_loads_without_warnings_or_skips(caplog: pytest.LogCaptureFixture) -> None:
    """The top file loads with no skipped attribute and no pyrad warning."""
    with caplog.at_level(logging.WARNING, logger="pyrad"):
        loaded = Dictionary(str(TOP))
    assert loaded.skipped_attributes == set()
    assert [r.getMessage() for r in caplog.records if r.name == "pyrad"] == []
    assert len(loaded.attributes) > 400


def test_includes_resolve_relative_to_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """$INCLUDE paths resolve against the dictionary's directory, not the cwd."""
    monkeypatch.chdir(tmp_path)
    loaded = Dictionary(str(TOP))
    assert "Mikrotik-Rate-Limit" in loaded
    assert "Error-Cause" in loaded


@pytest.mark.parametrize(("name", "code", "datatype"), STANDARD_ATTRIBUTES)
def test_standard_attribute(dictionary: Dictionary, name: str, code: int, datatype: str) -> None:
    """A standard attribute has its RFC code and type and no vendor."""
    attr = dictionary[name]
    assert (attr.code, attr.type, attr.vendor) == (code, datatype, "")
    assert dictionary.attrindex.GetForward(name) == code


@pytest.mark.parametrize(("name", "vendor", "code", "datatype"), VENDOR_ATTRIBUTES)
def test_vendor_attribute(
    dictionary: Dictionary, name: str, vendor: str, code: int, datatype: str
) -> None:
    """A vendor attribute has its vendor, vendor id, code and type."""
    attr = dictionary[name]
    assert (attr.vendor, attr.code, attr.type) == (vendor, code, datatype)
    assert dictionary.attrindex.GetForward(name) == (VENDOR_IDS[vendor], code)


def test_vendor_ids(dictionary: Dictionary) -> None:
    """Every vendor is defined with its IANA enterprise number."""
    defined = {name: dictionary.vendors.GetForward(name) for name in VENDOR_IDS}
    assert defined == VENDOR_IDS


def test_encrypt_and_tag_flags(dictionary: Dictionary) -> None:
    """Encryption and tag flags match RFC 2865, RFC 2868 and RFC 2548."""
    assert dictionary["User-Password"].encrypt == 1
    assert dictionary["Tunnel-Password"].encrypt == 2
    assert dictionary["Tunnel-Password"].has_tag
    assert dictionary["MS-MPPE-Send-Key"].encrypt == 2
    assert dictionary["MS-MPPE-Recv-Key"].encrypt == 2
    assert dictionary["MS-CHAP-MPPE-Keys"].encrypt == 1
    assert dictionary["ERX-Service-Activate"].has_tag
    assert dictionary["Tunnel-Type"].has_tag
    assert dictionary["Mikrotik-Rate-Limit"].encrypt == 0
    assert not dictionary["Cisco-AVPair"].has_tag


@pytest.mark.parametrize(("name", "value_name", "number"), NAMED_VALUES)
def test_named_value(dictionary: Dictionary, name: str, value_name: str, number: int) -> None:
    """A VALUE name maps to its number, and the number back to the name."""
    values = dictionary[name].values
    encoded = struct.pack("!I", number)
    assert values.GetForward(value_name) == encoded
    assert values.GetBackward(encoded) == value_name


def test_no_extended_or_vsa_standard_attributes(dictionary: Dictionary) -> None:
    """No standard attribute is Vendor-Specific (26) or in the extended range 241+."""
    codes = [key for key in dictionary.attrindex.backward if isinstance(key, int)]
    assert 26 not in codes
    assert max(codes) <= 240


def test_access_accept_round_trip(dictionary: Dictionary) -> None:
    """An Access-Accept with vendor, IPv6 and encrypted attributes survives encode and decode."""
    request = packet.AuthPacket(
        code=packet.AccessRequest,
        id=42,
        secret=SECRET,
        authenticator=REQUEST_AUTHENTICATOR,
        dict=dictionary,
    )
    request["User-Name"] = "alice"

    send_key = bytes(range(0x30, 0x50))
    reply = request.CreateReply()
    reply["Service-Type"] = "Framed-User"
    reply["Framed-Protocol"] = "PPP"
    reply["Mikrotik-Rate-Limit"] = "10M/20M"
    reply["Cisco-AVPair"] = [
        "ip:sub-qos-policy-in=UP-10M",
        "ip:sub-qos-policy-out=DOWN-20M",
    ]
    reply["MS-MPPE-Send-Key"] = send_key
    reply["ERX-Qos-Profile-Name"] = "RES-20M"
    reply["PPPD-Upstream-Speed-Limit"] = 10240
    reply["PPPD-Downstream-Speed-Limit"] = 20480
    reply["Framed-IPv6-Prefix"] = "2001:db8:1:2::/64"
    reply["Delegated-IPv6-Prefix"] = "2001:db8:100::/56"
    raw = reply.ReplyPacket()

    # the vendor attributes are in Vendor-Specific attributes of their vendor
    assert struct.pack("!BBIBB", 26, 15, 14988, 8, 9) + b"10M/20M" in raw
    assert struct.pack("!BBI", 26, 6 + 2 + len("RES-20M"), 4874) in raw
    assert struct.pack("!BBI", 230, 6, 10240) in raw
    # the key is salt encrypted, never sent in clear
    assert send_key not in raw

    decoded = request.CreateReply(packet=raw)
    decoded.request_authenticator = request.authenticator
    assert decoded.code == packet.AccessAccept
    assert request.VerifyReply(decoded)

    assert decoded["Service-Type"] == ["Framed-User"]
    assert decoded["Framed-Protocol"] == ["PPP"]
    assert decoded["Mikrotik-Rate-Limit"] == ["10M/20M"]
    assert decoded["Cisco-AVPair"] == [
        "ip:sub-qos-policy-in=UP-10M",
        "ip:sub-qos-policy-out=DOWN-20M",
    ]
    assert decoded["MS-MPPE-Send-Key"] == [send_key]
    assert decoded["ERX-Qos-Profile-Name"] == ["RES-20M"]
    assert decoded["PPPD-Upstream-Speed-Limit"] == [10240]
    assert decoded["PPPD-Downstream-Speed-Limit"] == [20480]
    assert decoded["Framed-IPv6-Prefix"] == ["2001:db8:1:2::/64"]
    assert decoded["Delegated-IPv6-Prefix"] == ["2001:db8:100::/56"]


def test_tagged_attributes_round_trip(dictionary: Dictionary) -> None:
    """Tagged Tunnel-Password and ERX-Service-Activate keep their tags and values."""
    request = packet.AuthPacket(
        code=packet.AccessRequest,
        id=43,
        secret=SECRET,
        authenticator=REQUEST_AUTHENTICATOR,
        dict=dictionary,
    )
    reply = request.CreateReply()
    reply["Tunnel-Password:1"] = "s3cret"
    reply["ERX-Service-Activate:2"] = "SVC-RATE(10m,20m)"
    raw = reply.ReplyPacket()
    assert b"s3cret" not in raw

    decoded = request.CreateReply(packet=raw)
    decoded.request_authenticator = request.authenticator
    assert decoded["Tunnel-Password:1"] == ["s3cret"]
    assert decoded["ERX-Service-Activate:2"] == ["SVC-RATE(10m,20m)"]


def test_every_dictionary_file_is_included() -> None:
    """Every file in conf/dictionaries is reachable from the top file by $INCLUDE."""
    on_disk = {p.resolve() for p in DICT_DIR.iterdir() if p.is_file()}
    reachable = included_files(TOP.resolve())
    orphans = sorted(p.name for p in on_disk - reachable)
    assert orphans == []
    assert reachable <= on_disk


def test_every_file_starts_with_a_source_comment() -> None:
    """Each dictionary file opens with a comment block naming its RFC or vendor."""
    for path in sorted(DICT_DIR.iterdir()):
        lines = path.read_text().splitlines()
        header = []
        for line in lines:
            if not line.startswith("#"):
                break
            header.append(line)
        assert len(header) >= 3, f"{path.name} has no header comment"
        if path.name.startswith("dictionary.rfc"):
            rfc = path.name.removeprefix("dictionary.rfc")
            assert any(f"RFC {rfc}" in line for line in header), path.name
