"""Accounting's Prometheus counters."""

from __future__ import annotations

from prometheus_client import Counter

LATE_RECORDS = Counter(
    "radbill_accounting_late_total",
    "Accounting-Requests for a session its NAS had already stopped: acknowledged, not applied",
    ["status"])
