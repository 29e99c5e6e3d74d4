"""CHAP verification for RADIUS Access-Requests (RFC 1994, RFC 2865 section 2.2).

CHAP needs the cleartext password (or something equivalent to it) on the
server: the response is MD5(ident + secret + challenge), so no one-way
stored hash can verify it. Users with only an argon2 hash (see
:mod:`aaa.pap`) can therefore authenticate with PAP only.

Which challenge to use is a packet-level decision (CHAP-Challenge if the
NAS sent one, else the Request Authenticator, RFC 2865 section 2.2), so the
caller makes it and this module only does the arithmetic.
"""

from __future__ import annotations

import hashlib
import hmac

from aaa.errors import CryptoInputError

__all__ = ["CHAP_PASSWORD_LENGTH", "MIN_CHAP_CHALLENGE_LENGTH", "chap_response", "verify_chap"]

#: CHAP-Password value: 1 octet CHAP Identifier + 16 octets MD5 response.
CHAP_PASSWORD_LENGTH = 17

#: RFC 2865 section 5.40: CHAP-Challenge has Length >= 7, i.e. >= 5 octets
#: of value. A shorter challenge is malformed, and accepting it would let a
#: broken NAS authenticate users against an almost constant challenge.
MIN_CHAP_CHALLENGE_LENGTH = 5


def chap_response(ident: int, cleartext: bytes, challenge: bytes) -> bytes:
    """Compute the RFC 1994 response MD5(ident + secret + challenge).

    Public so that tests and the radclient-style test client can build
    CHAP-Password values with the very same formula the server checks.
    """
    if not 0 <= ident <= 255:
        raise CryptoInputError(f"CHAP identifier out of range: {ident}")
    # MD5 is mandated by RFC 1994 for CHAP; there is no choice of algorithm.
    return hashlib.md5(bytes((ident,)) + cleartext + challenge).digest()  # noqa: S324


def verify_chap(chap_password: bytes, challenge: bytes, cleartext: bytes) -> bool:
    """Check a CHAP-Password attribute value against the cleartext password.

    A wrong password returns False; a malformed attribute raises
    CryptoInputError instead, so that the caller can tell a user typing the
    wrong password apart from a NAS sending garbage (the two get logged
    differently, though both end in an Access-Reject).

    The comparison is constant-time so that response timing leaks nothing
    about how many leading octets of the expected digest matched.
    """
    if len(chap_password) != CHAP_PASSWORD_LENGTH:
        raise CryptoInputError(
            f"CHAP-Password must be {CHAP_PASSWORD_LENGTH} octets, got {len(chap_password)}"
        )
    if len(challenge) < MIN_CHAP_CHALLENGE_LENGTH:
        raise CryptoInputError(
            f"CHAP challenge must be at least {MIN_CHAP_CHALLENGE_LENGTH} octets,"
            f" got {len(challenge)}"
        )
    expected = chap_response(chap_password[0], cleartext, challenge)
    return hmac.compare_digest(expected, chap_password[1:])
