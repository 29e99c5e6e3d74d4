"""Password hashes imported from FreeRADIUS, verifiable until the subscriber's next login.

FreeRADIUS's ``rlm_pap`` accepts Crypt-Password, MD5/SMD5-Password, SHA/SSHA-Password,
SHA2/SSHA2-*-Password and Password-With-Header (``{ssha}...``), each digest in hex or
base64. None of them is something radbill would store for a new password, and none
gives the NT hash MS-CHAP needs, but re-asking every subscriber for a password is not an
option in a migration. So the import keeps such a hash in ``subscriber.legacy_hash``,
PAP checks it, and the first successful PAP login replaces it with radbill's own argon2
and NT hashes (aaa.password_upgrade) and clears it.

The stored form is one that libpass (the maintained passlib fork) identifies by itself:
LDAP-style ``{SSHA}base64`` for the digest schemes, the crypt(3) string for Crypt, and
hex for the unsalted SHA-2 digests; the conversion from FreeRADIUS's hex-or-base64 values
happens once, at import (:func:`from_freeradius`), so login only calls libpass.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from passlib.context import CryptContext

__all__ = ["LEGACY_ATTRIBUTES", "UnmappablePassword", "from_freeradius", "verify_legacy"]

_CONTEXT: Final = CryptContext(schemes=[
    "ldap_md5", "ldap_salted_md5", "ldap_sha1", "ldap_salted_sha1", "ldap_salted_sha256",
    "ldap_salted_sha512", "md5_crypt", "sha256_crypt", "sha512_crypt", "des_crypt",
    "hex_sha256", "hex_sha512",
])


class UnmappablePassword(ValueError):
    """A FreeRADIUS password attribute radbill cannot verify; the import reports it."""


# FreeRADIUS attribute -> (LDAP scheme tag, digest length or None for "salted, longer").
_DIGESTS: Final[dict[str, tuple[str, int, bool]]] = {
    "md5-password": ("{MD5}", 16, False),
    "smd5-password": ("{SMD5}", 16, True),
    "sha-password": ("{SHA}", 20, False),
    "sha1-password": ("{SHA}", 20, False),
    "ssha-password": ("{SSHA}", 20, True),
    "ssha1-password": ("{SSHA}", 20, True),
    "ssha2-256-password": ("{SSHA256}", 32, True),
    "ssha2-512-password": ("{SSHA512}", 64, True),
}
# Password-With-Header's {header} -> the attribute it stands for (rlm_pap's header table).
_HEADERS: Final = {
    "{clear}": "cleartext-password", "{cleartext}": "cleartext-password",
    "{crypt}": "crypt-password", "{md5}": "md5-password", "{smd5}": "smd5-password",
    "{sha}": "sha-password", "{ssha}": "ssha-password", "{sha2}": "sha2-password",
    "{sha256}": "sha2-password", "{sha512}": "sha2-password",
    "{ssha256}": "ssha2-256-password", "{ssha512}": "ssha2-512-password",
    "{nt}": "nt-password", "{nthash}": "nt-password", "{x-nthash}": "nt-password",
}

#: The check attributes an import turns into a legacy hash (lower case).
LEGACY_ATTRIBUTES: Final = frozenset({*_DIGESTS, "crypt-password", "sha2-password",
                                      "password-with-header"})


def _octets(value: str, min_len: int) -> bytes:
    """FreeRADIUS's normify(): hex if it is exactly hex of a plausible size, else base64."""
    text = value.strip()
    if len(text) >= 2 * min_len and len(text) % 2 == 0:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UnmappablePassword("neither hex nor base64") from None
    if len(raw) < min_len:
        raise UnmappablePassword(f"{len(raw)} octets, at least {min_len} expected")
    return raw


def split_header(value: str) -> tuple[str, str]:
    """Password-With-Header ``{ssha}...`` -> (the attribute it stands for, the value)."""
    if value.startswith("{") and "}" in value:
        header, _, rest = value.partition("}")
        attribute = _HEADERS.get(header.lower() + "}")
        if attribute is not None:
            return attribute, rest
        raise UnmappablePassword(f"header {header}}} is not supported")
    # rlm_pap treats a value without a header as cleartext.
    return "cleartext-password", value


def from_freeradius(attribute: str, value: str) -> str:
    """The stored form of a FreeRADIUS password check item; UnmappablePassword if none."""
    name = attribute.lower()
    if name == "password-with-header":
        name, value = split_header(value)
        if name in ("cleartext-password", "nt-password"):
            raise UnmappablePassword(f"{name} is not a legacy hash (import it as such)")
    if name == "crypt-password":
        if _CONTEXT.identify(value) is None:
            raise UnmappablePassword("crypt format not supported (MD5, SHA-256, SHA-512, DES)")
        return value
    if name == "sha2-password":
        raw = _octets(value, 28)
        if len(raw) == 32:
            return raw.hex()  # hex_sha256
        if len(raw) == 64:
            return raw.hex()  # hex_sha512
        raise UnmappablePassword(f"SHA-2 digest of {len(raw)} octets (only 256 and 512 bits)")
    known = _DIGESTS.get(name)
    if known is None:
        raise UnmappablePassword(f"{attribute} is not a password hash radbill can verify")
    tag, size, salted = known
    raw = _octets(value, size)
    if salted:
        salt = len(raw) - size
        if not 4 <= salt <= 16:
            raise UnmappablePassword(f"salt of {salt} octets (4 to 16 supported)")
    elif len(raw) != size:
        raise UnmappablePassword(f"digest of {len(raw)} octets, {size} expected")
    stored = tag + base64.b64encode(raw).decode("ascii")
    if _CONTEXT.identify(stored) is None:  # pragma: no cover - the tags above are libpass's
        raise UnmappablePassword(f"{attribute} cannot be verified")
    return stored


def verify_legacy(stored: str | None, password: bytes) -> bool:
    """Check a PAP password against a legacy hash; never raises (a bad row is a reject).

    Runs in a thread: crypt schemes cost milliseconds (sha512_crypt: 5,000 rounds).
    """
    if not stored:
        return False
    try:
        return bool(_CONTEXT.verify(password, stored))
    except (ValueError, TypeError):
        return False
