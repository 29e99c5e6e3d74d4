"""Prometheus counters of the pools (exposed with the rest when metrics are enabled)."""

from __future__ import annotations

from prometheus_client import Counter

ALLOCATIONS = Counter("radbill_pool_allocations_total",
                      "Identifiers offered in an Access-Accept", ["pool"])
EXHAUSTED = Counter("radbill_pool_exhausted_total",
                    "Access-Requests that found every pool of a kind full", ["pool", "outcome"])
