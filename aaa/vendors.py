"""Vendor profiles as data: how each NAS family wants rate limits and session identity.

A profile is a table, not code per vendor: adding a vendor is adding an entry.
Rate-limit templates are formatted with the plan's limits (``{up}``/``{down}``
as written in the plan, ``{up_bps}``, ``{up_kbps}``, ``{up_burst}`` bytes, ...).
``disconnect_keys`` lists the attributes, in order, that identify a session in
a Disconnect-Request or CoA-Request (RFC 5176 section 3) for that vendor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from core.db.models import Vendor

# ASCII digits only: the text as written also goes to the NAS (e.g. Mikrotik-Rate-Limit).
RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$", re.ASCII)
UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


@dataclass(frozen=True)
class CallAttributes:
    """Where a PBX or voice gateway reports a call, as data (read by aaa.acct).

    A source is an attribute name (``"h323-setup-time"``), or ``"Attribute:key"``
    for a ``key=value`` pair inside it (``"Cisco-AVPair:call-id"``); the first
    source present wins. A marker is a source, or ``"Attribute=VALUE"``; a
    Start/Interim/Stop carrying any marker is a call, not a data session.
    Times are parsed with ``time_formats`` (strptime) after a leading ``*`` or
    ``.`` (Cisco: clock not synchronised) is dropped and UTC/GMT become +0000.
    Only legs in ``billable_legs`` (all when empty) produce usage for billing,
    so a gateway reporting both legs of a call is not charged twice.
    """

    markers: tuple[str, ...]
    call_id: tuple[str, ...] = ()
    conf_id: tuple[str, ...] = ()
    caller: tuple[str, ...] = ("Calling-Station-Id",)
    callee: tuple[str, ...] = ("Called-Station-Id",)
    leg: tuple[str, ...] = ()
    billable_legs: tuple[str, ...] = ()
    setup_time: tuple[str, ...] = ()
    connect_time: tuple[str, ...] = ()
    disconnect_time: tuple[str, ...] = ()
    disconnect_cause: tuple[str, ...] = ()
    time_formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class VendorProfile:
    rate_limit: tuple[tuple[str, str], ...]
    disconnect_keys: tuple[str, ...]
    call_attributes: CallAttributes | None = None


# A PBX that speaks plain RFC attributes marks voice with Service-Type = Voice.
GENERIC_CALLS = CallAttributes(markers=("Service-Type=Voice",))

# IOS voice gateways / CUBE: the h323-* VSAs (values often repeat their own name,
# "h323-setup-time=*10:20:30.123 UTC Mon Mar 4 2024") and Cisco-AVPair "call-id=...".
# Both legs are reported; the outgoing ("originate") leg is the one billed.
CISCO_CALLS = CallAttributes(
    markers=("Cisco-AVPair:call-id", "h323-conf-id", "h323-setup-time", "h323-call-origin"),
    call_id=("Cisco-AVPair:call-id", "h323-conf-id"),
    conf_id=("h323-conf-id",),
    leg=("h323-call-origin",),
    billable_legs=("originate",),
    setup_time=("h323-setup-time",),
    connect_time=("h323-connect-time",),
    disconnect_time=("h323-disconnect-time",),
    disconnect_cause=("h323-disconnect-cause",),
    time_formats=("%H:%M:%S.%f %z %a %b %d %Y", "%H:%M:%S %z %a %b %d %Y"),
)


PROFILES: dict[Vendor, VendorProfile] = {
    Vendor.GENERIC: VendorProfile(
        rate_limit=(),
        disconnect_keys=("User-Name", "Acct-Session-Id", "NAS-IP-Address"),
        call_attributes=GENERIC_CALLS),
    # RouterOS: rx-rate/tx-rate from the router's view of the client interface,
    # i.e. the subscriber's upload/download.
    Vendor.MIKROTIK: VendorProfile(
        rate_limit=(("Mikrotik-Rate-Limit", "{up}/{down}"),),
        disconnect_keys=("User-Name", "Acct-Session-Id", "Framed-IP-Address")),
    # IOS PPPoE: per-session interface config, burst sizes in bytes.
    Vendor.CISCO: VendorProfile(
        rate_limit=(
            ("Cisco-AVPair", "lcp:interface-config#1=rate-limit input {up_bps} {up_burst} "
                             "{up_burst2} conform-action transmit exceed-action drop"),
            ("Cisco-AVPair", "lcp:interface-config#2=rate-limit output {down_bps} {down_burst} "
                             "{down_burst2} conform-action transmit exceed-action drop"),
        ),
        disconnect_keys=("Acct-Session-Id", "User-Name"),
        call_attributes=CISCO_CALLS),
    # Junos BNG: a parameterised dynamic-profile service.
    Vendor.JUNIPER: VendorProfile(
        rate_limit=(("ERX-Service-Activate:1", "svc-rate({down_bps},{up_bps})"),),
        disconnect_keys=("Acct-Session-Id", "User-Name")),
    # accel-ppp's shaper reads the Roaring Penguin attributes, in kbit/s.
    Vendor.ACCEL_PPP: VendorProfile(
        rate_limit=(("PPPD-Upstream-Speed-Limit", "{up_kbps}"),
                    ("PPPD-Downstream-Speed-Limit", "{down_kbps}")),
        disconnect_keys=("User-Name", "Acct-Session-Id", "Framed-IP-Address")),
}


def parse_rate(text: str) -> int:
    """'10M' -> 10_000_000 bit/s; raises ValueError naming the bad value."""
    m = RATE_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a rate like 512k, 10M or 1G")
    # Decimal, not float: '1.001M' must be 1_001_000, not 1_000_999.
    value = int(Decimal(m.group(1)) * UNITS[m.group(2).lower()])
    if value <= 0:  # also catches '0.5', which would truncate to 0 = "no limit"
        raise ValueError(f"{text!r}: a rate must be greater than 0 (at least 1 bit/s)")
    return value


def parse_rate_limit(text: str) -> tuple[str, str, int, int]:
    """'up/down' as in a plan -> (up text, down text, up bps, down bps)."""
    parts = text.split("/")
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not a rate limit like 10M/10M (upload/download)")
    up, down = parts[0].strip(), parts[1].strip()
    return up, down, parse_rate(up), parse_rate(down)


def rate_limit_attributes(vendor: Vendor, rate_limit: str) -> list[tuple[str, object]]:
    """The vendor's attributes for a plan's rate limit; raises ValueError for a bad limit."""
    return list(_rate_limit_attributes(vendor, rate_limit))


@lru_cache(maxsize=4096)
def _rate_limit_attributes(vendor: Vendor, rate_limit: str) -> tuple[tuple[str, object], ...]:
    # Cached: a handful of plans, formatted on every Access-Accept (bench/auth_bench.py).
    up, down, up_bps, down_bps = parse_rate_limit(rate_limit)
    values = {
        "up": up, "down": down, "up_bps": up_bps, "down_bps": down_bps,
        "up_kbps": max(1, up_bps // 1000), "down_kbps": max(1, down_bps // 1000),
        # Cisco's rule of thumb: normal burst = 1.5 s of traffic in bytes, extended = 2x.
        "up_burst": up_bps * 3 // 16, "up_burst2": up_bps * 3 // 8,
        "down_burst": down_bps * 3 // 16, "down_burst2": down_bps * 3 // 8,
    }
    out: list[tuple[str, object]] = []
    for attr, template in PROFILES[vendor].rate_limit:
        text = template.format(**values)
        out.append((attr, int(text) if text.isdigit() else text))
    return tuple(out)


def octet_quota_attributes(vendor: Vendor, octets: int) -> list[tuple[str, object]]:
    """The vendor's per-session traffic quota (input + output octets), or [] when it has none.

    MikroTik: Mikrotik-Total-Limit with Mikrotik-Total-Limit-Gigawords for the high 32 bits
    (RouterOS ends the session when in + out reach it). The other profiles have no quota
    attribute radbill can rely on (Juniper's and Cisco's need service definitions on the
    NAS), so they get the shorter Interim-Update interval instead (aaa.billing_hook).
    """
    if vendor is Vendor.MIKROTIK:
        octets = max(octets, 1)
        attrs: list[tuple[str, object]] = [("Mikrotik-Total-Limit", octets & 0xFFFFFFFF)]
        if octets >> 32:
            attrs.append(("Mikrotik-Total-Limit-Gigawords", octets >> 32))
        return attrs
    return []
