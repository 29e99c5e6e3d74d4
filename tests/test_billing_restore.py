"""A payment re-enables a subscriber cut off by CoA (issue 13 point 6), against a fake NAS.

The billing loop and aaa.coa's sender are wired as radbill.app wires them, with
``[coa] captive_attributes`` set: cut-off for no money moves the live session to
the captive profile by CoA-Request; a payment that covers the account makes the
next pass send a CoA-Request with the plan's rate limit (and ``restore_attributes``)
to the same session. A fake NAS on 127.0.0.1 answers and records every request.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from pyrad import packet as P
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol

from aaa.billing_hook import make_billing_loop
from aaa.coa import coa_attributes
from aaa.dictionary import load_dictionary
from billing.models import BillingAccount, BillingEvent, ChargingSession, EntryKind
from billing.money import parse_price
from billing.payments import thd_add_payment
from billing.tariff_store import thd_apply_spec
from billing.tariffs import TariffSpec
from core.config import parse_config
from core.db.models import Nas, Plan, Subscriber
from core.db.pool import DBPool

SECRET = "restore-secret"


class FakeNas(DatagramProtocol):
    """A NAS's RFC 5176 listener: records each request's code and attributes, answers ACK."""

    def __init__(self, answer: bool = True) -> None:
        self.requests: list[tuple[int, dict[str, list[Any]]]] = []
        self.answer = answer

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # type: ignore[override]
        pkt = P.CoAPacket(packet=data, dict=load_dictionary(), secret=SECRET.encode())
        self.requests.append((data[0], {k: pkt[k] for k in pkt.keys() if isinstance(k, str)}))
        if not self.answer:
            return
        header = struct.pack("!BBH", data[0] + 1, data[1], 20)  # 40->41, 43->44: the ACKs
        auth = hashlib.md5(header + data[4:20] + SECRET.encode()).digest()  # noqa: S324
        self.transport.write(header + auth, addr)


@pytest.fixture
def nas() -> Iterator[tuple[FakeNas, int]]:
    proto = FakeNas()
    port = reactor.listenUDP(0, proto, interface="127.0.0.1")
    yield proto, port.getHost().port
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


def seed(engine: Engine, coa_port: int) -> int:
    """alice on a MikroTik with one live session, just gone below her limit (blocked)."""
    with Session(engine) as s, s.begin():
        nas = Nas(name="mt", address="127.0.0.1", secret=SECRET, vendor="mikrotik",
                  require_message_authenticator=False, coa_port=coa_port)
        s.add(nas)
        s.add(Plan(name="prepaid", rate_limit="10M/20M", interim_interval=60))
        s.flush()
        thd_apply_spec(s, TariffSpec(plan_name="prepaid", values={
            "time_price": parse_price("0.60"), "time_unit": 60, "time_increment": 60}))
        plan_id = s.scalars(select(Plan.id).where(Plan.name == "prepaid")).one()
        sub = Subscriber(login="alice", plan_id=plan_id, description="")
        s.add(sub)
        s.flush()
        thd_add_payment(s, "alice", 100, "USD", "initial")
        account = s.scalars(select(BillingAccount)).one()
        s.add(ChargingSession(account_id=account.id, subscriber_id=sub.id, source="session",
                              source_id="u-alice-1", state="active", nas_id=nas.id,
                              acct_session_id="81000001", user_name="alice",
                              framed_ip="100.64.0.9"))
        thd_add_payment(s, "alice", -300, "USD", "usage-correction", kind=EntryKind.ADJUSTMENT)
        assert s.get(BillingAccount, account.id).status == "blocked"  # type: ignore[union-attr]
        return account.id


def make_loop(dbpool: DBPool, **coa: Any) -> Any:
    config = parse_config({"billing": {"currency": "USD"}, "statements": {"enabled": False},
                           "coa": {"timeout": 0.5, "retries": 1, **coa}})
    loop, sender = make_billing_loop(config, dbpool, reactor, live_sessions=None,
                                     captive_attributes=coa_attributes(
                                         config.coa.captive_attributes))
    return loop, sender


def events(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return list(s.scalars(select(BillingEvent.kind).order_by(BillingEvent.id)))


def cut_result(engine: Engine) -> str | None:
    with Session(engine) as s:
        return s.scalars(select(ChargingSession.cut_result)).one()


@pytest_twisted.inlineCallbacks
def test_payment_restores_a_captive_session_with_the_plans_attributes(
        engine: Engine, dbpool: DBPool, nas: tuple[FakeNas, int]):
    """Cut off by CoA to the captive profile; after the payment one CoA puts the plan back."""
    fake, port = nas
    seed(engine, port)
    loop, sender = make_loop(dbpool, captive_attributes=["Mikrotik-Address-List=unpaid"],
                             restore_attributes=["Mikrotik-Address-List=paid"])
    try:
        yield loop.run_once()
        assert [code for code, _ in fake.requests] == [P.CoARequest]
        assert fake.requests[0][1]["Mikrotik-Address-List"] == ["unpaid"]
        assert cut_result(engine) == "captive-ack"
        yield loop.run_once()  # still unpaid: nothing new within the resend window
        assert len(fake.requests) == 1
        yield dbpool.run(thd_add_payment, "alice", 1000, "USD", "P-1")
        assert cut_result(engine) == "restore-due"
        yield loop.run_once()
        assert [code for code, _ in fake.requests] == [P.CoARequest, P.CoARequest]
        attrs = fake.requests[1][1]
        assert attrs["Mikrotik-Rate-Limit"] == ["10M/20M"]
        assert attrs["Mikrotik-Address-List"] == ["paid"]
        assert attrs["Acct-Session-Id"] == ["81000001"] and attrs["User-Name"] == ["alice"]
        assert cut_result(engine) == "restore-ack"
        yield loop.run_once()
        assert len(fake.requests) == 2  # restored once
    finally:
        yield defer.maybeDeferred(sender.close)
    kinds = events(engine)
    assert kinds.index("captive-sent") < kinds.index("unblocked") < kinds.index("restore-due")
    assert kinds[-2:] == ["restore-sent", "restore-ack"]


@pytest_twisted.inlineCallbacks
def test_unanswered_restore_is_retried_not_lost(engine: Engine, dbpool: DBPool,
                                                nas: tuple[FakeNas, int]):
    """A NAS that does not answer the restore: recorded as a timeout and due again later."""
    fake, port = nas
    seed(engine, port)
    loop, sender = make_loop(dbpool, captive_attributes=["Mikrotik-Address-List=unpaid"])
    try:
        yield loop.run_once()
        yield dbpool.run(thd_add_payment, "alice", 1000, "USD", "P-1")
        fake.answer = False
        yield loop.run_once()
        assert cut_result(engine) == "restore-timeout"
        from billing.cutoff import thd_restore_targets

        later = yield dbpool.run(thd_restore_targets, None, None)
        assert later == []  # not again within the resend window
        from datetime import timedelta

        from core.db.base import utcnow

        due = yield dbpool.run(thd_restore_targets, None, utcnow() + timedelta(minutes=2))
        assert [t.action.value for t in due] == ["restore"] and due[0].rate_limit == "10M/20M"
    finally:
        yield defer.maybeDeferred(sender.close)


@pytest_twisted.inlineCallbacks
def test_disconnect_mode_sends_nothing_after_payment(engine: Engine, dbpool: DBPool,
                                                     nas: tuple[FakeNas, int]):
    """Without captive attributes the cut-off disconnects; the payment needs no CoA (re-login)."""
    fake, port = nas
    seed(engine, port)
    loop, sender = make_loop(dbpool)
    try:
        yield loop.run_once()
        assert [code for code, _ in fake.requests] == [P.DisconnectRequest]
        yield dbpool.run(thd_add_payment, "alice", 1000, "USD", "P-1")
        yield loop.run_once()
        assert len(fake.requests) == 1
    finally:
        yield defer.maybeDeferred(sender.close)
    assert "restore-due" not in events(engine)


def test_unknown_coa_attribute_is_a_config_error(tmp_path: Any) -> None:
    """make_service refuses a [coa] attribute the dictionary does not know, naming the key."""
    from core.errors import ConfigError
    from radbill.app import make_service

    config = parse_config({"server": {"data_dir": str(tmp_path)},
                           "coa": {"captive_attributes": ["No-Such-Attribute=1"]}})
    with pytest.raises(ConfigError, match=r"coa\.captive_attributes.*No-Such-Attribute"):
        make_service(config, reactor, check_schema=False)
    with pytest.raises(Exception, match=r"coa\.restore_attributes"):
        parse_config({"coa": {"restore_attributes": ["novalue"]}})
