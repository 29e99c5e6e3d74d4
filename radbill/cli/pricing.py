"""Price options for ``radbill plan set`` and ``radbill plan import|prices``.

The ``plan`` parser belongs to radbill/cli/plan.py; it calls
:func:`add_plan_price_commands` with its subparsers and its ``set`` parser.
Price flags are added to ``plan set`` (so one command sets a plan's service
and its prices); ``plan import FILE.toml`` loads prices for many plans from
the documented TOML format (billing.tariffs), all or nothing; ``plan prices
NAME`` shows them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from billing.money import check_currency
from billing.tariff_store import Applied, describe_tariff
from billing.tariffs import (
    AfterAllowance,
    Period,
    TariffSpec,
    parse_tariff_toml,
)
from core.errors import InvalidInput
from radbill.cli.context import CliContext, run_as
from radbill.cli.output import add_out_argument, emit_object
from webadmin.service import catalog, prices

PRICE_DESTS = ("price_per_minute", "price_per_second", "increment", "price_per_mb",
               "price_per_mb_in", "price_per_mb_out", "monthly_fee", "daily_fee",
               "credit_limit", "timezone", "allowance_minutes", "allowance_mb",
               "allowance_period", "after_allowance", "throttle_rate_limit", "no_allowance")
IGNORED_DESTS = {"help", "name", "config", "func", "out"}


def add_price_options(parser: argparse.ArgumentParser) -> None:
    """The common prices as flags; absent flags leave the plan's prices as they are."""
    s = argparse.SUPPRESS
    g = parser.add_argument_group("prices (billing)")
    g.add_argument("--price-per-minute", metavar="PRICE", default=s,
                   help="time price per minute, e.g. 0.02")
    g.add_argument("--price-per-second", metavar="PRICE", default=s,
                   help="time price per second (instead of per minute)")
    g.add_argument("--increment", type=int, metavar="SECONDS", default=s,
                   help="rating increment: billed time is rounded up to this (1 = per second)")
    g.add_argument("--price-per-mb", metavar="PRICE", default=s,
                   help="traffic price per MB (10^6 octets), both directions")
    g.add_argument("--price-per-mb-in", metavar="PRICE", default=s,
                   help="price per MB the subscriber sends (Acct-Input-Octets)")
    g.add_argument("--price-per-mb-out", metavar="PRICE", default=s,
                   help="price per MB the subscriber receives (Acct-Output-Octets)")
    g.add_argument("--monthly-fee", metavar="AMOUNT", default=s, help="charged each month")
    g.add_argument("--daily-fee", metavar="AMOUNT", default=s, help="charged each day")
    g.add_argument("--credit-limit", metavar="AMOUNT", default=s,
                   help="0 = prepaid; more = postpaid, may owe this much")
    g.add_argument("--timezone", metavar="ZONE", default=s,
                   help="IANA zone for bands and fee periods (default UTC)")
    g.add_argument("--allowance-minutes", type=int, metavar="N", default=s,
                   help="included minutes per period")
    g.add_argument("--allowance-mb", type=int, metavar="N", default=s,
                   help="included traffic (MB) per period")
    g.add_argument("--allowance-period", choices=[p.value for p in Period], default=s)
    g.add_argument("--after-allowance", choices=[a.value for a in AfterAllowance], default=s,
                   help="what happens past the allowance")
    g.add_argument("--throttle-rate-limit", metavar="UP/DOWN", default=s,
                   help="rate limit when throttled, e.g. 1M/1M")
    g.add_argument("--no-allowance", action="store_true", default=s,
                   help="remove the included allowance")


def price_spec(name: str, args: argparse.Namespace, currency: str) -> TariffSpec | None:
    """The TariffSpec the given flags describe, or None when no price flag was given."""
    return prices.price_spec(name, {d: getattr(args, d) for d in PRICE_DESTS
                                    if hasattr(args, d)}, currency)


def add_plan_price_commands(psub: argparse._SubParsersAction[argparse.ArgumentParser],
                            set_parser: argparse.ArgumentParser | None = None) -> None:
    """Add ``plan import`` and ``plan prices``; give ``set_parser`` to add price flags to it."""
    from radbill.cli import common_parent

    imp = psub.add_parser("import", help="load plan prices from a TOML file (all or nothing)",
                          parents=[common_parent()])
    imp.add_argument("file", help="TOML file with [plan.NAME] tables (see docs/billing.md)")
    imp.add_argument("--no-create", action="store_true",
                     help="refuse plans that do not exist instead of creating them")
    imp.set_defaults(func=cmd_import)
    show = psub.add_parser("prices", help="show a plan's prices", parents=[common_parent()])
    show.add_argument("name")
    add_out_argument(show)
    show.set_defaults(func=cmd_prices)
    if set_parser is None:
        set_parser = psub.add_parser("set-prices", help="set a plan's prices",
                                     parents=[common_parent()])
        set_parser.add_argument("name")
    service_dests = {a.dest for a in set_parser._actions} - IGNORED_DESTS
    add_price_options(set_parser)
    original = set_parser.get_default("func")
    set_parser.set_defaults(func=_set_command(original, service_dests))


def _set_command(original: Callable[[argparse.Namespace], int] | None,
                 service_dests: set[str]) -> Callable[[argparse.Namespace], int]:
    def cmd_set(args: argparse.Namespace) -> int:
        service_given = any(hasattr(args, d) and getattr(args, d) not in (None, False)
                            for d in service_dests)
        ctx = CliContext(args)
        try:
            spec = price_spec(args.name, args, check_currency(ctx.config.billing.currency))
            if spec is None and not service_given:
                raise InvalidInput("nothing to change; give at least one option (see --help)")
            if spec is not None:
                applied: Applied = ctx.run_as(catalog.thd_apply_prices, spec)
                changed = sorted(d.replace("_", "-") for d in PRICE_DESTS if hasattr(args, d))
                print(f"plan {applied.plan!r} prices changed: " + ", ".join(changed))
        finally:
            ctx.close()
        if service_given and original is not None:
            return original(args)
        return 0

    return cmd_set


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror}") from None
    ctx = CliContext(args)
    try:
        specs = parse_tariff_toml(data, check_currency(ctx.config.billing.currency))

        def apply_all(session: Any, caller: Any) -> list[Applied]:
            return [catalog.thd_apply_prices(session, caller, spec,
                                             create_plan=not args.no_create)
                    for spec in specs]

        results = ctx.run_as(apply_all)
    finally:
        ctx.close()
    for r in results:
        extra = []
        if r.bands is not None:
            extra.append(f"{r.bands} bands")
        if r.voice_rates is not None:
            extra.append(f"{r.voice_rates} voice rates")
        print(f"plan {r.plan!r} {'created' if r.plan_created else 'updated'}"
              + (f" ({', '.join(extra)})" if extra else ""))
    return 0


def cmd_prices(args: argparse.Namespace) -> int:
    tariff = run_as(args, catalog.thd_plan_prices, args.name)
    emit_object(describe_tariff(tariff), args.out, item="prices")
    return 0
