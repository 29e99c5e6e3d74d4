"""Shared fixtures: the same database tests run on SQLite and, when configured, MariaDB.

``RADBILL_TEST_DATABASE_URL`` (set by .ci/run) adds a MariaDB run of every
test that takes ``db_url``/``engine``/``dbpool``. In CI (``CI=true``) a
missing or unreachable MariaDB fails those tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from core.db import schema
from core.db.engine import make_engine
from core.db.pool import DBPool

pytest_plugins = ["tests.browser_support", "tests.api_support"]

MARIADB_URL = os.environ.get("RADBILL_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"

_migrated: set[str] = set()


def _backends() -> list[str]:
    return ["sqlite", "mariadb"]


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per backend; MariaDB is skipped locally when unset, failed in CI."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'radbill.sqlite'}"
    if not MARIADB_URL:
        if IN_CI:
            pytest.fail("CI=true but RADBILL_TEST_DATABASE_URL is not set")
        pytest.skip("RADBILL_TEST_DATABASE_URL not set")
    return MARIADB_URL


def _reset_mariadb(engine: Engine) -> None:
    """Drop everything once per run and migrate; afterwards only empty the tables."""
    url = str(engine.url)
    if url not in _migrated:
        with engine.begin() as conn:
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for (name,) in conn.execute(text("SHOW TABLES")).all():
                conn.execute(text(f"DROP TABLE `{name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        schema.upgrade(engine)
        _migrated.add(url)
        return
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for (name,) in conn.execute(text("SHOW TABLES")).all():
            if name != "alembic_version":
                conn.execute(text(f"DELETE FROM `{name}`"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per run; each test gets a copy (Alembic once, not per test)."""
    path = tmp_path_factory.mktemp("template") / "radbill.sqlite"
    eng = make_engine(f"sqlite:///{path}")
    schema.upgrade(eng)
    eng.dispose()  # closing the last connection checkpoints the WAL into the main file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def engine(db_url: str, sqlite_template: Path) -> Iterator[Engine]:
    """A migrated, empty database on the backend under test."""
    if db_url.startswith("sqlite"):
        shutil.copyfile(sqlite_template, db_url.removeprefix("sqlite:///"))
    eng = make_engine(db_url, pool_size=4)
    try:
        if not db_url.startswith("sqlite"):
            _reset_mariadb(eng)
    except Exception as exc:
        eng.dispose()
        if IN_CI or db_url.startswith("sqlite"):
            raise
        pytest.skip(f"database not reachable: {exc}")
    yield eng
    eng.dispose()


@pytest.fixture
def dbpool(engine: Engine) -> Iterator[DBPool]:
    """A started DB thread pool on the test database (uses the global reactor)."""
    pool = DBPool(engine)
    pool.start()
    yield pool
    pool.threadpool.stop()
