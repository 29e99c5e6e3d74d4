"""What a CLI command needs: the validated config and a synchronous database handle."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from radbill.config import Config, load_config
from radbill.db.engine import make_engine
from radbill.db.pool import run_in_session
from radbill.db.schema import check_current
from radbill.errors import InvalidInput

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


def run_once(args: argparse.Namespace, fn: Callable[..., T], *fn_args: Any) -> T:
    """Open the database, run one ``thd_*`` function in a transaction, close."""
    ctx = CliContext(args)
    try:
        return ctx.run(fn, *fn_args)
    finally:
        ctx.close()


def stdin_value(value: str, what: str) -> str:
    """'-' means: read the value from standard input (prompting on a terminal).

    Keeps secrets and passwords out of the shell history and out of ``ps`` output.
    """
    if value != "-":
        return value
    if sys.stdin.isatty():
        return getpass.getpass(f"{what}: ")
    line = sys.stdin.readline()
    if not line:
        raise InvalidInput(f"no {what} on standard input")
    return line.rstrip("\r\n")
