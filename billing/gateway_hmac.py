"""The generic gateway: a JSON webhook signed with HMAC-SHA256, for any PSP or bank bridge.

Request: ``POST /hooks/gateway/hmac`` with a JSON body
``{"login": "alice", "amount": "12.50", "currency": "USD", "reference": "PSP-123"}``
and the header ``X-Radbill-Signature: t=<unix seconds>,v1=<hex>`` where
``<hex>`` is HMAC-SHA256 with the shared secret over ``"<t>." + body`` (the
raw bytes). The timestamp must be within ``[gateway] hmac_tolerance``
seconds of radbill's clock, so a captured request cannot be replayed later;
within the window a replay is harmless, because the payment is idempotent on
its reference. Several ``v1=`` values are accepted (secret rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from billing.gateways import GatewayPayment, GatewayRejected
from core.config import Config
from core.errors import ConfigError

HEADER = "x-radbill-signature"
MAX_BODY = 64 * 1024


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value a sender puts on ``body`` (also used by tests and docs)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class HmacGateway:
    name = "hmac"

    def __init__(self, config: Config) -> None:
        g = config.gateway
        secret = g.hmac_secret
        if g.hmac_secret_file:
            try:
                secret = Path(g.hmac_secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"gateway.hmac_secret_file: {exc.strerror}") from None
        if len(secret) < 16:
            raise ConfigError("gateway.hmac_secret: at least 16 characters are needed "
                              "when the hmac gateway is enabled")
        self.secret = secret.encode()
        self.tolerance = g.hmac_tolerance

    def parse(self, headers: Mapping[str, str], body: bytes, now: datetime) -> GatewayPayment:
        if len(body) > MAX_BODY:
            raise GatewayRejected("body too large")
        header = {k.lower(): v for k, v in headers.items()}.get(HEADER, "")
        parts = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
        stamps = [v for k, v in parts if k == "t"]
        macs = [v for k, v in parts if k == "v1"]
        if len(stamps) != 1 or not stamps[0].isdigit() or not macs:
            raise GatewayRejected("missing or malformed X-Radbill-Signature", 401)
        t = int(stamps[0])
        if abs(now.timestamp() - t) > self.tolerance:
            raise GatewayRejected("signature timestamp outside the tolerance", 401)
        expected = sign(self.secret, body, t).split("v1=", 1)[1]
        if not any(hmac.compare_digest(expected, m) for m in macs):
            raise GatewayRejected("bad signature", 401)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise GatewayRejected("body is not JSON") from None
        if not isinstance(data, dict):
            raise GatewayRejected("body must be a JSON object")
        fields = {}
        for key in ("login", "amount", "currency", "reference"):
            value = data.get(key)
            if isinstance(value, int | float) and key == "amount" and not isinstance(value, bool):
                raise GatewayRejected("amount must be a decimal string like \"12.50\"")
            if not isinstance(value, str) or not value.strip():
                raise GatewayRejected(f"field {key!r} must be a non-empty string")
            fields[key] = value.strip()
        return GatewayPayment(**fields)
