"""Payment-gateway plugins: a small class per gateway turns a signed webhook into a payment.

A gateway is registered as an entry point in the group ``radbill.gateways``
(``hmac = "billing.gateway_hmac:HmacGateway"`` is radbill's own) and enabled
by name in ``[gateway] enabled``. radbill serves each enabled gateway's
webhook at ``POST /hooks/gateway/NAME``; the gateway checks the signature and
parses the body into a :class:`GatewayPayment`; :func:`thd_gateway_payment`
books it with the idempotency key ``payment:NAME:<reference>``, so the
gateway's retries (they all retry) are booked once and answered the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Protocol

from sqlalchemy.orm import Session

from billing.errors import BillingError
from billing.payments import PaymentResult, thd_add_payment
from core.config import Config
from core.errors import ConfigError

ENTRY_POINT_GROUP = "radbill.gateways"


class GatewayRejected(BillingError):
    """A webhook the gateway refuses: a bad signature, a stale timestamp, a malformed body.

    ``status`` is the HTTP status to answer (401 for signatures, 400 for bodies).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GatewayPayment:
    login: str
    amount: str       # a decimal string in the major unit, parsed with billing.money
    currency: str
    reference: str    # the gateway's own id of the payment


class Gateway(Protocol):
    """What a gateway plugin provides; constructed once with the whole validated config."""

    name: str

    def parse(self, headers: Mapping[str, str], body: bytes, now: datetime) -> GatewayPayment:
        """Verify the webhook (raise GatewayRejected) and return the payment it reports."""
        ...


def load_gateways(config: Config) -> dict[str, Gateway]:
    """The enabled gateways by name; an unknown name is a config error naming the key."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    out: dict[str, Gateway] = {}
    for name in config.gateway.enabled:
        ep = found.get(name)
        if ep is None:
            raise ConfigError(f"gateway.enabled: no gateway {name!r} is installed "
                              f"(known: {', '.join(sorted(found)) or 'none'})")
        cls: Any = ep.load()
        out[name] = cls(config)
    return out


def thd_gateway_payment(session: Session, gateway: str, payment: GatewayPayment,
                        currency: str, now: datetime | None = None) -> PaymentResult:
    """Book a gateway's payment once per (gateway, reference)."""
    from billing.money import parse_amount

    if payment.currency.upper() != currency:
        raise GatewayRejected(f"currency {payment.currency!r} is not {currency}")
    amount = parse_amount(payment.amount, currency)
    reference = f"{gateway}:{payment.reference}"
    return thd_add_payment(session, payment.login, amount, currency, reference=reference,
                           description=f"{gateway} payment {payment.reference}", now=now,
                           method=f"gateway:{gateway}"[:32])
