"""The database layer on SQLite and MariaDB: schema checks, sessions, the DB thread pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytest_twisted
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.db import schema
from core.db.models import Nas, Plan, Subscriber
from core.db.pool import DBPool, is_transient
from core.errors import SchemaOutdated


def test_schema_is_current_after_upgrade(engine: Engine) -> None:
    """A freshly upgraded database passes check_current with every branch head applied."""
    schema.check_current(engine)
    assert schema.current_revisions(engine) == schema.head_revisions()


def test_check_current_refuses_empty_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An empty database is refused with the command that fixes it."""
    from core.db.engine import make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with pytest.raises(SchemaOutdated, match="radbill db upgrade"):
        schema.check_current(eng)
    eng.dispose()


def test_check_current_refuses_old_and_unknown_revisions(engine: Engine) -> None:
    """A schema behind the code names the upgrade command; one from the future says so."""
    saved = schema.current_revisions(engine)

    def stamp(*revisions: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))
            for rev in revisions:
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                             {"v": rev})

    try:
        stamp("0001")
        if schema.head_revisions() != {"0001"}:
            with pytest.raises(SchemaOutdated, match="radbill db upgrade"):
                schema.check_current(engine)
        stamp("9999_future")
        with pytest.raises(SchemaOutdated, match="newer than this radbill"):
            schema.check_current(engine)
    finally:
        stamp(*saved)  # the MariaDB database is reused by the next test


def test_timestamps_round_trip_in_utc(engine: Engine) -> None:
    """Aware datetimes come back aware, in UTC, with microseconds, on both databases."""
    when = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC) + timedelta(hours=0)
    with Session(engine) as s, s.begin():
        s.add(Nas(name="n1", address="192.0.2.1", secret="x", created_at=when, updated_at=when))
    with Session(engine) as s:
        got = s.scalars(select(Nas.created_at)).one()
    assert got == when
    assert got.tzinfo is not None


def test_logins_are_unique_and_case_sensitive(engine: Engine) -> None:
    """'Alice' and 'alice' are different logins; a second 'alice' violates the unique key."""
    with Session(engine) as s, s.begin():
        s.add_all([Subscriber(login="alice"), Subscriber(login="Alice")])
    with Session(engine) as s:
        assert s.scalars(select(Subscriber.login).where(Subscriber.login == "Alice")).all() == [
            "Alice"]
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(Subscriber(login="alice"))


def test_plan_in_use_cannot_be_deleted(engine: Engine) -> None:
    """The foreign key from subscriber to plan is enforced (SQLite has foreign_keys=ON)."""
    with Session(engine) as s, s.begin():
        plan = Plan(name="p")
        s.add(plan)
        s.flush()
        s.add(Subscriber(login="u", plan_id=plan.id))
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.execute(text("DELETE FROM plan"))


def test_run_sync_commits_and_rolls_back(dbpool: DBPool) -> None:
    """A thd_ function's work is committed on return and rolled back when it raises."""
    def add(session: Session, name: str) -> int:
        nas = Nas(name=name, address="192.0.2.9", secret="s")
        session.add(nas)
        session.flush()
        return nas.id

    def add_then_fail(session: Session) -> None:
        session.add(Nas(name="ghost", address="192.0.2.8", secret="s"))
        session.flush()
        raise RuntimeError("boom")

    assert dbpool.run_sync(add, "kept") > 0
    with pytest.raises(RuntimeError):
        dbpool.run_sync(add_then_fail)
    names = dbpool.run_sync(lambda s: s.scalars(select(Nas.name)).all())
    assert names == ["kept"]


@pytest_twisted.inlineCallbacks
def test_run_returns_deferred_from_db_thread(dbpool: DBPool):  # type: ignore[no-untyped-def]
    """DBPool.run executes off the reactor thread and fires the Deferred with the result."""
    import threading

    main = threading.get_ident()

    def where(session: Session) -> tuple[int, int]:
        return threading.get_ident(), session.execute(text("SELECT 1")).scalar_one()

    ident, one = yield dbpool.run(where)
    assert one == 1
    assert ident != main


def test_transient_error_classification() -> None:
    """Deadlocks and lost connections are transient; a syntax error is not."""
    class Orig(Exception):
        pass

    assert is_transient(OperationalError("x", {}, Orig(1213, "Deadlock found")))
    assert is_transient(OperationalError("x", {}, Orig(2013, "Lost connection")))
    assert not is_transient(OperationalError("x", {}, Orig(1064, "syntax")))
    assert is_transient(OperationalError("x", {}, Orig("database is locked")))


def test_run_after_stop_fails_at_once(engine: Engine) -> None:
    """Work given to a stopped pool fails immediately instead of waiting forever."""
    from core.errors import DatabaseUnavailable

    pool = DBPool(engine)
    pool.start()
    pool.stop()
    failures: list[BaseException] = []
    pool.run(lambda session: 1).addErrback(lambda f: failures.append(f.value))
    assert len(failures) == 1 and isinstance(failures[0], DatabaseUnavailable)
