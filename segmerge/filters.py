"""Locale-aware Jinja filters (money, numbers, dates), so letters read naturally in French."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

import jinja2
import pandas as pd
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent


def register_filters(env: jinja2.Environment, *, locale: str, tz: tzinfo, currency: str) -> None:
    def money(value: Any, cur: str | None = None) -> str:
        return format_currency(float(value), cur or currency, locale=locale)

    def number(value: Any, fmt: str | None = None) -> str:
        return format_decimal(value, format=fmt, locale=locale)

    def percent(value: Any, fmt: str | None = None) -> str:
        return format_percent(value, format=fmt, locale=locale)

    def as_local(value: Any) -> datetime | date:
        if isinstance(value, pd.Timestamp | datetime):
            ts = pd.Timestamp(value)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
            return ts.tz_convert(tz).to_pydatetime()
        if isinstance(value, date):
            return value
        return pd.Timestamp(value).to_pydatetime()

    def date_filter(value: Any, fmt: str = "long") -> str:
        local = as_local(value)
        d = local.date() if isinstance(local, datetime) else local
        return format_date(d, format=fmt, locale=locale)

    def datetime_filter(value: Any, fmt: str = "medium") -> str:
        local = as_local(value)
        if not isinstance(local, datetime):
            local = datetime(local.year, local.month, local.day)
        return format_datetime(local, format=fmt, locale=locale)

    def name_case(value: Any) -> str:
        """'jean-pierre DUPONT' -> 'Jean-Pierre Dupont' (hyphens and apostrophes kept)."""
        words = str(value).split(" ")
        return " ".join(
            "-".join(p[:1].upper() + p[1:].lower() for p in w.split("-")) for w in words
        )

    env.filters.update(
        money=money,
        number=number,
        percent=percent,
        date=date_filter,
        datetime=datetime_filter,
        name=name_case,
    )
