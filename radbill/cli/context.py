"""What a CLI command needs: the validated config and a synchronous database handle."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from core.config import Config, load_config, require_data_dir
from core.db.engine import make_engine
from core.db.pool import run_in_session
from core.db.schema import check_current
from core.errors import InvalidInput
from webadmin import roles
from webadmin.roles import Caller

T = TypeVar("T")


class CliContext:
    def __init__(self, args: argparse.Namespace, check_schema: bool = True) -> None:
        self.config: Config = load_config(getattr(args, "config", None))
        if not self.config.database.url:  # the SQLite file lives in data_dir
            require_data_dir(self.config)
        self.engine = make_engine(self.config.database_url, pool_size=2,
                                  connect_timeout=self.config.database.connect_timeout)
        if check_schema:
            check_current(self.engine)
        from sqlalchemy.orm import sessionmaker

        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(session, *args)`` in one transaction, like the server's DB pool."""
        return run_in_session(self._factory, fn, *args, **kwargs)

    def run_as(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A service-layer operation ``fn(session, caller, ...)`` as the CLI's caller."""
        return run_in_session(self._factory, fn, cli_caller(), *args, **kwargs)

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


def unix_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (a container with a bare uid)
        import os

        return str(os.getuid())


def cli_caller() -> Caller:
    """Who the audit log names for this command: ``cli:<unix user>``, with admin's rights.

    The CLI holds the database's own credentials, so it could do anything
    anyway; going through the service layer keeps its changes in the audit log.
    """
    return roles.cli_caller(unix_user())


def run_as(args: argparse.Namespace, fn: Callable[..., T], *fn_args: Any, **kw: Any) -> T:
    """``fn(session, cli_caller(), *fn_args)``: a service-layer operation, in one transaction."""
    ctx = CliContext(args)
    try:
        return ctx.run(fn, cli_caller(), *fn_args, **kw)
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


def run_on_private_reactor(main: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``await main(reactor)`` on a reactor of its own and return its result (or raise).

    For commands that must send and receive packets (a billing pass's
    Disconnect-Requests, a kick). A private PollReactor, because the command may
    be called from a process whose global reactor is already taken (tests, an
    embedding application); nothing else shares this one, and it is not
    installed, so no signal handlers are touched.
    """
    from twisted.internet import defer
    from twisted.internet.pollreactor import PollReactor

    reactor = PollReactor()
    outcome: list[Any] = []

    def start() -> None:
        d = defer.ensureDeferred(main(reactor))
        d.addCallbacks(lambda value: outcome.append((True, value)),
                       lambda failure: outcome.append((False, failure.value)))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def run_with_dbpool(config: Config, main: Callable[[Any, Any], Coroutine[Any, Any, T]]) -> T:
    """``await main(reactor, dbpool)`` on a private reactor with the server's kind of DB pool.

    The schema is checked first, as `radbill serve` does, and the pool is
    stopped whatever happens.
    """
    from radbill.app import make_dbpool

    async def with_pool(reactor: Any) -> T:
        dbpool = make_dbpool(config, reactor)
        try:
            check_current(dbpool.engine)
            dbpool.start()
            return await main(reactor, dbpool)
        finally:
            dbpool.stop()

    return run_on_private_reactor(with_pool)
