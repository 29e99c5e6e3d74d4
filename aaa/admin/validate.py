"""Validation of every value an operator types (CLI argument, API field, form field, CSV cell).

One place, so a bad value gets the same one-line error wherever it was typed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import pyrad.packet

from aaa.clients import parse_network
from aaa.dictionary import load_dictionary
from aaa.pap import MAX_USER_PASSWORD_LENGTH
from aaa.vendors import parse_rate_limit
from core.db.models import SubscriberStatus, Vendor
from core.errors import InvalidInput

NAME_MAX = 64
SECRET_MAX = 128
LOGIN_MAX = 128
#: RFC 2865 5.1: User-Name is at most 253 octets on the wire.
LOGIN_MAX_OCTETS = 253
DESCRIPTION_MAX = 255
#: Integer columns are signed 32-bit on both databases.
INT_MAX = 2**31 - 1
#: Words that mean "no value" in set commands, so no plan may be called that.
NONE_WORDS = frozenset({"none", "-"})
#: Attributes the server itself manages; a plan must not inject them.
RESERVED_REPLY_ATTRIBUTES = frozenset({
    "User-Name", "User-Password", "CHAP-Password", "Message-Authenticator", "Proxy-State",
    "EAP-Message", "State", "MS-CHAP2-Success", "MS-MPPE-Send-Key", "MS-MPPE-Recv-Key",
})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
NT_HASH_RE = re.compile(r"^[0-9a-fA-F]{32}$")
IN_CHUNK = 500




def text_field(value: str, what: str, max_len: int, *, allow_empty: bool = False,
          multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    if not value and not allow_empty:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > max_len:
        raise InvalidInput(f"{what} {_short(value)} is longer than {max_len} characters")
    if (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value):
        raise InvalidInput(f"{what} {_short(value)} contains control characters")
    return value


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_name(value: str, what: str) -> str:
    """A NAS or plan name: 1..64 characters, printable, no surrounding blanks."""
    text_field(value, f"{what} name", NAME_MAX)
    if value != value.strip():
        raise InvalidInput(f"{what} name {value!r} must not start or end with blanks")
    return value


def validate_login(login: str) -> str:
    """1..128 characters, printable, no surrounding blanks (MariaDB pads, so 'a ' == 'a')."""
    text_field(login, "login", LOGIN_MAX)
    if login != login.strip():
        raise InvalidInput(f"login {login!r} must not start or end with blanks")
    if len(login.encode("utf-8", "surrogatepass")) > LOGIN_MAX_OCTETS:
        raise InvalidInput(f"login {_short(login)} is longer than {LOGIN_MAX_OCTETS} octets"
                           " in UTF-8 (RADIUS User-Name limit)")
    return login


def validate_password(password: str) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidInput("password must not be empty")
    if "\x00" in password:
        raise InvalidInput("password must not contain NUL characters")
    try:
        octets = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput("password is not valid Unicode text") from None
    if octets > MAX_USER_PASSWORD_LENGTH:
        raise InvalidInput(f"password is {octets} octets; RADIUS PAP carries at most "
                           f"{MAX_USER_PASSWORD_LENGTH}")
    return password


def validate_address(address: str) -> str:
    """An IP or CIDR, normalised so equal networks compare equal."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput("NAS address must not be empty")
    try:
        net = parse_network(address)
    except ValueError as exc:
        raise InvalidInput(f"NAS address {exc}") from None
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def validate_secret(secret: str) -> str:
    if not isinstance(secret, str) or not secret:
        raise InvalidInput("NAS secret must not be empty")
    if len(secret) > SECRET_MAX:
        raise InvalidInput(f"NAS secret is longer than {SECRET_MAX} characters")
    return secret


def validate_vendor(vendor: str) -> Vendor:
    try:
        return Vendor(str(vendor).lower())
    except ValueError:
        raise InvalidInput(f"vendor {vendor!r} is not one of "
                           + ", ".join(v.value for v in Vendor)) from None


def validate_port(port: int, what: str = "CoA port") -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"{what} {port!r} must be 1..65535")
    return port


def validate_positive(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT_MAX:
        raise InvalidInput(f"{what} {value!r} must be a whole number 1..{INT_MAX}")
    return value


def validate_rate_limit(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        up, down, _, _ = parse_rate_limit(value)
    except ValueError as exc:
        raise InvalidInput(f"rate limit {exc}") from None
    return f"{up}/{down}"


def validate_framed_protocol(value: str | None) -> str | None:
    """A Framed-Protocol value name from the dictionary (PPP, SLIP, ...), or none."""
    if value is None or value.strip().lower() in NONE_WORDS:
        return None
    names = list(load_dictionary().attributes["Framed-Protocol"].values.forward)
    for name in names:
        if name.lower() == value.strip().lower():
            return str(name)
    raise InvalidInput(f"framed protocol {value!r} is not one of none, " + ", ".join(names))


def validate_static_ip(value: str | None) -> str | None:
    """Framed-IP-Address is an IPv4 attribute, so a static address must be IPv4."""
    if value is None:
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidInput(f"static IP {value!r} is not an IP address") from None
    if ip.version != 4:
        raise InvalidInput(f"static IP {value!r}: Framed-IP-Address is IPv4 only")
    return str(ip)


def validate_status(value: str | SubscriberStatus) -> SubscriberStatus:
    try:
        return SubscriberStatus(str(value).lower())
    except ValueError:
        raise InvalidInput(f"status {value!r} is not one of "
                           + ", ".join(s.value for s in SubscriberStatus)) from None


def parse_reply_attribute(text: str) -> tuple[str, str]:
    """'Attr=Value' checked the way the server will send it: it must encode in a reply."""
    attr, sep, value = text.partition("=")
    attr, value = attr.strip(), value.strip()
    if not sep or not attr:
        raise InvalidInput(f"reply attribute {_short(text)} is not of the form Attr=Value")
    validate_reply_attributes([(attr, value)])
    return attr, value


def validate_reply_attributes(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    dictionary = load_dictionary()
    request = pyrad.packet.AuthPacket(code=pyrad.packet.AccessRequest, secret=b"validate",
                                      dict=dictionary, authenticator=bytes(16))
    reply = request.CreateReply()
    reply.code = pyrad.packet.AccessAccept
    out: list[tuple[str, str]] = []
    names = _attribute_names()
    for attr, value in pairs:
        base, colon, tag = attr.partition(":")
        if base.lower() not in names:
            raise InvalidInput(f"reply attribute {attr!r} is not in the RADIUS dictionary")
        base = names[base.lower()]
        attr = base + colon + tag
        if base in RESERVED_REPLY_ATTRIBUTES:
            raise InvalidInput(f"reply attribute {attr!r} is set by the server itself")
        if value == "":
            raise InvalidInput(f"reply attribute {attr!r} has an empty value")
        try:
            reply.AddAttribute(attr, value)
        except Exception as exc:  # pyrad raises TypeError/ValueError/KeyError/... per type
            raise InvalidInput(f"reply attribute {attr}={_short(value)} cannot be encoded "
                               f"({dictionary.attributes[base].type}): {exc}") from None
        out.append((attr, value))
    try:
        reply.ReplyPacket()
    except Exception as exc:
        raise InvalidInput(f"reply attributes do not fit in a RADIUS packet: {exc}") from None
    return tuple(out)


@lru_cache(maxsize=1)
def _attribute_names() -> dict[str, str]:
    """Lower-case name -> dictionary spelling, so 'session-timeout' is accepted as typed."""
    return {name.lower(): name for name in load_dictionary().attributes}


def nullable(value: Any) -> Any:
    """'none' / '' from a form or the command line mean: clear this field."""
    if isinstance(value, str) and (value.strip().lower() in NONE_WORDS or not value.strip()):
        return None
    return value
