"""The Access-Accept a subscriber's plan earns, in the NAS vendor's dialect."""

from __future__ import annotations

from aaa.clients import NasClient
from aaa.credentials import SubscriberAuth
from aaa.vendors import rate_limit_attributes


def plan_attributes(client: NasClient, sub: SubscriberAuth) -> list[tuple[str, object]]:
    attrs: list[tuple[str, object]] = []
    plan = sub.plan
    if plan is not None:
        if plan.framed_protocol:
            attrs.append(("Service-Type", "Framed-User"))
            attrs.append(("Framed-Protocol", plan.framed_protocol))
        if plan.session_timeout:
            attrs.append(("Session-Timeout", plan.session_timeout))
        if plan.idle_timeout:
            attrs.append(("Idle-Timeout", plan.idle_timeout))
        if plan.interim_interval:
            attrs.append(("Acct-Interim-Interval", plan.interim_interval))
        if plan.rate_limit:
            # A bad stored rate limit raises ValueError; AccessHandler turns it into a reject.
            attrs.extend(rate_limit_attributes(client.vendor, plan.rate_limit))
        attrs.extend(plan.extra_reply)
    if sub.static_ip:
        attrs.append(("Framed-IP-Address", sub.static_ip))
    return attrs
