"""Checking a subscriber's own password for self-care, the way RADIUS PAP would accept it.

argon2 when the subscriber has one, else the NT hash (subscribers imported
with only an NT hash, before their first PAP login). An unknown login costs
one argon2 verification of a dummy hash too, so timing does not tell which
logins exist. Runs in a thread, never on the reactor.
"""

from __future__ import annotations

import hmac

from aaa.admin.subscribers import LoginSecrets
from aaa.mschap import nt_password_hash
from aaa.pap import hash_password, verify_password

_DUMMY = hash_password("radbill-self-care-dummy")
MAY_LOG_IN = ("active", "blocked")  # blocked subscribers still see their balance, to pay


def check_password(secrets: LoginSecrets | None, password: str) -> bool:
    raw = password.encode("utf-8", "replace")
    if secrets is None or secrets.status not in MAY_LOG_IN:
        verify_password(_DUMMY, raw)
        return False
    if secrets.password_hash:
        return verify_password(secrets.password_hash, raw)
    if secrets.nt_hash:
        return hmac.compare_digest(nt_password_hash(password).hex(), secrets.nt_hash.lower())
    verify_password(_DUMMY, raw)
    return False
