"""Brevo's dates as the fake writes and reads them: the account's UTC offset, milliseconds."""

from __future__ import annotations

import datetime as dt

OFFSET = dt.timezone(dt.timedelta(hours=1))  # the account's time zone, as Brevo shows dates
EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def stamp(when: dt.datetime) -> str:
    """Brevo's date format: milliseconds and the account's offset."""
    return when.astimezone(OFFSET).isoformat(timespec="milliseconds")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
