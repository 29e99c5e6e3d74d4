"""Disconnect live sessions from the CLI: `session disconnect`; after `subscriber block|disable`.

Exit codes: 0 when every session named is gone from its NAS (or there was
none), 3 when at least one NAS did not confirm (timeout, NAK, unknown NAS):
the caller can retry with `radbill session disconnect`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from radbill.cli.context import run_with_dbpool
from radbill.cli.output import emit_list

EXIT_NOT_CONFIRMED = 3
COLUMNS = ["session", "outcome", "error_cause", "detail"]


def disconnect(args: argparse.Namespace, select: Callable[[Session], list[Any]],
               *, quiet_when_none: bool = False) -> int:
    """Find the live sessions with ``select`` (a thd_* function), disconnect them, report."""
    from aaa.coa import CoaDisconnector
    from aaa.dictionary import load_dictionary
    from aaa.kick import disconnect_sessions
    from core.config import load_config
    from core.logs import setup_logging

    config = load_config(getattr(args, "config", None))
    if not logging.getLogger().handlers:
        setup_logging("WARNING")

    async def main(reactor: Any, dbpool: Any) -> list[Any]:
        sessions = await dbpool.run(select)
        if not sessions:
            return []
        sender = CoaDisconnector.from_config(config, dbpool, reactor, load_dictionary())
        try:
            return await disconnect_sessions(dbpool, sender, sessions)
        finally:
            sender.close()

    results = run_with_dbpool(config, main)
    out = getattr(args, "out", "text")
    if not results:
        if out != "text":
            emit_list([], COLUMNS, out, "disconnects", "disconnect")
        elif not quiet_when_none:
            print("no live sessions")
        return 0
    if out == "text":
        for r in results:
            cause = f" (Error-Cause {r.result.error_cause})" if r.result.error_cause else ""
            detail = f": {r.result.detail}" if r.result.detail else ""
            line = f"disconnect {r.as_dict()['session']}: {r.result.outcome.value}{cause}{detail}"
            print(line, file=sys.stdout if r.ended else sys.stderr)
    else:
        emit_list([r.as_dict() for r in results], COLUMNS, out, "disconnects", "disconnect")
    failed = sum(not r.ended for r in results)
    if failed:
        print(f"radbill: {failed} of {len(results)} live sessions were not confirmed gone; "
              "retry with 'radbill session disconnect'", file=sys.stderr)
        return EXIT_NOT_CONFIRMED
    return 0
