"""Vendor profiles (aaa.vendors): rate-limit attributes per NAS family and rate parsing.

Every produced attribute is also sent through RadiusServerProtocol's reply
encoder with the shipped dictionary and read back with pyrad, because the
encoder logs and leaves out attributes it cannot encode: a typo in a profile
would otherwise silently give subscribers unlimited bandwidth.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest

from aaa.dictionary import load_dictionary
from aaa.outcome import Decision, Outcome
from aaa.vendors import PROFILES, parse_rate, parse_rate_limit, rate_limit_attributes
from core.db.models import Vendor
from tests.test_radius_protocol import access_request, decode_reply, make_harness, nas_client

DICT = load_dictionary()

EXPECTED_10M_20M: dict[Vendor, list[tuple[str, object]]] = {
    Vendor.GENERIC: [],
    Vendor.MIKROTIK: [("Mikrotik-Rate-Limit", "10M/20M")],
    Vendor.CISCO: [
        ("Cisco-AVPair", "lcp:interface-config#1=rate-limit input 10000000 1875000 3750000 "
                         "conform-action transmit exceed-action drop"),
        ("Cisco-AVPair", "lcp:interface-config#2=rate-limit output 20000000 3750000 7500000 "
                         "conform-action transmit exceed-action drop"),
    ],
    Vendor.JUNIPER: [("ERX-Service-Activate:1", "svc-rate(20000000,10000000)")],
    Vendor.ACCEL_PPP: [("PPPD-Upstream-Speed-Limit", 10000),
                       ("PPPD-Downstream-Speed-Limit", 20000)],
}


def test_every_vendor_has_a_profile() -> None:
    """Each Vendor a NAS row can name has a profile, so no lookup can KeyError."""
    assert set(PROFILES) == set(Vendor)
    assert set(EXPECTED_10M_20M) == set(Vendor)


@pytest.mark.parametrize("vendor", list(Vendor))
def test_rate_limit_attributes_per_vendor(vendor: Vendor) -> None:
    """10M up / 20M down becomes each vendor's own attributes with the right numbers."""
    assert rate_limit_attributes(vendor, "10M/20M") == EXPECTED_10M_20M[vendor]


@pytest.mark.parametrize("vendor", [v for v in Vendor if v is not Vendor.GENERIC])
@pytest.mark.parametrize("rate", ["10M/20M", "512k/2M", "1.5M/100M", "64000/64000", "1G/1G"])
def test_rate_limit_attributes_encode_in_a_reply(vendor: Vendor, rate: str) -> None:
    """Every produced attribute survives the listener's reply encoder and decodes back."""
    attrs = rate_limit_attributes(vendor, rate)
    assert attrs
    h = make_harness(clients=[nas_client(vendor=vendor)])
    req, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.ACCEPT, attributes=attrs))
    (data,) = h.replies
    reply = decode_reply(req, data)
    assert req.VerifyReply(reply, data)
    expected: dict[str, list[object]] = {}
    for name, value in attrs:
        expected.setdefault(name, []).append(value)
    for name, values in expected.items():
        assert reply[name] == values, name


def test_juniper_service_activate_is_sent_with_tag_one() -> None:
    """ERX-Service-Activate carries tag 1 on the wire, as Junos expects."""
    h = make_harness(clients=[nas_client(vendor=Vendor.JUNIPER)])
    req, raw = access_request()
    h.send(raw)
    h.handler.answer(Decision(Outcome.ACCEPT,
                              attributes=rate_limit_attributes(Vendor.JUNIPER, "1M/2M")))
    reply = decode_reply(req, h.replies[0])
    erx = DICT.vendors.GetForward("ERX")
    assert OrderedDict.get(reply, (erx, 65)) == [b"\x01svc-rate(2000000,1000000)"]


def test_accel_ppp_kbps_never_rounds_to_zero() -> None:
    """A rate below 1 kbit/s still gives accel-ppp a limit of 1 kbit/s, not 0 (unlimited)."""
    assert rate_limit_attributes(Vendor.ACCEL_PPP, "500/999") == [
        ("PPPD-Upstream-Speed-Limit", 1), ("PPPD-Downstream-Speed-Limit", 1)]


def test_disconnect_keys_are_dictionary_attributes() -> None:
    """Every disconnect key names an attribute the shipped dictionary knows."""
    for vendor, profile in PROFILES.items():
        assert profile.disconnect_keys, vendor
        for name in profile.disconnect_keys:
            assert name in DICT.attributes, (vendor, name)


def test_bad_rate_limit_raises_before_building_attributes() -> None:
    """rate_limit_attributes refuses a bad plan rate for every vendor, even generic."""
    for vendor in Vendor:
        with pytest.raises(ValueError, match="'fast'"):
            rate_limit_attributes(vendor, "fast")


# -- parse_rate / parse_rate_limit ------------------------------------------------------


@pytest.mark.parametrize(("text", "bps"), [
    ("100", 100), ("512k", 512_000), ("512K", 512_000), ("10M", 10_000_000),
    ("10m", 10_000_000), ("1G", 1_000_000_000), (" 5 M ", 5_000_000), ("1.5M", 1_500_000),
    ("2.5k", 2_500), ("1.001M", 1_001_000), ("4.35M", 4_350_000), ("0.5k", 500),
])
def test_parse_rate(text: str, bps: int) -> None:
    """Rates with k/M/G suffixes (decimal, case-insensitive) become exact bit/s."""
    assert parse_rate(text) == bps


def test_parse_rate_is_exact_for_decimal_fractions() -> None:
    """Decimal rates never lose a bit/s to binary floating point."""
    for thousandths in range(1, 5000):
        text = f"{thousandths // 1000}.{thousandths % 1000:03d}M"
        assert parse_rate(text) == thousandths * 1000, text


@pytest.mark.parametrize("text", ["", " ", "abc", "10X", "10 Mbit", "-1M", "+1M", "1e6",
                                  "1,5M", "M", "10M/10M", "0x10", "\u0661\u0660M"])
def test_parse_rate_rejects_garbage(text: str) -> None:
    """Anything not a plain number with an optional k/M/G is refused, naming the value."""
    with pytest.raises(ValueError, match="is not a rate like 512k, 10M or 1G") as exc:
        parse_rate(text)
    assert repr(text) in str(exc.value)


@pytest.mark.parametrize("text", ["0", "0M", "0.0", "0.000k", "0.5", "0.0001k"])
def test_parse_rate_rejects_zero(text: str) -> None:
    """A rate that is, or rounds down to, 0 bit/s is refused (0 would mean 'no limit')."""
    with pytest.raises(ValueError, match="greater than 0"):
        parse_rate(text)


def test_parse_rate_limit() -> None:
    """'up/down' splits into the texts as written and their bit rates."""
    assert parse_rate_limit("10M/20M") == ("10M", "20M", 10_000_000, 20_000_000)
    assert parse_rate_limit(" 512k / 2M ") == ("512k", "2M", 512_000, 2_000_000)


@pytest.mark.parametrize("text", ["10M", "", "10M/20M/30M", "10M\\20M"])
def test_parse_rate_limit_needs_exactly_two_parts(text: str) -> None:
    """A rate limit without exactly one '/' is refused, naming the value."""
    with pytest.raises(ValueError, match="is not a rate limit like 10M/10M") as exc:
        parse_rate_limit(text)
    assert repr(text) in str(exc.value)


@pytest.mark.parametrize(("text", "bad"), [("/10M", ""), ("10M/", ""), ("10M/fast", "fast"),
                                           ("0/10M", "0")])
def test_parse_rate_limit_names_the_bad_half(text: str, bad: str) -> None:
    """A bad upload or download half is reported by its own text."""
    with pytest.raises(ValueError, match=repr(bad)):
        parse_rate_limit(text)

