"""Hotspot vouchers: an unknown login that is an unused card with a plan becomes a subscriber.

Wired into :class:`aaa.access.AccessHandler` as its ``unknown_login``
fallback, so a known login never pays for it. Only PAP carries the PIN in a
form radbill can check against the card's hash (CHAP and MS-CHAP need a
stored cleartext or NT hash, which a card never has), so other methods fall
through to "unknown login". A wrong PIN goes to billing.cards like any other
activation (counted per address: the Calling-Station-Id, else the NAS), the
right one creates the subscriber (login = serial, password = argon2 of the
PIN, plan = the batch's) and books the value as a ``card`` payment in one
transaction; the normal authentication then runs against the new row. The
argon2 hash is computed only after a cheap read found the PIN right, so
guessing costs radbill no argon2.
"""

from __future__ import annotations

import logging
from typing import Any

from pyrad.packet import Packet
from sqlalchemy import select
from sqlalchemy.orm import Session
from twisted.internet import defer, threads

from aaa.authenticate import detect_method, raw
from aaa.clients import NasClient
from aaa.credentials import CredentialStore, SubscriberAuth
from aaa.errors import CryptoInputError
from aaa.pap import decrypt_user_password, hash_password
from billing.card_models import Card, CardBatch, CardStatus
from billing.cards import DEFAULT_POLICY, CardPolicy, pin_matches, thd_activate

log = logging.getLogger(__name__)

USER_PASSWORD = 2
SERIAL_LENGTHS = range(6, 33)


def thd_voucher_pin_ok(session: Session, serial: str, pin: str) -> bool:
    """A read-only pre-check: an unused card with a plan whose PIN matches."""
    row = session.execute(select(Card.pin_hash, Card.status, CardBatch.plan_id)
                          .join(CardBatch, CardBatch.id == Card.batch_id)
                          .where(Card.serial == serial)).one_or_none()
    return (row is not None and row[1] == CardStatus.ACTIVE.value and row[2] is not None
            and pin_matches(row[0], pin))


class VoucherLogin:
    """``unknown_login`` fallback: Deferred[SubscriberAuth | None], or None when not a voucher."""

    def __init__(self, dbpool: Any, credentials: CredentialStore, reactor: Any, currency: str,
                 policy: CardPolicy = DEFAULT_POLICY) -> None:
        self.dbpool, self.credentials, self.reactor = dbpool, credentials, reactor
        self.currency, self.policy = currency, policy

    def __call__(self, client: NasClient, pkt: Packet,
                 user_name: str) -> defer.Deferred[SubscriberAuth | None] | None:
        if not (user_name.isdigit() and len(user_name) in SERIAL_LENGTHS):
            return None
        if detect_method(pkt) != "pap":
            return None
        try:
            pin = decrypt_user_password(raw(pkt, USER_PASSWORD) or b"", pkt.secret,
                                        pkt.authenticator).decode("utf-8")
        except (CryptoInputError, UnicodeDecodeError):
            return None
        address = self._address(pkt, client)
        return defer.ensureDeferred(self._activate(user_name, pin, address))

    @staticmethod
    def _address(pkt: Packet, client: NasClient) -> str:
        try:
            calling = pkt.get("Calling-Station-Id")
        except Exception:
            calling = None
        if calling:
            return f"station:{calling[0]}"
        return f"nas:{client.name}"

    async def _activate(self, serial: str, pin: str, address: str) -> SubscriberAuth | None:
        ok = await self.dbpool.run(thd_voucher_pin_ok, serial, pin)
        password_hash = None
        if ok:
            password_hash = await threads.deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), hash_password, pin)
        result = await self.dbpool.run(thd_activate, serial, pin, None, self.currency,
                                       via="radius", address=address, policy=self.policy,
                                       voucher_password_hash=password_hash)
        if not result.ok:
            log.info("voucher login %s from %s refused: %s", serial, address, result.refused)
            return None
        log.info("voucher %s activated from %s: subscriber %s created", serial, address,
                 result.login)
        self.credentials.invalidate(serial)
        return await defer.maybeDeferred(self.credentials.get, serial)  # type: ignore[no-any-return]
