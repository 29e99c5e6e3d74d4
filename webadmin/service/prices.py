"""Plan prices from named options: the one reading of ``plan set --price-per-minute ...``.

Shared by the CLI (its flags) and the API (``PUT /api/v1/plans/{name}/prices``), so
both accept and refuse the same values with the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.money import parse_amount, parse_price
from billing.tariffs import TariffSpec, check_timezone
from core.errors import InvalidInput

PRICE_FIELDS = ("price_per_minute", "price_per_second", "increment", "price_per_mb",
                "price_per_mb_in", "price_per_mb_out", "monthly_fee", "daily_fee",
                "credit_limit", "timezone", "allowance_minutes", "allowance_mb",
                "allowance_period", "after_allowance", "throttle_rate_limit", "no_allowance")


def price_spec(name: str, given: Mapping[str, Any], currency: str) -> TariffSpec | None:
    """The TariffSpec the given price options describe, or None when none was given.

    Keys are the CLI's option names with underscores (``price_per_minute``), the
    API's field names.
    """
    if not given:
        return None
    values: dict[str, Any] = {}
    if "price_per_minute" in given and "price_per_second" in given:
        raise InvalidInput("give --price-per-minute or --price-per-second, not both")
    if "price_per_minute" in given:
        values.update(time_price=parse_price(given["price_per_minute"], "--price-per-minute"),
                      time_unit=60)
    if "price_per_second" in given:
        values.update(time_price=parse_price(given["price_per_second"], "--price-per-second"),
                      time_unit=1)
    if "increment" in given:
        if not 1 <= given["increment"] <= 3600:
            raise InvalidInput("--increment must be 1..3600 seconds")
        values["time_increment"] = given["increment"]
    if "price_per_mb" in given:
        p = parse_price(given["price_per_mb"], "--price-per-mb")
        values.update(price_per_mb_in=p, price_per_mb_out=p)
    for d in ("price_per_mb_in", "price_per_mb_out", "monthly_fee", "daily_fee"):
        if d in given:
            values[d] = parse_price(given[d], "--" + d.replace("_", "-"))
    if "credit_limit" in given:
        values["credit_limit"] = parse_amount(given["credit_limit"], currency,
                                              what="--credit-limit")
    if "timezone" in given:
        values["timezone"] = check_timezone(given["timezone"])
    allowance = None
    allowance_flags = {"allowance_minutes", "allowance_mb", "allowance_period",
                       "after_allowance", "throttle_rate_limit"} & set(given)
    if given.get("no_allowance") and allowance_flags:
        raise InvalidInput("give --no-allowance or allowance options, not both")
    if allowance_flags:
        from billing.tariffs import make_allowance

        allowance = make_allowance({
            "period": given.get("allowance_period", "month"),
            "minutes": given.get("allowance_minutes", 0),
            "traffic_mb": given.get("allowance_mb", 0),
            "after": given.get("after_allowance", "charge"),
            **({"throttle_rate_limit": given["throttle_rate_limit"]}
               if "throttle_rate_limit" in given else {})}, "allowance")
    return TariffSpec(plan_name=name, values=values, allowance=allowance,
                      clear_allowance=bool(given.get("no_allowance")))
