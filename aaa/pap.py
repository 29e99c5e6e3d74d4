"""PAP: User-Password un-hiding (RFC 2865 section 5.2) and stored password hashes.

Why not pyrad's ``AuthPacket.PwDecrypt``: it returns ``str`` decoded with
``errors="ignore"``, so invalid UTF-8 octets are silently dropped. A
password of ``b"pass\\xff"`` then compares equal to ``"pass"``, and a user
whose NAS sends Latin-1 can never log in even with the right password. It
also accepts an empty attribute (returning ``""``) and values longer than
the 128 octets RFC 2865 allows. :func:`decrypt_user_password` returns the
exact octets and rejects malformed lengths.

Stored passwords are argon2id hashes. They only work for PAP: CHAP and
MS-CHAPv2 need the cleartext or the NT hash on the server (see
:mod:`aaa.chap`, :mod:`aaa.mschap`).
"""

from __future__ import annotations

import hashlib
from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError

from aaa.errors import CryptoInputError

__all__ = [
    "ARGON2_MEMORY_COST_KIB",
    "ARGON2_PARALLELISM",
    "ARGON2_TIME_COST",
    "MAX_USER_PASSWORD_LENGTH",
    "decrypt_user_password",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

#: RFC 2865 5.2: the hidden User-Password is 16 to 128 octets, a multiple of 16.
MAX_USER_PASSWORD_LENGTH: Final = 128
_BLOCK: Final = 16
_AUTHENTICATOR_LENGTH: Final = 16

# argon2id with the RFC 9106 "second recommended option" (low memory):
# t=3, m=64 MiB, p=4, 16-octet salt, 32-octet tag. These equal argon2-cffi's
# current defaults but are spelled out so that a library upgrade cannot
# silently change the cost of new hashes; needs_rehash() then reports hashes
# made with other parameters. One verification takes tens of milliseconds
# and 64 MiB, so under Twisted it must run in a thread (argon2-cffi releases
# the GIL), and the thread pool size bounds memory use during login storms.
ARGON2_TIME_COST: Final = 3
ARGON2_MEMORY_COST_KIB: Final = 65536
ARGON2_PARALLELISM: Final = 4

_hasher: Final = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_COST_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=32,
    salt_len=16,
    encoding="utf-8",
    type=Type.ID,
)


def decrypt_user_password(raw: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Reverse the RFC 2865 5.2 hiding of User-Password, returning the exact octets.

    Trailing NULs are the padding RFC 2865 adds, so they are stripped; a
    password that really ended in NUL cannot be told apart, as with every
    RADIUS server. A wrong shared secret is not detectable here: it yields
    garbage that simply fails the password check.
    """
    if not raw or len(raw) > MAX_USER_PASSWORD_LENGTH or len(raw) % _BLOCK:
        raise CryptoInputError(
            f"User-Password must be 16 to 128 octets and a multiple of 16, got {len(raw)}"
        )
    if len(authenticator) != _AUTHENTICATOR_LENGTH:
        raise CryptoInputError(f"Request Authenticator must be 16 octets, got {len(authenticator)}")
    plain = bytearray()
    previous = authenticator
    for start in range(0, len(raw), _BLOCK):
        block = raw[start : start + _BLOCK]
        # MD5 is mandated by RFC 2865 5.2; there is no choice of algorithm.
        pad = hashlib.md5(secret + previous).digest()  # noqa: S324
        # One big-integer XOR per block instead of a generator per byte (hot path).
        plain += (int.from_bytes(block, "big") ^ int.from_bytes(pad, "big")).to_bytes(
            _BLOCK, "big")
        previous = block
    return bytes(plain.rstrip(b"\x00"))


def hash_password(password: str) -> str:
    """Hash a password for storage (argon2id, parameters above, random salt)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: bytes) -> bool:
    """Check a PAP password against a stored argon2 hash.

    Never raises for a mismatch or an unusable stored hash: for the RADIUS
    server both mean Access-Reject, and an exception would turn a corrupt
    database row into a failed request instead of a logged reject. The
    password is bytes because that is what arrives in User-Password; it may
    well not be UTF-8, and it is hashed as-is (hash_password() stores the
    UTF-8 encoding, so only the matching octets verify). The stored hash is
    trusted for its cost parameters: it comes from our own database.

    The isinstance check is for a NULL hash column (users who only have an
    NT hash for MS-CHAPv2) reaching here despite the annotation.
    """
    if not isinstance(stored_hash, str):
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, ValueError):
        # VerificationError covers mismatches (VerifyMismatchError) and
        # argon2 failures; ValueError covers InvalidHashError and non-ASCII
        # hash strings.
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a stored hash should be replaced after the next successful login.

    An unparseable hash reports True: it can never verify, so whatever
    replaces it is an improvement, and the caller only rehashes after a
    successful verification anyway.
    """
    if not isinstance(stored_hash, str):
        return True
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except ValueError:
        return True
