"""The ``radbill`` command: one subcommand module per object, registered here.

User mistakes (bad arguments, unknown names, a broken config, an outdated
schema) print one line to stderr and exit non-zero; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from core.errors import RadbillError
from radbill import __version__

# Each module has ``register(subparsers)``; its commands set ``func(args) -> int``.
COMMAND_MODULES = [
    "radbill.cli.db",
    "radbill.cli.serve",
    "radbill.cli.cluster",
    "radbill.cli.nas",
    "radbill.cli.plan",
    "radbill.cli.subscriber",
    "radbill.cli.session",
    "radbill.cli.call",
    "radbill.cli.accounting",
    "radbill.cli.billing",
    "radbill.cli.card",
    "radbill.cli.statement",
    "radbill.cli.report",
    "radbill.cli.notify",
    "radbill.cli.pool",
    "radbill.cli.login",
    "radbill.cli.importer",
    "radbill.cli.access",
    "radbill.cli.doctor",
    "radbill.cli.selfcare",
]

EXIT_USAGE = 2
EXIT_ERROR = 1


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"radbill: {message}\n")


def common_parent() -> argparse.ArgumentParser:
    """Options every command takes, wherever they stand on the command line."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (default: $RADBILL_CONFIG or /etc/radbill/radbill.toml)")
    return parent


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="radbill", description="RADIUS/AAA billing server",
                            parents=[common_parent()])
    parser.add_argument("--version", action="version", version=f"radbill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "config"):
        args.config = None
    try:
        return int(args.func(args) or 0)
    except RadbillError as exc:
        print(f"radbill: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OperationalError as exc:
        print(f"radbill: database error: {exc.orig}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("radbill: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
