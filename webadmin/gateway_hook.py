"""POST /hooks/gateway/NAME: a payment gateway's signed webhook, booked once per reference.

Answers JSON: 200 ``{"status": "booked"|"already_booked", ...}`` (gateways
retry until they see a 2xx, so a retry of a booked payment is a 200 too),
401 for a bad signature, 400 for a malformed body, 404 for an unknown
gateway or login (the gateway's operator must look at it), 503 when the
database is unreachable (the gateway retries later). Never a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from twisted.web import resource, server

from billing.errors import NoAccount
from billing.gateways import Gateway, GatewayRejected, thd_gateway_payment
from billing.money import format_amount
from core.db.base import utcnow
from core.errors import DatabaseUnavailable, InvalidInput, NotFound, RadbillError

log = logging.getLogger(__name__)


def _json(request: Any, status: int, body: dict[str, Any]) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body).encode() + b"\n"


class GatewayHook(resource.Resource):
    isLeaf = True

    def __init__(self, gateway: Gateway, dbpool: Any, currency: str) -> None:
        super().__init__()
        self.gateway, self.dbpool, self.currency = gateway, dbpool, currency

    def render_POST(self, request: Any) -> Any:
        body = request.content.read()
        headers = {k.decode("latin-1"): v.decode("latin-1")
                   for k, v in request.requestHeaders.getAllRawHeaders() for v in v}
        try:
            payment = self.gateway.parse(headers, body, utcnow())
        except GatewayRejected as exc:
            log.warning("gateway %s: webhook refused: %s", self.gateway.name, exc)
            return _json(request, exc.status, {"error": {"code": "rejected",
                                                         "message": str(exc)}})
        d = self.dbpool.run(thd_gateway_payment, self.gateway.name, payment, self.currency)

        def booked(result: Any) -> None:
            request.write(_json(request, 200, {
                "status": "booked" if result.created else "already_booked",
                "entry_id": result.entry.id, "login": result.account.login,
                "amount": format_amount(result.entry.amount, self.currency),
                "currency": self.currency, "unblocked": result.unblocked}))
            request.finish()

        def failed(f: Any) -> None:
            exc = f.value
            if isinstance(exc, NoAccount | NotFound):
                status, code = 404, "not_found"
            elif isinstance(exc, GatewayRejected):
                status, code = exc.status, "rejected"
            elif isinstance(exc, InvalidInput | RadbillError) and not isinstance(
                    exc, DatabaseUnavailable):
                status, code = 400, "invalid"
            else:
                if not isinstance(exc, DatabaseUnavailable):
                    log.error("gateway %s webhook failed: %s", self.gateway.name,
                              f.getTraceback())
                status, code, exc = 503, "unavailable", "try again later"
            log.warning("gateway %s: payment %s not booked: %s", self.gateway.name,
                        payment.reference, exc)
            request.write(_json(request, status, {"error": {"code": code,
                                                            "message": str(exc)}}))
            request.finish()

        d.addCallbacks(booked, failed)
        return server.NOT_DONE_YET

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"allow", b"POST")
        return _json(request, 405, {"error": {"code": "method_not_allowed",
                                              "message": "POST a signed webhook"}})


def gateway_hooks(gateways: dict[str, Gateway], dbpool: Any, currency: str
                  ) -> resource.Resource:
    """/hooks/ with gateway/NAME for each enabled gateway."""
    hooks = resource.Resource()
    by_name = resource.Resource()
    hooks.putChild(b"gateway", by_name)
    for name, gw in gateways.items():
        by_name.putChild(name.encode(), GatewayHook(gw, dbpool, currency))
    return hooks
