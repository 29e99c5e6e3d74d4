"""Accounting after Stop changes nothing: acknowledged, logged, counted (issue 12)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from accounting.records import AcctStatus
from tests.test_accounting_store import apply, db, ids  # noqa: F401  (fixtures)
from tests.test_accounting_support import all_deltas, rec, session_row

START, INTERIM, STOP = AcctStatus.START, AcctStatus.INTERIM, AcctStatus.STOP


def late(status: str) -> float:
    return REGISTRY.get_sample_value("radbill_accounting_late_total", {"status": status}) or 0.0


@pytest.mark.parametrize("after", ["interim", "bigger-stop", "interim-same-batch"])
def test_packets_after_stop_add_no_usage(db: Any, ids: dict[str, int], after: str,  # noqa: F811
                                         caplog: pytest.LogCaptureFixture) -> None:
    """An Interim-Update or a second, larger Stop after the Stop leaves the record and the
    usage deltas (so the money) as the Stop left them, and is logged and counted."""
    n = ids["nas1"]
    start = rec(START, nas_id=n, t=0)
    stop = rec(STOP, nas_id=n, t=100, session_time=100, octets_in=1000, octets_out=2000,
               terminate_cause="User-Request")
    extra = {"interim": rec(INTERIM, nas_id=n, t=400, session_time=400, octets_in=90_000,
                            octets_out=90_000),
             "interim-same-batch": rec(INTERIM, nas_id=n, t=400, session_time=400,
                                       octets_in=90_000, octets_out=90_000),
             "bigger-stop": rec(STOP, nas_id=n, t=900, session_time=900, octets_in=10**9,
                                octets_out=10**9, terminate_cause="Lost-Carrier")}[after]
    if after == "interim-same-batch":
        apply(db, [start])
        closed_batch = apply(db, [stop, extra])
        assert [r.action for r in closed_batch] == ["updated", "late"]
        closed = None
    else:
        apply(db, [start, stop])
        closed = db(session_row, start)
    deltas = db(all_deltas)
    status = "INTERIM" if extra.status == INTERIM else "STOP"
    before = late(status)
    with caplog.at_level(logging.INFO, logger="accounting.store"):
        results = apply(db, [extra])
    assert [r.action for r in results] == ["late"]
    row = db(session_row, start)
    if closed is not None:
        assert row == closed
    assert (row["session_time"], row["input_octets"], row["output_octets"]) == (100, 1000, 2000)
    assert row["terminate_cause"] == "User-Request"
    assert db(all_deltas) == deltas
    assert sum(d["seconds"] for d in deltas) == 100
    assert late(status) >= before + 1
    assert any("after its Stop" in r.getMessage() for r in caplog.records)


def test_resent_stop_is_a_duplicate_not_late(db: Any, ids: dict[str, int]) -> None:  # noqa: F811
    """The same Stop again is a plain retransmission: unchanged, not counted as late."""
    n = ids["nas1"]
    stop = rec(STOP, nas_id=n, t=100, session_time=100, octets_in=1, octets_out=2)
    apply(db, [rec(START, nas_id=n, t=0), stop])
    before = late("STOP")
    assert [r.action for r in apply(db, [stop])] == ["unchanged"]
    assert late("STOP") == before
