"""RADIUS packets per minute for the dashboard, from the process's own Prometheus counters.

The counters (``aaa.metrics``) are totals since start; a rate needs two
readings a minute apart. The sampler reads them every ``every`` seconds and
keeps the last hour, so the dashboard shows requests per minute and accepts
against rejects without a database row per packet. With ``--workers N`` the
counters live in prometheus-client's multiprocess files and are summed over
every worker of this node.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SAMPLE_SECONDS = 15.0
KEEP = 240  # an hour of samples


@dataclass(frozen=True)
class Totals:
    access: float = 0.0
    accounting: float = 0.0
    accepts: float = 0.0
    rejects: float = 0.0


@dataclass(frozen=True)
class Rates:
    """Per minute over the last full minute of samples; None before there are two samples."""

    access: float | None
    accounting: float | None
    accepts: float | None
    rejects: float | None
    since_start: Totals


def read_totals() -> Totals:
    """The counters now: from the multiprocess files when workers share them, else in-process."""
    from prometheus_client import REGISTRY, CollectorRegistry

    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    access = accounting = accepts = rejects = 0.0
    for metric in registry.collect():
        if metric.name == "radbill_radius_requests":
            for s in metric.samples:
                if not s.name.endswith("_total"):
                    continue
                if s.labels.get("code") == "Access-Request":
                    access += s.value
                elif s.labels.get("code") == "Accounting-Request":
                    accounting += s.value
        elif metric.name == "radbill_radius_outcomes":
            for s in metric.samples:
                if not s.name.endswith("_total") or s.labels.get("port") != "auth":
                    continue
                if s.labels.get("outcome") == "accept":
                    accepts += s.value
                else:
                    rejects += s.value
    return Totals(access, accounting, accepts, rejects)


class RateSampler:
    def __init__(self, read: Callable[[], Totals] = read_totals,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read = read
        self.clock = clock
        self.samples: deque[tuple[float, Totals]] = deque(maxlen=KEEP)
        self._loop: Any = None

    def sample(self) -> None:
        self.samples.append((self.clock(), self.read()))

    def start(self, reactor: Any, every: float = SAMPLE_SECONDS) -> None:
        from twisted.internet import task

        self._loop = task.LoopingCall(self.sample)
        self._loop.clock = reactor
        self._loop.start(every, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def rates(self) -> Rates:
        now_t, now = self.clock(), self.read()
        older = [(t, v) for t, v in self.samples if now_t - t >= 55]
        base = older[-1] if older else (self.samples[0] if self.samples else None)
        if base is None or now_t - base[0] < 1:
            return Rates(None, None, None, None, now)
        minutes = (now_t - base[0]) / 60
        then = base[1]
        return Rates((now.access - then.access) / minutes,
                     (now.accounting - then.accounting) / minutes,
                     (now.accepts - then.accepts) / minutes,
                     (now.rejects - then.rejects) / minutes, now)
