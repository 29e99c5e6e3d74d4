"""Deadlocks and Galera certification conflicts (1213) are retried with a bounded backoff."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from core.db import pool as pool_module
from core.db.pool import CONFLICT_BACKOFF_MAX, CONFLICT_RETRIES, conflict_delay, run_in_session
from core.errors import DatabaseUnavailable


class Errno(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code, f"error {code}")


def failing(times: int, code: int) -> tuple[list[int], Any]:
    calls: list[int] = []

    def fn(session: Any) -> str:
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("UPDATE x", {}, Errno(code))
        return "done"

    return calls, fn


@pytest.fixture
def factory(tmp_path: Any) -> sessionmaker[Any]:
    from core.db.engine import make_engine

    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    return sessionmaker(engine)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(pool_module.time, "sleep", slept.append)
    return slept


def test_conflicts_are_retried_up_to_the_bound(factory: Any, sleeps: list[float]) -> None:
    """Five conflicts in a row still succeed; the waits grow and stay under the cap."""
    calls, fn = failing(5, 1213)
    assert run_in_session(factory, fn) == "done"
    assert len(calls) == 6 and len(sleeps) == 5
    assert all(0 < s <= CONFLICT_BACKOFF_MAX for s in sleeps)
    assert sleeps[-1] > sleeps[0]


def test_conflicts_beyond_the_bound_raise(factory: Any, sleeps: list[float]) -> None:
    """After CONFLICT_RETRIES retries the conflict reaches the caller (no endless loop)."""
    calls, fn = failing(100, 1213)
    with pytest.raises(OperationalError):
        run_in_session(factory, fn)
    assert len(calls) == CONFLICT_RETRIES + 1


def test_retries_zero_means_no_retry_even_for_conflicts(factory: Any, sleeps: list[float]) -> None:
    """A caller that asked for no retries gets the conflict at once."""
    calls, fn = failing(1, 1213)
    with pytest.raises(OperationalError):
        run_in_session(factory, fn, retries=0)
    assert len(calls) == 1 and sleeps == []


def test_other_transient_errors_keep_one_retry(factory: Any, sleeps: list[float]) -> None:
    """A lock wait timeout is retried once, as before; a non-primary Galera node is unreachable."""
    calls, fn = failing(2, 1205)
    with pytest.raises(OperationalError):
        run_in_session(factory, fn)
    assert len(calls) == 2
    calls, fn = failing(5, 1047)
    with pytest.raises(DatabaseUnavailable):
        run_in_session(factory, fn)


def test_backoff_is_bounded_and_jittered() -> None:
    """Delays double from the base, never pass the cap, and vary."""
    assert max(conflict_delay(n) for n in range(1, 30)) <= CONFLICT_BACKOFF_MAX
    assert len({conflict_delay(3) for _ in range(20)}) > 1
