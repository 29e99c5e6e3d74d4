"""FreeRADIUS password hashes: conversion at import, PAP against them, upgrade at login."""

from __future__ import annotations

import base64
import hashlib

import pytest
import pytest_twisted
from passlib.hash import md5_crypt, sha512_crypt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from twisted.internet import reactor
from twisted.internet.task import Clock

from aaa.authenticate import Authenticator
from aaa.credentials import CredentialStore
from aaa.legacy_passwords import UnmappablePassword, from_freeradius, verify_legacy
from aaa.mschap import nt_password_hash
from aaa.outcome import Outcome
from aaa.pap import verify_password
from aaa.password_upgrade import PasswordUpgrader
from aaa.verifier import PasswordVerifier
from core.db.models import Subscriber
from core.db.pool import DBPool
from tests.test_password_upgrade import pap_request

PW = "Old-Secret1"
SALT = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def freeradius_values() -> list[tuple[str, str]]:
    """The same password in every form rlm_pap accepts, hex and base64 where it takes both."""
    pw = PW.encode()
    md5 = hashlib.md5(pw).digest()  # noqa: S324
    sha1 = hashlib.sha1(pw).digest()  # noqa: S324
    smd5 = hashlib.md5(pw + SALT).digest() + SALT  # noqa: S324
    ssha = hashlib.sha1(pw + SALT).digest() + SALT  # noqa: S324
    ssha256 = hashlib.sha256(pw + SALT).digest() + SALT
    ssha512 = hashlib.sha512(pw + SALT).digest() + SALT
    return [
        ("MD5-Password", md5.hex()), ("MD5-Password", _b64(md5)),
        ("SMD5-Password", smd5.hex()), ("SMD5-Password", _b64(smd5)),
        ("SHA-Password", sha1.hex()), ("SHA1-Password", _b64(sha1)),
        ("SSHA-Password", ssha.hex()), ("SSHA1-Password", _b64(ssha)),
        ("SSHA2-256-Password", _b64(ssha256)), ("SSHA2-512-Password", ssha512.hex()),
        ("SHA2-Password", hashlib.sha256(pw).hexdigest()),
        ("SHA2-Password", _b64(hashlib.sha512(pw).digest())),
        ("Crypt-Password", md5_crypt.hash(PW)),
        ("Crypt-Password", sha512_crypt.using(rounds=5000).hash(PW)),
        ("Password-With-Header", "{SSHA}" + _b64(ssha)),
        ("Password-With-Header", "{crypt}" + md5_crypt.hash(PW)),
        ("Password-With-Header", "{md5}" + md5.hex()),
    ]


@pytest.mark.parametrize(("attribute", "value"), freeradius_values())
def test_every_freeradius_form_verifies_the_password_only(attribute: str, value: str) -> None:
    """Each FreeRADIUS hash form converts to a stored hash that verifies PW and nothing else."""
    stored = from_freeradius(attribute, value)
    assert verify_legacy(stored, PW.encode())
    assert not verify_legacy(stored, b"old-secret1")
    assert not verify_legacy(stored, b"")


@pytest.mark.parametrize(("attribute", "value"), [
    ("MD5-Password", "not a hash!"), ("SHA-Password", "abcd"),
    ("Crypt-Password", "$9$unknown$format"), ("SSHA-Password", _b64(b"x" * 20 + b"ab")),
    ("PBKDF2-Password", "HMACSHA2+256:AAAnEA==:..."), ("Password-With-Header", "{x-orcllmv}00"),
    ("Password-With-Header", "{clear}plain"), ("LM-Password", "00" * 16),
])
def test_unverifiable_values_are_refused(attribute: str, value: str) -> None:
    """A value radbill could never verify is refused at import, not stored to fail later."""
    with pytest.raises(UnmappablePassword):
        from_freeradius(attribute, value)


def test_verify_legacy_never_raises_on_junk() -> None:
    """A corrupt stored value is a reject, not an exception."""
    assert not verify_legacy("{SSHA}!!!", b"x")
    assert not verify_legacy("garbage", b"x")
    assert not verify_legacy(None, b"x")


@pytest_twisted.inlineCallbacks
def test_legacy_login_upgrades_to_radbill_hashes(engine: Engine, dbpool: DBPool):  # type: ignore[no-untyped-def]
    """A legacy subscriber logs in by PAP once; then argon2 and NT hashes replace the legacy one."""
    stored = from_freeradius("SSHA-Password", freeradius_values()[6][1])
    with Session(engine) as s, s.begin():
        s.add(Subscriber(login="imp", legacy_hash=stored))
    store = CredentialStore(dbpool, Clock(), ttl=60)
    upgrades: list[object] = []
    upgrader = PasswordUpgrader(dbpool, reactor, store)  # type: ignore[arg-type]

    def upgrade(sub, password):  # type: ignore[no-untyped-def]
        upgrades.append(upgrader(sub, password))

    auth = Authenticator(PasswordVerifier(reactor), upgrade)  # type: ignore[arg-type]
    sub = yield store.get("imp")
    wrong = yield auth.authenticate(pap_request(b"nope"), b"imp", sub)
    assert wrong.outcome is Outcome.WRONG_PASSWORD and upgrades == []
    ok = yield auth.authenticate(pap_request(PW.encode()), b"imp", sub)
    assert ok.outcome is Outcome.ACCEPT
    yield upgrades[0]
    with Session(engine) as s:
        row = s.scalars(select(Subscriber).where(Subscriber.login == "imp")).one()
        assert row.legacy_hash is None
        assert row.nt_hash == nt_password_hash(PW).hex()
        assert row.password_hash is not None and verify_password(row.password_hash, PW.encode())
    # The next login goes through argon2, not the (gone) legacy hash.
    fresh = yield store.get("imp")
    assert fresh.legacy_hash is None and fresh.password_hash is not None
    again = yield auth.authenticate(pap_request(PW.encode()), b"imp", fresh)
    assert again.outcome is Outcome.ACCEPT


@pytest_twisted.inlineCallbacks
def test_upgrade_does_not_overwrite_a_changed_password(engine: Engine, dbpool: DBPool):  # type: ignore[no-untyped-def]
    """A password set while the legacy login was in flight is kept."""
    stored = from_freeradius("MD5-Password", hashlib.md5(b"old").hexdigest())  # noqa: S324
    with Session(engine) as s, s.begin():
        s.add(Subscriber(login="imp", legacy_hash=stored))
    store = CredentialStore(dbpool, Clock(), ttl=60)
    sub = yield store.get("imp")
    with Session(engine) as s, s.begin():
        row = s.scalars(select(Subscriber).where(Subscriber.login == "imp")).one()
        row.legacy_hash, row.nt_hash = None, nt_password_hash("new").hex()
    yield PasswordUpgrader(dbpool, reactor, store)(sub, "old")  # type: ignore[arg-type]
    with Session(engine) as s:
        row = s.scalars(select(Subscriber).where(Subscriber.login == "imp")).one()
        assert row.password_hash is None and row.nt_hash == nt_password_hash("new").hex()
