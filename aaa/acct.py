"""Accounting-Request handling: turns packets into accounting records (issue 3 fills this in)."""

from __future__ import annotations

from typing import Any

from pyrad.packet import Packet
from twisted.internet import defer

from aaa.clients import NasClient
from aaa.outcome import Decision, Outcome


class AccountingHandler:
    def handle(self, client: NasClient, pkt: Packet) -> defer.Deferred[Decision]:
        return defer.succeed(Decision(Outcome.ACCOUNTING_IGNORED))


def make_accounting_handler(config: Any, dbpool: Any, reactor: Any) -> AccountingHandler:
    return AccountingHandler()
