"""Who may do what: every role's permissions, declared once, read by every face.

The service layer (``webadmin.service``) asks :meth:`Caller.require` before each
operation, so the CLI, the HTTP API and the pages refuse exactly the same
things; the pages use :func:`may` only to hide what would be refused anyway.
The API's endpoint declarations name one permission each, and a test walks
every role against every endpoint from this table.

A reseller-scoped caller (``reseller_id`` set) additionally sees only its own
reseller's subscribers, plans (and the operator's shared plans, read-only),
accounts, payments, sessions and calls: the service layer answers "not found"
for anything else, so a reseller cannot even confirm that another reseller's
login exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from webadmin.errors import Forbidden

PERMISSIONS: dict[str, str] = {
    "me.read": "who the caller is (GET /api/v1/me), and logging out",
    "dashboard.read": "dashboard figures",
    "report.read": "reports",
    "nas.read": "list and show NAS clients (secrets masked)",
    "nas.write": "add, change, remove NAS clients",
    "plan.read": "list and show plans and prices",
    "plan.write": "add, change, remove plans and their prices",
    "pool.read": "list pools and leases",
    "pool.write": "add, change, remove pools; static assignments",
    "subscriber.read": "list and show subscribers",
    "subscriber.write": "add, change, block, remove subscribers",
    "subscriber.password": "set a subscriber's password",
    "account.read": "balances, held money, ledger",
    "account.credit": "change an account's credit limit",
    "payment.read": "list payments",
    "payment.write": "post payments, refunds, adjustments",
    "session.read": "sessions",
    "session.disconnect": "send a Disconnect-Request for a live session",
    "call.read": "call records",
    "rating.read": "rating dry-runs (what a session or call would cost)",
    "billing.read": "the billing loop's state",
    "billing.run": "run a billing pass now",
    "reseller.admin": "add, change, remove resellers; their top-ups and limits",
    "card.read": "list and show prepaid card batches and cards",
    "card.write": "create card batches; block and unblock cards",
    "card.activate": "credit a prepaid card to a subscriber",
    "document.read": "statements and issued documents (invoices), and their files",
    "statement.issue": "issue a month's statements now",
    "export.read": "payment, charge, invoice and balance exports for accounting",
    "operator.admin": "operators",
    "token.admin": "API tokens",
    "audit.read": "the audit log",
    "self.read": "self-care: own account, sessions, calls, payments, ledger",
    "self.write": "self-care: change own password",
    "selfcare.login": "open a subscriber's self-care session (a self-care front end)",
}

_ALL_READ = frozenset(p for p in PERMISSIONS if p.endswith(".read")
                      and not p.startswith(("self.", "audit.")))  # includes me.read
_MANAGE = frozenset({"nas.write", "plan.write", "pool.write", "subscriber.write",
                     "subscriber.password", "session.disconnect", "card.write"})
_MONEY = frozenset({"payment.write", "account.credit", "card.activate"})
_SELF = frozenset({"self.read", "self.write"})
_ME = frozenset({"me.read"})

ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS) - _SELF - {"selfcare.login"},
    "manager": _ALL_READ | _MANAGE,
    "cashier": frozenset({"me.read", "dashboard.read", "subscriber.read", "account.read",
                          "payment.read", "card.read", "document.read",
                          "export.read"}) | _MONEY,
    "support": _ALL_READ | {"session.disconnect"},
    "reseller": frozenset({"me.read", "dashboard.read", "report.read", "plan.read", "plan.write",
                           "subscriber.read", "subscriber.write", "subscriber.password",
                           "account.read", "payment.read", "session.read", "call.read",
                           "session.disconnect", "rating.read", "card.read",
                           "card.write"}) | _MONEY,
    "subscriber": _SELF | _ME,
    "selfcare-frontend": frozenset({"selfcare.login"}),
}

ROLE_DOCS: dict[str, str] = {
    "admin": "everything, including operators, tokens, resellers and the audit log",
    "manager": "subscribers, plans, NAS, pools, sessions, disconnect; reads all; no operators",
    "cashier": "payments, refunds, accounts and credit limits; reads subscribers",
    "support": "reads everything except operators, tokens and the audit log; may disconnect",
    "reseller": "like manager and cashier, over its own reseller's subscribers, plans and "
                "payments only (needs --reseller)",
    "subscriber": "self-care: only its own account",
    "selfcare-frontend": "a self-care site: may only log subscribers in, then acts as them",
}

# Roles a person (operator) or a software token may hold; 'subscriber' is what a
# self-care login becomes, never something one creates.
OPERATOR_ROLES = ("admin", "manager", "cashier", "support", "reseller")
TOKEN_ROLES = (*OPERATOR_ROLES, "selfcare-frontend")
SCOPED_ROLES = frozenset({"reseller"})


@dataclass(frozen=True)
class Caller:
    """Who is asking: what the service layer checks and what the audit log records.

    ``actor`` is the audit log's name for it (``operator:alice``, ``token:erp``,
    ``cli:root``, ``subscriber:bob``); ``address`` the client address (empty for
    the CLI).
    """

    actor: str
    role: str
    reseller_id: int | None = None
    reseller: str | None = None
    operator_id: int | None = None
    token_id: int | None = None
    subscriber_id: int | None = None
    subscriber: str | None = None
    address: str = ""

    @property
    def scoped(self) -> bool:
        return self.reseller_id is not None

    def may(self, permission: str) -> bool:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        return permission in ROLES.get(self.role, frozenset())

    def require(self, permission: str) -> None:
        if not self.may(permission):
            raise Forbidden(f"{self.role} may not {PERMISSIONS[permission]}")


def may(caller: Caller | None, permission: str) -> bool:
    return caller is not None and caller.may(permission)


def cli_caller(unix_user: str) -> Caller:
    """The CLI runs with the database's own credentials: it may do everything an admin may."""
    return Caller(actor=f"cli:{unix_user}", role="admin")
