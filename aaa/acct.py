"""Accounting-Request handling: a packet becomes an accounting record, stored before answered.

The parser reads attributes raw by code (pyrad keeps undecoded values keyed
by code, VSAs by (vendor, code)), so nothing a NAS sends can raise in a
decoder, and a request costs one pass over its attributes. Octet counters are
combined with Acct-Input/Output-Gigawords into 64-bit totals; IPv6 prefixes
are decoded from their RFC 3162 form. Whether a request is a call (from a
PBX or voice gateway) and where its facts are is data in the NAS's vendor
profile (:class:`aaa.vendors.CallAttributes`), not code per vendor.

The answer follows RFC 2866 section 2: Decision(ACCOUNTING_STORED) only once
the group commit holding the record committed, or the record is fsync'ed in
the spool; Decision(FAILED), i.e. no reply so the NAS resends, when neither
worked. A request radbill cannot use (no Acct-Status-Type, no Acct-Session-Id,
a status type it does not record) is acknowledged and logged, or the NAS
would resend it forever.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyrad.dictionary import Dictionary
from pyrad.packet import Packet
from twisted.internet import defer
from twisted.python.failure import Failure

from aaa.clients import NasClient
from aaa.outcome import Decision, Outcome
from aaa.vendors import PROFILES, CallAttributes, VendorProfile
from accounting.commit import CommitReceipt, GroupCommitter
from accounting.records import (
    NAS_STATUSES,
    SESSION_STATUSES,
    AcctRecord,
    AcctStatus,
    CallFacts,
    call_unique_id,
    session_unique_id,
)
from accounting.service import (
    AccountingService,
    SpoolReplayer,
    StaleSweeper,
    StaleSweepService,
)
from accounting.spool import AsyncSpool
from accounting.store import AcctPolicy
from billing.usage import UsageSink, thd_record_usage
from core.db.base import utcnow
from core.db.pool import DBPool

log = logging.getLogger(__name__)

USER_NAME = 1
NAS_IP_ADDRESS = 4
NAS_PORT = 5
FRAMED_IP_ADDRESS = 8
CALLED_STATION_ID = 30
CALLING_STATION_ID = 31
NAS_IDENTIFIER = 32
ACCT_STATUS_TYPE = 40
ACCT_DELAY_TIME = 41
ACCT_INPUT_OCTETS = 42
ACCT_OUTPUT_OCTETS = 43
ACCT_SESSION_ID = 44
ACCT_SESSION_TIME = 46
ACCT_INPUT_PACKETS = 47
ACCT_OUTPUT_PACKETS = 48
ACCT_TERMINATE_CAUSE = 49
ACCT_MULTI_SESSION_ID = 50
ACCT_INPUT_GIGAWORDS = 52
ACCT_OUTPUT_GIGAWORDS = 53
EVENT_TIMESTAMP = 55
NAS_PORT_TYPE = 61
ACCT_INTERIM_INTERVAL = 85
NAS_PORT_ID = 87
NAS_IPV6_ADDRESS = 95
FRAMED_IPV6_PREFIX = 97
DELEGATED_IPV6_PREFIX = 123
FRAMED_IPV6_ADDRESS = 168

# An Event-Timestamp further than this from our clock is a NAS with a wrong clock.
EVENT_TIME_SKEW = timedelta(days=1)
MAX_DELAY = 7 * 86400

RawKey = int | tuple[int, int]


class Unusable(ValueError):
    """The request cannot become a record; it is acknowledged and logged."""


def _u32(value: bytes | None) -> int | None:
    if value is None or len(value) != 4:
        return None
    return int(struct.unpack("!I", value)[0])


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    # backslashreplace: deterministic (same bytes, same id) and always storable.
    return value.decode("utf-8", "backslashreplace")


def _ipv4(value: bytes | None) -> str | None:
    if value is None or len(value) != 4:
        return None
    # inet_ntoa: the same dotted quad as str(IPv4Address), in C (two per request).
    return socket.inet_ntoa(value)


def _ipv6(value: bytes | None) -> str | None:
    if value is None or len(value) != 16:
        return None
    return str(ipaddress.IPv6Address(value))


def ipv6_prefix(value: bytes | None) -> str | None:
    """RFC 3162 section 2.3: reserved octet, prefix length, then the prefix octets."""
    if value is None or len(value) < 2 or len(value) > 18:
        return None
    length = value[1]
    if length > 128:
        return None
    address = value[2:].ljust(16, b"\x00")
    try:
        return str(ipaddress.IPv6Network((address, length), strict=False))
    except ValueError:
        return None


def counter64(low: bytes | None, high: bytes | None) -> int | None:
    """Acct-*-Octets plus Acct-*-Gigawords x 2**32 (RFC 2869 section 5.1)."""
    lo = _u32(low)
    hi = _u32(high)
    if lo is None and hi is None:
        return None
    return ((hi or 0) << 32) + (lo or 0)


def strip_name(name: str, value: str) -> str:
    """Cisco repeats the attribute name inside its value: 'h323-setup-time=...'."""
    prefix = name + "="
    return value[len(prefix):] if value.startswith(prefix) else value


def parse_call_time(text: str | None, formats: tuple[str, ...]) -> datetime | None:
    if not text or not formats:
        return None
    cleaned = text.strip().lstrip("*.").strip()
    cleaned = " ".join(cleaned.split())
    for zone in (" UTC ", " GMT ", " Z "):
        cleaned = cleaned.replace(zone, " +0000 ")
    for fmt in formats:
        try:
            parsed = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            continue
        return parsed.astimezone(UTC)
    return None


@dataclass(frozen=True)
class _Source:
    """One resolved place to read: raw key, optional key=value key, attribute name."""

    key: RawKey
    name: str
    pair: str | None = None
    equals: bytes | None = None


class CallMapping:
    """A vendor's CallAttributes resolved against the dictionary, once."""

    def __init__(self, attrs: CallAttributes, dictionary: Dictionary) -> None:
        self.attrs = attrs
        resolve = _Resolver(dictionary)
        self.markers = [resolve(m, marker=True) for m in attrs.markers]
        self.sources = {name: [resolve(s) for s in getattr(attrs, name)] for name in (
            "call_id", "conf_id", "caller", "callee", "leg", "setup_time", "connect_time",
            "disconnect_time", "disconnect_cause")}

    def is_call(self, pkt: Packet) -> bool:
        return any(_read(pkt, m) is not None for m in self.markers)

    def first(self, pkt: Packet, field: str) -> str | None:
        for source in self.sources[field]:
            value = _read(pkt, source)
            if value:
                return value
        return None

    def facts(self, pkt: Packet) -> CallFacts:
        leg = self.first(pkt, "leg")
        billable = not self.attrs.billable_legs or leg is None or \
            leg.lower() in {b.lower() for b in self.attrs.billable_legs}
        formats = self.attrs.time_formats
        return CallFacts(
            call_id=self.first(pkt, "call_id"), conf_id=self.first(pkt, "conf_id"),
            caller=self.first(pkt, "caller"), callee=self.first(pkt, "callee"),
            leg=leg, billable=billable,
            setup_time=parse_call_time(self.first(pkt, "setup_time"), formats),
            connect_time=parse_call_time(self.first(pkt, "connect_time"), formats),
            disconnect_time=parse_call_time(self.first(pkt, "disconnect_time"), formats),
            disconnect_cause=self.first(pkt, "disconnect_cause"))


class _Resolver:
    def __init__(self, dictionary: Dictionary) -> None:
        self.dictionary = dictionary

    def __call__(self, spec: str, marker: bool = False) -> _Source:
        equals: bytes | None = None
        pair: str | None = None
        name = spec
        if marker and "=" in spec:
            name, wanted = spec.split("=", 1)
            equals = self._value_bytes(name, wanted)
        elif ":" in spec:
            name, pair = spec.split(":", 1)
        try:
            attr = self.dictionary.attributes[name]
        except KeyError:
            raise ValueError(f"vendor call mapping names unknown attribute {name!r}") from None
        if attr.vendor:
            key: RawKey = (int(self.dictionary.vendors.GetForward(attr.vendor)), int(attr.code))
        else:
            key = int(attr.code)
        return _Source(key=key, name=name, pair=pair, equals=equals)

    def _value_bytes(self, name: str, wanted: str) -> bytes:
        attr = self.dictionary.attributes[name]
        if attr.values.HasForward(wanted):
            encoded = attr.values.GetForward(wanted)  # pyrad keeps VALUEs wire-encoded
            return encoded if isinstance(encoded, bytes) else struct.pack("!I", int(encoded))
        if attr.type == "integer":
            return struct.pack("!I", int(wanted))
        return wanted.encode()


def _read(pkt: Packet, source: _Source) -> str | None:
    values = OrderedDict.get(pkt, source.key)
    if not values:
        return None
    if source.equals is not None:
        return "1" if source.equals in values else None
    if source.pair is not None:
        prefix = source.pair + "="
        for raw in values:
            pair = _text(raw) or ""
            if pair.startswith(prefix):
                return pair[len(prefix):].strip()
        return None
    first = _text(values[0])
    return strip_name(source.name, first).strip() if first is not None else None


class AcctParser:
    """Packet + NAS -> AcctRecord."""

    def __init__(self, dictionary: Dictionary,
                 profiles: dict[Any, VendorProfile] | None = None) -> None:
        self.profiles = profiles if profiles is not None else PROFILES
        self.calls: dict[Any, CallMapping] = {
            vendor: CallMapping(p.call_attributes, dictionary)
            for vendor, p in self.profiles.items() if p.call_attributes is not None}
        self.terminate_causes = _value_names(dictionary, "Acct-Terminate-Cause")
        self.port_types = _value_names(dictionary, "NAS-Port-Type")

    def parse(self, client: NasClient, pkt: Packet, received_at: datetime) -> AcctRecord:
        get = OrderedDict.get

        def one(key: int) -> bytes | None:
            values = get(pkt, key)
            return values[0] if values else None

        status = _u32(one(ACCT_STATUS_TYPE))
        if status is None:
            raise Unusable("no Acct-Status-Type")
        if status not in SESSION_STATUSES and status not in NAS_STATUSES:
            raise Unusable(f"Acct-Status-Type {status} is not recorded")
        identity = (_ipv4(one(NAS_IP_ADDRESS)) or _ipv6(one(NAS_IPV6_ADDRESS))
                    or _text(one(NAS_IDENTIFIER)) or client.address)
        event_at, stamped = self._event_time(one(EVENT_TIMESTAMP), one(ACCT_DELAY_TIME),
                                             received_at)
        if status in NAS_STATUSES:
            return AcctRecord(status=status, nas_id=client.id, nas_identity=identity,
                              received_at=received_at, event_at=event_at,
                              event_timestamped=stamped)
        session_id = _text(one(ACCT_SESSION_ID))
        if not session_id:
            raise Unusable("no Acct-Session-Id")
        user_name = _text(one(USER_NAME)) or ""
        in_gw, out_gw = one(ACCT_INPUT_GIGAWORDS), one(ACCT_OUTPUT_GIGAWORDS)
        cause = _u32(one(ACCT_TERMINATE_CAUSE))
        port_type = _u32(one(NAS_PORT_TYPE))
        nas_port, nas_port_id = _u32(one(NAS_PORT)), _text(one(NAS_PORT_ID))
        call: CallFacts | None = None
        mapping = self.calls.get(client.vendor)
        if mapping is not None and mapping.is_call(pkt):
            call = mapping.facts(pkt)
            unique_id = call_unique_id(client.id, identity, call.call_id or session_id)
        else:
            unique_id = session_unique_id(client.id, identity, session_id, user_name,
                                          nas_port_id, nas_port)
        return AcctRecord(
            status=status, nas_id=client.id, nas_identity=identity, received_at=received_at,
            event_at=event_at, user_name=user_name, session_id=session_id, unique_id=unique_id,
            multi_session_id=_text(one(ACCT_MULTI_SESSION_ID)),
            session_time=_u32(one(ACCT_SESSION_TIME)),
            input_octets=counter64(one(ACCT_INPUT_OCTETS), in_gw),
            output_octets=counter64(one(ACCT_OUTPUT_OCTETS), out_gw),
            input_packets=_u32(one(ACCT_INPUT_PACKETS)),
            output_packets=_u32(one(ACCT_OUTPUT_PACKETS)),
            gigawords=in_gw is not None or out_gw is not None,
            framed_ip=_ipv4(one(FRAMED_IP_ADDRESS)),
            framed_ipv6_address=_ipv6(one(FRAMED_IPV6_ADDRESS)),
            framed_ipv6_prefix=ipv6_prefix(one(FRAMED_IPV6_PREFIX)),
            delegated_ipv6_prefix=ipv6_prefix(one(DELEGATED_IPV6_PREFIX)),
            calling_station_id=_text(one(CALLING_STATION_ID)),
            called_station_id=_text(one(CALLED_STATION_ID)),
            nas_port=nas_port, nas_port_id=nas_port_id,
            nas_port_type=None if port_type is None else
            self.port_types.get(port_type, str(port_type)),
            terminate_cause=None if cause is None else
            self.terminate_causes.get(cause, str(cause)),
            interim_interval=_u32(one(ACCT_INTERIM_INTERVAL)),
            call=call, event_timestamped=stamped)

    @staticmethod
    def _event_time(timestamp: bytes | None, delay: bytes | None,
                    received_at: datetime) -> tuple[datetime, bool]:
        """(event time, whether it is the NAS's Event-Timestamp)."""
        stamp = _u32(timestamp)
        if stamp is not None:
            event = datetime.fromtimestamp(stamp, UTC)
            if abs(event - received_at) <= EVENT_TIME_SKEW:
                return event, True
        seconds = _u32(delay) or 0
        return received_at - timedelta(seconds=min(seconds, MAX_DELAY)), False


def _value_names(dictionary: Dictionary, name: str) -> dict[int, str]:
    try:
        values = dictionary.attributes[name].values
    except KeyError:
        return {}
    out: dict[int, str] = {}
    for label, encoded in values.forward.items():
        number = _u32(encoded) if isinstance(encoded, bytes) else int(encoded)
        if number is not None:
            out.setdefault(number, str(label))
    return out


class AccountingHandler:
    """What the acct port's protocol calls for every Accounting-Request."""

    def __init__(self, committer: GroupCommitter, parser: AcctParser,
                 service: AccountingService | None = None,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.committer = committer
        self.parser = parser
        self.service = service
        self.sweep_service: StaleSweepService | None = None  # when a cluster singleton
        self.now = now

    def handle(self, client: NasClient, pkt: Packet) -> defer.Deferred[Decision]:
        service = self.service
        if service is not None and not service.running and service.parent is None:
            # Not wired into the application's MultiService: without this the spool
            # would never be recovered or replayed, nor stale sessions closed.
            log.warning("accounting service was not started by the application; "
                        "starting it now")
            service.startService()
        try:
            record = self.parser.parse(client, pkt, self.now())
        except Unusable as exc:
            log.warning("accounting from %s ignored: %s", client.name, exc)
            return defer.succeed(Decision(Outcome.ACCOUNTING_IGNORED, detail=str(exc)))

        def stored(receipt: CommitReceipt) -> Decision:
            where = "database" if receipt.in_database else "spool"
            return Decision(Outcome.ACCOUNTING_STORED,
                            detail=f"{AcctStatus(record.status).name} {record.user_name} {where}")

        def failed(f: Failure) -> Decision:
            return Decision(Outcome.FAILED, detail=f"not stored: {f.getErrorMessage()}")

        return self.committer.submit(record).addCallbacks(stored, failed)


def make_accounting_handler(config: Any, dbpool: DBPool, reactor: Any, *,
                            usage_sink: UsageSink | None = thd_record_usage,
                            dictionary: Dictionary | None = None,
                            max_in_flight: int | None = None,
                            commit_timeout: float = 5.0,
                            replay_interval: float = 1.0,
                            sweep_interval: float = 60.0,
                            now: Callable[[], datetime] = utcnow,
                            record_hooks: tuple[Callable[[Any, Any], object], ...] = (),
                            spool_path: str | None = None,
                            sweep_singleton: bool = False,
                            ) -> AccountingHandler:
    """Build the handler and its AccountingService (``handler.service``), which the
    caller adds to the root MultiService after the DB pool, before the listeners.

    ``sweep_singleton``: the stale sweep is left out of that service and built
    as ``handler.sweep_service`` for the cluster's leadership to run.
    ``spool_path`` overrides the configured one (each worker has its own)."""
    if dictionary is None:
        from aaa.dictionary import load_dictionary

        dictionary = load_dictionary()
    acct = config.accounting
    policy = AcctPolicy(stale_after_intervals=acct.stale_after_intervals,
                        default_interim_interval=acct.default_interim_interval,
                        record_hooks=record_hooks)
    spool_path = spool_path or acct.spool_file or str(Path(config.server.data_dir)
                                                      / "accounting.spool")
    spool = AsyncSpool(spool_path, reactor)
    if max_in_flight is None:
        max_in_flight = 1 if dbpool.engine.dialect.name == "sqlite" else 2
    committer = GroupCommitter(dbpool, reactor, spool, policy, usage_sink,
                               window=acct.group_commit_ms / 1000.0,
                               max_in_flight=max_in_flight, commit_timeout=commit_timeout)
    replayer = SpoolReplayer(committer, spool, dbpool, policy, usage_sink)
    sweeper = StaleSweeper(committer, replayer, dbpool, now=now,
                           call_after=timedelta(minutes=acct.stale_call_minutes))
    service = AccountingService(committer, spool, replayer, sweeper, reactor,
                                replay_interval=replay_interval,
                                sweep_interval=None if sweep_singleton else sweep_interval)
    handler = AccountingHandler(committer, AcctParser(dictionary), service, now=now)
    handler.sweep_service = (StaleSweepService(sweeper, reactor, sweep_interval)
                             if sweep_singleton else None)
    return handler
