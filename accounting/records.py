"""Plain records for parsed Accounting-Requests: what the handler hands to the store.

A record holds only facts read from one packet (plus when it was received),
never database ids other than the NAS's, so the same record can be stored at
once, or written to the spool and replayed hours later with the same result.
Records are JSON-serialisable for that reason (:meth:`AcctRecord.to_json`).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

# Column widths, shared with accounting.models: the store clips to them so a
# long value from a NAS can never make a whole group commit fail.
LEN_LOGIN = 128
LEN_SESSION_ID = 128
LEN_NAS_IDENTITY = 64
LEN_STATION = 64
LEN_IP = 45
LEN_PREFIX = 64
LEN_PORT_ID = 64
LEN_PORT_TYPE = 32
LEN_CAUSE = 32
LEN_CLOSED_BY = 16
LEN_CALL_ID = 128
LEN_NUMBER = 64
LEN_LEG = 16
UNIQUE_ID_LEN = 32


class AcctStatus(enum.IntEnum):
    """Acct-Status-Type values radbill acts on (RFC 2866 section 5.1)."""

    START = 1
    STOP = 2
    INTERIM = 3
    ON = 7
    OFF = 8


SESSION_STATUSES = frozenset({AcctStatus.START, AcctStatus.INTERIM, AcctStatus.STOP})
NAS_STATUSES = frozenset({AcctStatus.ON, AcctStatus.OFF})


class ClosedBy(enum.StrEnum):
    """Who ended a session: the NAS's own Stop, or radbill on the NAS's behalf."""

    STOP = "stop"
    NAS_ON = "accounting-on"
    NAS_OFF = "accounting-off"
    STALE = "stale"
    NAS_GONE = "nas-gone"  # a Disconnect-NAK with Error-Cause 503: the NAS has no such session


def _digest(*parts: object) -> str:
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.md5(joined.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()


def session_unique_id(nas_id: int, nas_identity: str, session_id: str, user_name: str,
                      nas_port_id: str | None = None, nas_port: int | None = None) -> str:
    """The session key: what FreeRADIUS's ``acct_unique`` policy hashes (User-Name,
    Acct-Session-Id, NAS-IP/IPv6-Address or NAS-Identifier, NAS-Port-Id, NAS-Port), plus
    radbill's NAS id, so two NASes reusing a session id never collide.

    A NAS that reuses Acct-Session-Id after a reboot produces the same key for two
    sessions; accounting.store tells them apart by their start time and stores each under
    its own :func:`session_row_id`.
    """
    port_id = "" if nas_port_id is None else nas_port_id
    port = "" if nas_port is None else nas_port
    return _digest("s", nas_id, nas_identity, session_id, user_name, port_id, port)


def session_row_id(session_key: str, started_at: datetime) -> str:
    """A stored session's Acct-Unique-Session-Id: the session key and its start second."""
    return _digest("r", session_key, int(started_at.timestamp()))


def call_unique_id(nas_id: int, nas_identity: str, call_key: str) -> str:
    """A call is the same call on every leg report that carries the same call id."""
    return _digest("c", nas_id, nas_identity, call_key)


@dataclass(frozen=True)
class CallFacts:
    """What a PBX or voice gateway reported about a call (vendor mapping already applied)."""

    call_id: str | None = None
    conf_id: str | None = None
    caller: str | None = None
    callee: str | None = None
    leg: str | None = None
    billable: bool = True
    setup_time: datetime | None = None
    connect_time: datetime | None = None
    disconnect_time: datetime | None = None
    disconnect_cause: str | None = None


_DATETIME_FIELDS = frozenset({"received_at", "event_at", "setup_time", "connect_time",
                              "disconnect_time"})


@dataclass(frozen=True)
class AcctRecord:
    """One Accounting-Request as facts. Counters are 64-bit totals (Gigawords applied);
    ``None`` means the packet did not carry the attribute."""

    status: int
    nas_id: int
    nas_identity: str
    received_at: datetime
    event_at: datetime
    user_name: str = ""
    session_id: str = ""
    unique_id: str = ""
    multi_session_id: str | None = None
    session_time: int | None = None
    input_octets: int | None = None
    output_octets: int | None = None
    input_packets: int | None = None
    output_packets: int | None = None
    gigawords: bool = False
    framed_ip: str | None = None
    framed_ipv6_address: str | None = None
    framed_ipv6_prefix: str | None = None
    delegated_ipv6_prefix: str | None = None
    calling_station_id: str | None = None
    called_station_id: str | None = None
    nas_port: int | None = None
    nas_port_id: str | None = None
    nas_port_type: str | None = None
    terminate_cause: str | None = None
    interim_interval: int | None = None
    call: CallFacts | None = None
    # The NAS sent an Event-Timestamp (and it was believable): the start time the record
    # implies is then the NAS's own, exact enough to tell reused session ids apart.
    event_timestamped: bool = False

    @property
    def is_call(self) -> bool:
        return self.call is not None

    @property
    def is_nas_event(self) -> bool:
        return self.status in NAS_STATUSES

    @property
    def conflict_key(self) -> str:
        """Records sharing this key touch the same row and must be applied in order."""
        return f"nas:{self.nas_id}" if self.is_nas_event else self.unique_id

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in list(out.items()):
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        if out["call"] is not None:
            for key, value in list(out["call"].items()):
                if isinstance(value, datetime):
                    out["call"][key] = value.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AcctRecord:
        """Inverse of :meth:`to_json`; raises ValueError/TypeError/KeyError on a bad line."""
        known = {f.name for f in fields(cls)}
        values = {k: _revive(k, v) for k, v in data.items() if k in known}
        call = values.get("call")
        if call is not None:
            call_known = {f.name for f in fields(CallFacts)}
            values["call"] = CallFacts(**{k: _revive(k, v) for k, v in call.items()
                                          if k in call_known})
        record = cls(**values)
        if not isinstance(record.received_at, datetime) or record.received_at.tzinfo is None:
            raise ValueError("received_at must be an aware timestamp")
        return record


def _revive(key: str, value: Any) -> Any:
    if key in _DATETIME_FIELDS and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value
