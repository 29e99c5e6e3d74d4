"""Prometheus counters of the RADIUS listeners (exposed by radbill.app when enabled)."""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram

# prometheus-client's multiprocess mode (radbill serve --workers N sets this for each
# worker): values live in files every worker's /metrics endpoint sums up.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter("radbill_radius_requests_total", "RADIUS requests received from known clients",
                   ["port", "code"])
OUTCOMES = Counter("radbill_radius_outcomes_total", "Decisions taken on RADIUS requests",
                   ["port", "outcome"])
DROPPED = Counter("radbill_radius_dropped_total", "Datagrams dropped without a reply",
                  ["port", "reason"])
DUPLICATES = Counter("radbill_radius_duplicates_total",
                     "Retransmissions answered from the duplicate cache or ignored in flight",
                     ["port"])
IN_FLIGHT = Gauge("radbill_radius_in_flight", "Requests being processed", ["port"],
                  multiprocess_mode="livesum")
LATENCY = Histogram("radbill_radius_request_seconds", "Time from datagram to reply", ["port"],
                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))


class InFlightCount:
    """Requests being processed on one kind of port, summed over its listeners.

    A plain integer the reactor thread moves, read by the gauge only when
    scraped: a Gauge inc() and dec() per request were two lock round trips on
    the hot path (bench/auth_bench.py).
    """

    def __init__(self, port: str) -> None:
        self.value = 0
        self.child = IN_FLIGHT.labels(port)
        if not MULTIPROCESS:
            self.child.set_function(lambda: self.value)

    def publish(self) -> None:
        """With worker processes the gauge lives in a shared file: copy the count there."""
        self.child.set(self.value)


def publish_in_flight() -> None:
    for count in IN_FLIGHT_COUNTS.values():
        count.publish()


IN_FLIGHT_COUNTS = {port: InFlightCount(port) for port in ("auth", "acct")}
