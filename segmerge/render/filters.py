"""Locale-aware Jinja filters: money, numbers, percentages, dates, names.

French-speaking marketers expect "1 234,50 €" and "3 mars 2026", not
"1234.5" and "2026-03-03T00:00:00+00:00". Babel knows each locale's symbols,
narrow no-break spaces and month names, so the filters only choose the
pattern; they are built once per TemplateSet, bound to its locale, time zone
and currency.

Dates inside Segmerge are UTC; a date is shown as the day it is in the
workspace time zone (23:30 UTC on 2 March is 3 March in Paris).

A filter given a value it cannot format raises :class:`FilterError`, which the
renderer reports with the template line; a missing contact value reaches the
filter as an Undefined and is reported as missing, not as a type mistake.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import (
    NumberPattern,
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    get_currency_symbol,
)
from jinja2 import Undefined

from segmerge.i18n import _

_DATE_STYLES = ("short", "medium", "long", "full")
_PARTICLES = frozenset({"de", "du", "des", "d", "la", "le"})
_NAME_PARTS = re.compile(r"([\s\-'’]+)")


class FilterError(ValueError):
    """A value a filter cannot format (a text where a number is expected, ...)."""


def _defined(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # raises the "missing value" error
    return value


def _decimal(value: Any, name: str) -> Decimal:
    """Numbers as Decimal, so that rounding is half-up on the digits the user sees."""
    if type(value) is float:  # most amounts: the general path below gives the same
        result = Decimal(repr(value))
        if result.is_finite():
            return result
    value = _defined(value)
    if isinstance(value, bool) or value is None:
        raise FilterError(_not_a_number(name, value))
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float) or hasattr(value, "__float__"):
        try:
            result = Decimal(repr(float(value)))
        except (TypeError, ValueError):
            raise FilterError(_not_a_number(name, value)) from None
    else:
        raise FilterError(_not_a_number(name, f"{type(value).__name__} {value!r}"))
    if not result.is_finite():
        raise FilterError(_("|{name} cannot format {value}").format(name=name, value=repr(value)))
    return result


def _not_a_number(name: str, value: Any) -> str:
    shown = value if isinstance(value, str) else repr(value)
    return _("|{name} expects a number, got {value}").format(name=name, value=shown)


def _digits(decimals: Any, name: str) -> int:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise FilterError(
            _(
                "|{name}: decimals must be a whole number from 0 to 6 or a pattern such as "
                "'#,##0.0', got {value}"
            ).format(name=name, value=repr(decimals))
        )
    return decimals


def _pattern(decimals: Any) -> bool:
    """A CLDR number pattern ('#,##0.0', '0.0') rather than a count of decimals."""
    return isinstance(decimals, str) and bool(decimals) and set(decimals) <= set("#0.,% ¤")


def _with_decimals(pattern: NumberPattern, decimals: int) -> NumberPattern:
    fixed = copy.copy(pattern)
    fixed.frac_prec = (decimals, decimals)
    return fixed


#: 1, 0.1, ... 0.000001: the steps amounts are rounded to, built once, not once an amount
_QUANTA = tuple(Decimal(1).scaleb(-d) for d in range(7))


def _round(value: Decimal, decimals: int) -> Decimal:
    quantum = _QUANTA[decimals] if 0 <= decimals < 7 else Decimal(1).scaleb(-decimals)
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def capitalize_name(value: Any) -> str:
    """'jean-pierre de la TOUR' -> 'Jean-Pierre de la Tour' (particles stay lower case)."""
    return _capitalized(str(_defined(value)).strip())


@functools.lru_cache(maxsize=8192)  # first names repeat across a base
def _capitalized(text: str) -> str:
    parts = _NAME_PARTS.split(text.lower())
    out: list[str] = []
    first = True
    for part in parts:
        if not part or _NAME_PARTS.fullmatch(part):
            out.append(part)
            continue
        out.append(part if (not first and part in _PARTICLES) else part[:1].upper() + part[1:])
        first = False
    return "".join(out)


#: amounts the fast money formatter must render exactly as Babel before it is trusted
_PROBES = (
    "0",
    "0.5",
    "1",
    "7.25",
    "999.995",
    "1000",
    "1234.5",
    "-1234.5",
    "1234567.891",
    "-0.004",
    "1000000000000.25",
    "0.004",
)


class _MoneyFormats:
    """``money`` at string-formatting speed, with Babel as the reference.

    Babel's ``format_currency`` costs ~150 µs (it resolves plural rules and
    currency names each time), and letters show several amounts each. For the
    usual patterns (groups of three, a prefix and a suffix), Python's own
    ``format(amount, ",.2f")`` with the locale's symbols swapped in gives the
    same text; each (currency, decimals) formatter is checked against Babel on
    probe amounts when first used, and Babel itself is used where they differ.
    """

    def __init__(self, loc: Locale) -> None:
        self.loc = loc
        self.pattern = loc.currency_formats["standard"]
        symbols = loc.number_symbols["latn"]
        self.group, self.decimal = symbols["group"], symbols["decimal"]
        self.minus = symbols["minusSign"]
        #: (currency, decimals asked or None) -> (decimals, formatter)
        self.cache: dict[tuple[str, int | None], tuple[int, Callable[[Decimal], str]]] = {}
        self.built: dict[tuple[str, int], Callable[[Decimal], str]] = {}
        self.digits: dict[str, int] = {}

    def _precision(self, code: str) -> int:
        """A currency's usual decimals, looked up in Babel once, not once a letter."""
        digits = self.digits.get(code)
        if digits is None:
            digits = self.digits[code] = get_currency_precision(code)
        return digits

    def format(self, amount: Decimal, code: str, decimals: int | None) -> str:
        found = self.cache.get((code, decimals))
        if found is None:
            digits = self._precision(code) if decimals is None else decimals
            fmt = self.built.get((code, digits))
            if fmt is None:
                fmt = self.built[code, digits] = self._build(code, digits)
            found = self.cache[code, decimals] = (digits, fmt)
        return found[1](_round(amount, found[0]))

    def _babel(self, code: str, digits: int) -> Callable[[Decimal], str]:
        pattern = _with_decimals(self.pattern, digits)
        loc = self.loc
        return lambda q: format_currency(q, code, format=pattern, locale=loc, currency_digits=False)

    def _build(self, code: str, digits: int) -> Callable[[Decimal], str]:
        reference = self._babel(code, digits)
        p = self.pattern
        if p.grouping != (3, 3) or p.exp_prec or p.scale or p.int_prec[0] != 1:
            return reference
        symbol = get_currency_symbol(code, locale=self.loc)
        prefix = [x.replace("¤", symbol) for x in p.prefix]
        suffix = [x.replace("¤", symbol) for x in p.suffix]
        prefix[1] = prefix[1].replace("-", self.minus)
        group, decimal, spec = self.group, self.decimal, f",.{digits}f"

        def fast(q: Decimal) -> str:
            # "1,234.50" holds no NUL: the group marks wait there while "." is replaced
            shown = format(abs(q), spec).replace(",", "\0").replace(".", decimal)
            neg = q.is_signed()
            return prefix[neg] + shown.replace("\0", group) + suffix[neg]

        probes = [_round(Decimal(x), digits) for x in _PROBES]
        return fast if all(fast(q) == reference(q) for q in probes) else reference


def make_filters(locale: str, tz: ZoneInfo, currency: str) -> dict[str, Callable[..., Any]]:
    """The filters of one TemplateSet, bound to its locale, time zone and currency."""
    loc = Locale.parse(locale)
    moneys = _MoneyFormats(loc)
    number_pattern = loc.decimal_formats[None]
    percent_pattern = loc.percent_formats[None]
    datetime_join = loc.datetime_formats["long"]

    def money(value: Any, currency_code: str | None = None, decimals: int | None = None) -> str:
        """``{{ contact.revenue|money }}`` -> '1 234,50 €'; ``money(decimals=0)`` -> '1 235 €'."""
        amount = _decimal(value, "money")
        digits = None if decimals is None else _digits(decimals, "money")
        return moneys.format(amount, currency_code or currency, digits)

    def number(value: Any, decimals: int | str | None = None) -> str:
        """``1234.5|number`` -> '1 234,5'; ``number(2)`` -> '1 234,50'; or a CLDR pattern."""
        amount = _decimal(value, "number")
        if decimals is None:
            return format_decimal(amount, locale=loc)
        if _pattern(decimals):
            return format_decimal(amount, format=str(decimals), locale=loc)
        digits = _digits(decimals, "number")
        return format_decimal(
            _round(amount, digits), format=_with_decimals(number_pattern, digits), locale=loc
        )

    def percent(value: Any, decimals: int | str = 0) -> str:
        """A ratio as a percentage: ``0.125|percent`` -> '13 %', ``percent(1)`` -> '12,5 %'."""
        ratio = _decimal(value, "percent")
        if _pattern(decimals):
            return format_percent(ratio, format=str(decimals), locale=loc)
        digits = _digits(decimals, "percent")
        shown = _round(ratio * 100, digits) / 100
        return format_percent(shown, format=_with_decimals(percent_pattern, digits), locale=loc)

    def to_local(value: Any, name: str) -> datetime | date:
        value = _defined(value)
        if isinstance(value, str):
            try:
                value = (
                    date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
                )
            except ValueError:
                raise FilterError(
                    _("|{name} expects a date, got the text {value}").format(
                        name=name, value=repr(value)
                    )
                ) from None
        elif type(value).__name__ == "datetime64":  # numpy, naive UTC
            value = value.astype("datetime64[us]").item()
        if isinstance(value, datetime):
            if type(value) is not datetime and hasattr(value, "to_pydatetime"):
                value = value.to_pydatetime()  # much cheaper per value than pandas' own conversion
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(tz)
        if isinstance(value, date):
            return value
        raise FilterError(
            _("|{name} expects a date, got {value}").format(
                name=name, value=f"{type(value).__name__} {value!r}"
            )
        )

    def style(fmt: Any, name: str) -> str:
        if not isinstance(fmt, str) or not fmt:
            raise FilterError(
                _("|{name}: format must be one of {styles} or a pattern").format(
                    name=name, styles=", ".join(_DATE_STYLES)
                )
            )
        return fmt

    days: dict[tuple[date, str], str] = {}  # a base has few distinct days; Babel is slow

    def date_filter(value: Any, fmt: str = "long") -> str:
        """``|date`` -> '3 mars 2026', ``|date('short')`` -> '03/03/2026', or a CLDR pattern."""
        local = to_local(value, "date")
        day = local.date() if isinstance(local, datetime) else local
        key = (day, fmt)
        text = days.get(key)
        if text is None:
            if len(days) > 50_000:
                days.clear()
            text = days[key] = format_date(day, style(fmt, "date"), locale=loc)
        return text

    def datetime_filter(value: Any, fmt: str | None = None) -> str:
        """``|datetime`` -> '3 mars 2026, 14:05' in the workspace time zone."""
        local = to_local(value, "datetime")
        if not isinstance(local, datetime):
            local = datetime.combine(local, time(0), tzinfo=tz)
        if fmt is None:
            return datetime_join.format(
                format_datetime(local, loc.time_formats["short"], tzinfo=tz, locale=loc),
                format_date(local.date(), "long", locale=loc),
            )
        return format_datetime(local, style(fmt, "datetime"), tzinfo=tz, locale=loc)

    return {
        "money": money,
        "number": number,
        "percent": percent,
        "date": date_filter,
        "datetime": datetime_filter,
        "capitalize_name": capitalize_name,
        "name": capitalize_name,  # the short name the demo letters use
    }
