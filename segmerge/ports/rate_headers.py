"""What a vendor's rate-limit headers say is left of its budget: ``(remaining, seconds)``.

An :class:`~segmerge.ports.http.HttpClient` reads these on every answer (``budget_hint``)
and hands them to its :class:`~segmerge.ports.rate_limit.RateLimit`, so the pace follows
the account's real budget rather than the documented default alone. A header that
is missing or garbled gives ``None``: the pace then falls back to the documented
rate, which is always safe, instead of trusting a number nobody sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import requests


def brevo_budget(resp: requests.Response) -> tuple[int, float] | None:
    """Brevo: ``x-sib-ratelimit-remaining`` calls left, ``x-sib-ratelimit-reset`` seconds.

    Brevo sends both on every answer of a rate-limited endpoint, a 429 included;
    the reset is "time remaining until the rate limit resets, expressed in the
    granularity unit (typically seconds)" (https://developers.brevo.com/docs/limit-headers).
    """
    return _pair(resp.headers, "x-sib-ratelimit-remaining", "x-sib-ratelimit-reset", 1.0)


def hubspot_budget(resp: requests.Response) -> tuple[int, float] | None:
    """HubSpot: ``X-HubSpot-RateLimit-Remaining`` calls left in the current burst window,
    which lasts ``X-HubSpot-RateLimit-Interval-Milliseconds``.

    HubSpot gives the window's length, not the time left in it (its burst window
    rolls, "TEN_SECONDLY_ROLLING"): the whole interval is the longest the
    remaining count can take to renew, so it is the safe reading
    (https://developers.hubspot.com/docs/api/usage-details, "Rate limits"; OAuth apps get
    them too, without the daily ones: https://developers.hubspot.com/changelog/
    rate-limit-headers-will-now-appear-for-oauth-authenticated-calls).
    The daily headers are not read here: a spent daily limit answers 429 with
    ``policyName: DAILY``, which the connector's ``wait_hint`` turns into an error.
    """
    return _pair(
        resp.headers,
        "X-HubSpot-RateLimit-Remaining",
        "X-HubSpot-RateLimit-Interval-Milliseconds",
        1000.0,
    )


def _pair(
    headers: Mapping[str, str], remaining_name: str, reset_name: str, per_second: float
) -> tuple[int, float] | None:
    remaining = _number(headers.get(remaining_name))
    reset = _number(headers.get(reset_name))
    if remaining is None or reset is None or remaining != int(remaining):
        return None
    return int(remaining), reset / per_second


def _number(value: str | None) -> float | None:
    """A finite, non-negative number, or None for anything else (absent, "", "n/a", -1)."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
