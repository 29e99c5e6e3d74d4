"""FreeRADIUS's radclient sends real Accounting-Requests to the real server (SQLite and MariaDB)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue

from tests.test_accounting_support import (
    SECRET,
    Server,
    all_calls,
    all_deltas,
    all_sessions,
    make_config,
    seed,
)

pytestmark = pytest.mark.radclient


@pytest.fixture
def radclient_path() -> str:
    """radclient's path; skipped when FreeRADIUS's utilities are not installed."""
    path = shutil.which("radclient")
    if path is None:
        pytest.skip("radclient not installed (apt-get install freeradius-utils)")
    return path


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    """Seeded NASes (127.0.0.1 MikroTik, ::1 Cisco gateway) and subscribers."""
    with Session(engine) as s, s.begin():
        return seed(s, simultaneous_use=None, interim=300)


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path, ids: dict[str, int]
           ) -> Iterator[Server]:
    """A started radbill (listeners on 127.0.0.1 port 0) with accounting wired."""
    config = make_config(tmp_path, db_url, group_commit_ms=2.0)
    srv = Server(config, reactor)
    pytest_twisted.blockon(srv.start())
    yield srv
    pytest_twisted.blockon(srv.stop())


def rows(engine: Engine, fn: Any) -> list[dict[str, Any]]:
    with Session(engine) as s:
        return fn(s)  # type: ignore[no-any-return]


@defer.inlineCallbacks
def radclient(path: str, port: int, packets: str, *extra: str, host: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    args = ["-x", "-t", "3", "-r", "1", *extra, f"{host}:{port}", "acct", SECRET]
    out, err, code = yield getProcessOutputAndValue(path, args, env={"PATH": "/usr/bin"},
                                                    reactor=reactor, stdinBytes=packets.encode())
    return code, (out + err).decode(errors="replace")


def stamp(dt: datetime) -> str:
    return str(int(dt.timestamp()))


@pytest_twisted.inlineCallbacks
def test_session_lifecycle_with_gigawords_and_ipv6(
        server: Server, engine: Engine, radclient_path: str) -> None:
    """Start, an Interim-Update across a 32-bit wrap and a Stop give one exact 64-bit record."""
    now = datetime.now(UTC).replace(microsecond=0)
    common = ('User-Name = "alice"\nAcct-Session-Id = "81A0001"\nNAS-IP-Address = 10.1.1.1\n'
              'Calling-Station-Id = "AA:BB:CC:00:11:22"\nNAS-Port = 7\n')
    start = (common + "Acct-Status-Type = Start\nFramed-IP-Address = 100.64.1.2\n"
             "Framed-IPv6-Prefix = 2001:db8:10::/64\nDelegated-IPv6-Prefix = 2001:db8:20::/56\n"
             f"Event-Timestamp = {stamp(now - timedelta(seconds=600))}\n")
    interim = (common + "Acct-Status-Type = Interim-Update\nAcct-Session-Time = 300\n"
               "Acct-Input-Octets = 4294967000\nAcct-Input-Gigawords = 0\n"
               "Acct-Output-Octets = 100\nAcct-Output-Gigawords = 2\n")
    stop = (common + "Acct-Status-Type = Stop\nAcct-Session-Time = 600\n"
            "Acct-Input-Octets = 200\nAcct-Input-Gigawords = 1\n"
            "Acct-Output-Octets = 500\nAcct-Output-Gigawords = 2\n"
            "Acct-Terminate-Cause = User-Request\n")
    port = server.acct_port()
    for packet in (start, interim, stop):
        code, output = yield radclient(radclient_path, port, packet)
        assert code == 0 and "Received Accounting-Response" in output, output
    (row,) = rows(engine, all_sessions)
    assert row["user_name"] == "alice" and row["nas_identity"] == "10.1.1.1"
    assert row["started_at"] == now - timedelta(seconds=600)
    assert row["input_octets"] == (1 << 32) + 200
    assert row["output_octets"] == (2 << 32) + 500
    assert row["session_time"] == 600 and row["closed_by"] == "stop"
    assert row["terminate_cause"] == "User-Request"
    assert row["framed_ip"] == "100.64.1.2" and row["nas_port"] == 7
    assert row["framed_ipv6_prefix"] == "2001:db8:10::/64"
    assert row["delegated_ipv6_prefix"] == "2001:db8:20::/56"
    deltas = rows(engine, all_deltas)
    assert sum(d["octets_in"] for d in deltas) == (1 << 32) + 200
    assert sum(d["seconds"] for d in deltas) == 600


@pytest_twisted.inlineCallbacks
def test_resent_requests_change_nothing(server: Server, engine: Engine,
                                        radclient_path: str) -> None:
    """radclient -c 3 re-sends each request; all are acknowledged, the record and usage once."""
    base = ('User-Name = "bob"\nAcct-Session-Id = "R1"\nNAS-IP-Address = 10.1.1.1\n')
    port = server.acct_port()
    code, output = yield radclient(radclient_path, port, base + "Acct-Status-Type = Start\n",
                                   "-c", "3")
    assert code == 0 and output.count("Received Accounting-Response") == 3, output
    code, output = yield radclient(
        radclient_path, port, base + "Acct-Status-Type = Interim-Update\n"
        "Acct-Session-Time = 60\nAcct-Input-Octets = 1000\nAcct-Output-Octets = 2000\n",
        "-c", "3")
    assert code == 0 and output.count("Received Accounting-Response") == 3, output
    (row,) = rows(engine, all_sessions)
    assert (row["input_octets"], row["output_octets"], row["session_time"]) == (1000, 2000, 60)
    deltas = rows(engine, all_deltas)
    assert [(d["octets_in"], d["octets_out"], d["seconds"]) for d in deltas] == [(1000, 2000, 60)]


@pytest_twisted.inlineCallbacks
def test_accounting_on_closes_sessions(server: Server, engine: Engine,
                                       radclient_path: str) -> None:
    """Accounting-On from a rebooted NAS closes its open sessions as NAS-Reboot."""
    port = server.acct_port()
    packets = "\n".join(
        f'User-Name = "alice"\nAcct-Session-Id = "on-{i}"\nNAS-IP-Address = 10.1.1.1\n'
        "Acct-Status-Type = Start\n" for i in range(3))
    code, output = yield radclient(radclient_path, port, packets)
    assert code == 0 and output.count("Received Accounting-Response") == 3, output
    code, output = yield radclient(radclient_path, port,
                                   "NAS-IP-Address = 10.1.1.1\nAcct-Status-Type = Accounting-On\n")
    assert code == 0 and "Received Accounting-Response" in output, output
    found = rows(engine, all_sessions)
    assert len(found) == 3
    assert {(r["closed_by"], r["terminate_cause"]) for r in found} == {
        ("accounting-on", "NAS-Reboot")}


@pytest_twisted.inlineCallbacks
def test_cisco_gateway_call_record(server: Server, engine: Engine, ids: dict[str, int],
                                   radclient_path: str) -> None:
    """A voice gateway's h323 VSAs and Cisco-AVPair call-id become one CDR (both legs)."""
    port = server.radius.bound_port("acct", "::1")
    legs = []
    for origin in ("answer", "originate"):
        legs.append(
            f'User-Name = "4930123456"\nAcct-Session-Id = "0000AB-{origin}"\n'
            "Acct-Status-Type = Stop\nNAS-IP-Address = 10.9.9.9\nAcct-Session-Time = 61\n"
            'Calling-Station-Id = "4930123456"\nCalled-Station-Id = "4940555000"\n'
            'Cisco-AVPair = "call-id=77AA@10.9.9.9"\n'
            'h323-conf-id = "h323-conf-id=4A2B1C0D 11223344 55667788 99AABBCC"\n'
            f'h323-call-origin = "h323-call-origin={origin}"\n'
            'h323-setup-time = "h323-setup-time=*10:00:00.000 UTC Mon Mar 4 2024"\n'
            'h323-connect-time = "h323-connect-time=10:00:04.000 UTC Mon Mar 4 2024"\n'
            'h323-disconnect-time = "h323-disconnect-time=10:01:05.000 UTC Mon Mar 4 2024"\n'
            'h323-disconnect-cause = "h323-disconnect-cause=10"\n')
    code, output = yield radclient(radclient_path, port, "\n".join(legs), host="[::1]")
    assert code == 0 and output.count("Received Accounting-Response") == 2, output
    (call,) = rows(engine, all_calls)
    assert call["subscriber_id"] == ids["phone"]
    assert (call["call_id"], call["callee"], call["duration"]) == ("77AA@10.9.9.9",
                                                                  "4940555000", 61)
    assert call["connect_time"] == datetime(2024, 3, 4, 10, 0, 4, tzinfo=UTC)
    assert call["disconnect_cause"] == "10" and call["stopped_at"] is not None
    deltas = rows(engine, all_deltas)
    assert [(d["source"], d["seconds"], d["destination"]) for d in deltas] == [
        ("call", 61, "4940555000")]
