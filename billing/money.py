"""Money as integers: amounts in minor units, prices in micro-units, one rounding rule.

Two integer scales, never float:

* **Amounts** (balances, ledger entries, credit limits) are integers in the
  currency's minor unit: cents for USD/EUR, yen for JPY, fils for KWD. The
  exponent comes from :data:`EXPONENTS` (ISO 4217), 2 for a code not listed.
* **Prices** (per minute, per MB, per fee) are integers in micro-units:
  millionths of the major unit, so 0.0125 USD/min is stored as 12_500. That is
  finer than any minor unit, so a per-second price derived from a per-minute
  one loses nothing before the one rounding below.

**The rounding rule** (the only one in radbill): a cost is computed exactly,
as a :class:`~decimal.Decimal`, from usage and prices; it is turned into
minor units by rounding half up (0.005 USD -> 0.01 USD) once per *running
total* of a session, call or fee. A session charged over several
Interim-Updates is charged the difference between the rounded running total
after this update and what was already charged, so however a session is
split, its charges add up to its rounded total. Charges are never negative
(a tariff lowered mid-session never refunds what was charged).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

from billing.errors import InvalidAmount

MICRO = 1_000_000
MICRO_DIGITS = 6
MAX_AMOUNT_MINOR = 10**15  # one quadrillion minor units: far past any balance, inside BIGINT

# ISO 4217 minor-unit exponents that differ from 2 (plus the common 2s, for clarity).
EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "RUB": 2, "UAH": 2, "PLN": 2, "CZK": 2,
    "INR": 2, "BRL": 2, "CAD": 2, "AUD": 2, "CNY": 2, "TRY": 2, "ZAR": 2, "MXN": 2,
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}


def exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit."""
    return EXPONENTS.get(currency.upper(), 2)


def check_currency(code: str) -> str:
    code = code.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise InvalidAmount(f"{code!r} is not a three-letter ISO 4217 currency code")
    return code


def _decimal(text: str, what: str) -> Decimal:
    cleaned = str(text).strip().replace("_", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidAmount(f"{what} {text!r} is not a number like 12.50") from None
    if not value.is_finite():
        raise InvalidAmount(f"{what} {text!r} is not a finite number")
    return value


def parse_amount(text: str | int | Decimal, currency: str, *, allow_negative: bool = False,
                 what: str = "amount") -> int:
    """'12.5' USD -> 1250. Refuses more digits than the minor unit has (no silent rounding)."""
    value = _decimal(str(text), what)
    exp = exponent(currency)
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{what} {text!r} has more than {exp} decimal places for {currency}")
    minor = int(scaled)
    if minor < 0 and not allow_negative:
        raise InvalidAmount(f"{what} {text!r} must not be negative")
    if abs(minor) >= MAX_AMOUNT_MINOR:
        raise InvalidAmount(f"{what} {text!r} is out of range")
    return minor


def format_amount(minor: int, currency: str) -> str:
    """1250 USD -> '12.50'; -5 USD -> '-0.05'."""
    exp = exponent(currency)
    value = Decimal(minor).scaleb(-exp)
    return f"{value:.{exp}f}"


def parse_price(text: str | int | Decimal, what: str = "price") -> int:
    """'0.0125' -> 12_500 micro-units; at most six decimal places, never negative."""
    value = _decimal(str(text), what)
    scaled = value.scaleb(MICRO_DIGITS)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{what} {text!r} has more than {MICRO_DIGITS} decimal places")
    micro = int(scaled)
    if micro < 0:
        raise InvalidAmount(f"{what} {text!r} must not be negative")
    if micro >= MAX_AMOUNT_MINOR * MICRO:
        raise InvalidAmount(f"{what} {text!r} is out of range")
    return micro


def format_price(micro: int) -> str:
    """12_500 -> '0.0125' (trailing zeros dropped, at least two decimals)."""
    value = Decimal(micro).scaleb(-MICRO_DIGITS)
    text = f"{value:.{MICRO_DIGITS}f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def micro_to_major(micro: int | Decimal) -> Decimal:
    return Decimal(micro).scaleb(-MICRO_DIGITS)


def round_to_minor(major: Decimal, currency: str) -> int:
    """THE rounding rule: exact major-unit cost -> minor units, half up, never below 0."""
    if major <= 0:
        return 0
    return int(major.scaleb(exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def minor_to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def floor_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))
