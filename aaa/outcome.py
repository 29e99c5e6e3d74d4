"""One table from the outcome of a request to the reply that goes back to the NAS.

Like FreeRADIUS v4's ``process/radius/base.c``: handlers decide an Outcome,
and only this table knows which packet code and Reply-Message it means.
``None`` as code means no reply at all: for accounting that makes the NAS
resend (RFC 2866 section 2), for authentication that lets the NAS fail over
to another server instead of rejecting a subscriber for our fault.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pyrad import packet as P


class Outcome(enum.StrEnum):
    ACCEPT = "accept"
    UNKNOWN_LOGIN = "unknown-login"
    WRONG_PASSWORD = "wrong-password"  # noqa: S105
    BLOCKED = "blocked"
    DISABLED = "disabled"
    TOO_MANY_SESSIONS = "too-many-sessions"
    NO_BALANCE = "no-balance"
    POOL_EXHAUSTED = "pool-exhausted"
    UNSUPPORTED_METHOD = "unsupported-method"
    NO_CREDENTIALS = "no-credentials"
    MALFORMED_CREDENTIALS = "malformed-credentials"
    MISCONFIGURED = "misconfigured"
    STATUS_OK = "status-ok"
    ACCOUNTING_STORED = "accounting-stored"
    ACCOUNTING_IGNORED = "accounting-ignored"
    THROTTLED = "throttled"  # too many wrong passwords for this login or NAS port lately
    SHED = "shed"  # the slow password check did not fit its queue (aaa.slowqueue)
    DATABASE_DOWN = "database-down"  # radius.on_database_down = "drop"
    DATABASE_DOWN_REJECT = "database-down-reject"  # radius.on_database_down = "reject"
    FAILED = "failed"


@dataclass(frozen=True)
class ReplyRule:
    code: int | None
    message: str | None = None


# request code -> outcome -> reply
ACCESS_REPLIES: dict[Outcome, ReplyRule] = {
    Outcome.ACCEPT: ReplyRule(P.AccessAccept),
    Outcome.UNKNOWN_LOGIN: ReplyRule(P.AccessReject, "Unknown login"),
    Outcome.WRONG_PASSWORD: ReplyRule(P.AccessReject, "Wrong password"),
    Outcome.BLOCKED: ReplyRule(P.AccessReject, "Account blocked"),
    Outcome.DISABLED: ReplyRule(P.AccessReject, "Account disabled"),
    Outcome.TOO_MANY_SESSIONS: ReplyRule(P.AccessReject, "Too many simultaneous sessions"),
    Outcome.NO_BALANCE: ReplyRule(P.AccessReject, "Insufficient balance"),
    Outcome.POOL_EXHAUSTED: ReplyRule(P.AccessReject, "Address pool is full"),
    Outcome.UNSUPPORTED_METHOD: ReplyRule(P.AccessReject, "Authentication method not supported"),
    Outcome.NO_CREDENTIALS: ReplyRule(P.AccessReject, "No credentials in request"),
    Outcome.MALFORMED_CREDENTIALS: ReplyRule(P.AccessReject, "Malformed credentials"),
    Outcome.MISCONFIGURED: ReplyRule(P.AccessReject, "Service configuration error"),
    Outcome.STATUS_OK: ReplyRule(P.AccessAccept),
    Outcome.THROTTLED: ReplyRule(P.AccessReject, "Too many failed logins, try again later"),
    # No reply: the NAS resends later, when the queue has room again.
    Outcome.SHED: ReplyRule(None),
    # No reply: the NAS fails over to another RADIUS server, or retries.
    Outcome.DATABASE_DOWN: ReplyRule(None),
    Outcome.DATABASE_DOWN_REJECT: ReplyRule(P.AccessReject,
                                            "Service temporarily unavailable"),
    Outcome.FAILED: ReplyRule(None),
}

ACCOUNTING_REPLIES: dict[Outcome, ReplyRule] = {
    Outcome.ACCOUNTING_STORED: ReplyRule(P.AccountingResponse),
    # Nothing to store (e.g. an unknown status type we log): still acknowledged,
    # or the NAS would resend it forever.
    Outcome.ACCOUNTING_IGNORED: ReplyRule(P.AccountingResponse),
    Outcome.STATUS_OK: ReplyRule(P.AccountingResponse),
    Outcome.FAILED: ReplyRule(None),
}


@dataclass
class Decision:
    """What a handler decided, with the attributes to send and a detail for the log."""

    outcome: Outcome
    attributes: list[tuple[str, object]] = field(default_factory=list)
    message: str | None = None  # replaces the table's Reply-Message when set
    detail: str = ""


def rule_for(port_kind: str, outcome: Outcome) -> ReplyRule:
    """The reply rule for an outcome on the auth or the acct port (Status-Server goes to both)."""
    table = ACCOUNTING_REPLIES if port_kind == "acct" else ACCESS_REPLIES
    return table.get(outcome, ReplyRule(None))
