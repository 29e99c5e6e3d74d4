"""Passwords made storable for every method radbill verifies.

Hashing stays outside the ``thd_*`` functions: one argon2 hash costs tens of milliseconds
and 64 MiB, and holding a transaction (and a DB thread) open for it would stall every writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import argon2

from aaa.admin.validate import NT_HASH_RE, validate_password
from aaa.mschap import nt_password_hash
from aaa.pap import hash_password
from core.errors import InvalidInput


@dataclass(frozen=True)
class Credentials:
    """A password made storable: argon2 for PAP, NT hash for MS-CHAPv2, cleartext for CHAP.

    The cleartext rides along (hidden from repr) so the ``thd_*`` function
    can keep it exactly when CHAP is on for the subscriber, and drop it
    otherwise.
    """

    password_hash: str | None = field(default=None, repr=False)
    nt_hash: str | None = field(default=None, repr=False)
    cleartext: str | None = field(default=None, repr=False)





def hash_credentials(password: str) -> Credentials:
    """Hash a new password for every method radbill can verify (slow: ~70 ms of argon2)."""
    validate_password(password)
    return Credentials(password_hash=hash_password(password),
                       nt_hash=nt_password_hash(password).hex(),
                       cleartext=password)


def validate_password_hash(value: str) -> str:
    try:
        argon2.extract_parameters(value)
    except Exception:
        raise InvalidInput("password_hash is not an argon2 hash ($argon2id$...)") from None
    return value


def validate_nt_hash(value: str) -> str:
    if not NT_HASH_RE.match(value):
        raise InvalidInput("nt_hash must be 32 hexadecimal digits (MD4 of the UTF-16LE password)")
    return value.lower()
