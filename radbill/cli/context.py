"""What a CLI command needs: the validated config and a synchronous database handle."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from radbill.config import Config, load_config
from radbill.db.engine import make_engine
from radbill.db.pool import run_in_session
from radbill.db.schema import check_current

T = TypeVar("T")


class CliContext:
    def __init__(self, args: argparse.Namespace, check_schema: bool = True) -> None:
        self.config: Config = load_config(getattr(args, "config", None))
        self.engine = make_engine(self.config.database_url, pool_size=2,
                                  connect_timeout=self.config.database.connect_timeout)
        if check_schema:
            check_current(self.engine)
        from sqlalchemy.orm import sessionmaker

        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(session, *args)`` in one transaction, like the server's DB pool."""
        return run_in_session(self._factory, fn, *args, **kwargs)

    def session(self) -> Session:
        return self._factory()

    def close(self) -> None:
        self.engine.dispose()
