"""A reseller's prepaid balance with the operator: top-ups, credit limit, balance.

Top-ups and limits are the operator's (``reseller.admin``) and audited; reading
a balance is ``account.read``, and a reseller's own caller reads only its own.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from billing import resellers as money
from billing.money import format_amount
from core.errors import NotFound
from webadmin.roles import Caller
from webadmin.service import audit


def _shown(b: money.ResellerBalance) -> dict[str, object]:
    c = b.currency
    return {"reseller": b.name, "currency": c, "balance": format_amount(b.balance, c),
            "credit_limit": format_amount(b.credit_limit, c),
            "available": format_amount(b.available, c), "entries": b.entries}


def thd_balance(session: Session, caller: Caller, name: str,
                currency: str) -> dict[str, object]:
    caller.require("account.read")
    if caller.scoped and name != caller.reseller:
        raise NotFound(f"reseller {name!r} not found")
    return _shown(money.thd_reseller_balance(session, name, currency))


def thd_topup(session: Session, caller: Caller, name: str, amount: int, currency: str,
              reference: str) -> dict[str, object]:
    """Exactly once per reference; only a top-up recorded now is audited."""
    caller.require("reseller.admin")
    created, bal = money.thd_topup(session, name, amount, currency, reference)
    out = {"recorded": created, **_shown(bal)}
    if created:
        audit.record(session, caller, "reseller.topup", "reseller", name, None,
                     {"amount": format_amount(amount, currency), "reference": reference,
                      "balance": out["balance"]})
    return out


def thd_set_limit(session: Session, caller: Caller, name: str, limit: int,
                  currency: str) -> dict[str, object]:
    caller.require("reseller.admin")
    before = _shown(money.thd_reseller_balance(session, name, currency))
    after = _shown(money.thd_set_limit(session, name, limit, currency))
    audit.record(session, caller, "reseller.limit", "reseller", name,
                 {"credit_limit": before["credit_limit"]}, {"credit_limit": after["credit_limit"]})
    return after


def thd_set_wholesale(session: Session, caller: Caller, plan: str,
                      percent: str | None) -> dict[str, object]:
    """A plan's wholesale share (None: back to 100 %); the operator's, audited."""
    caller.require("reseller.admin")
    money.thd_set_wholesale(session, plan, percent)
    shown = {"plan": plan, "wholesale_percent": percent or "100"}
    audit.record(session, caller, "reseller.wholesale", "plan", plan, None, shown)
    return shown
