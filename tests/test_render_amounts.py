"""Amounts as contacts carry them (floats from Parquet, ints) show as their exact decimals do.

The filters take a short path for a plain float; its text must be the one the
decimal of the same digits gets (``1234.5`` is ``Decimal("1234.5")``, rounded
half-up on the digits shown), and an amount that is no number is still refused.
"""

from __future__ import annotations

import math
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmerge.render.filters import FilterError, make_filters

FILTERS = {
    locale: make_filters(locale, ZoneInfo("Europe/Paris"), "EUR")
    for locale in ("fr_FR", "de_DE", "en_US")
}


@settings(max_examples=200, deadline=None)
@given(
    amount=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    locale=st.sampled_from(sorted(FILTERS)),
    decimals=st.sampled_from([None, 0, 2, 3]),
)
def test_a_float_amount_shows_as_its_decimal_does(amount, locale, decimals):
    f = FILTERS[locale]
    exact = Decimal(repr(amount))
    assert f["money"](amount, decimals=decimals) == f["money"](exact, decimals=decimals)
    assert f["number"](amount, 2) == f["number"](exact, 2)


def test_half_cents_round_up_as_the_reader_expects():
    money = FILTERS["fr_FR"]["money"]
    assert money(2.675) == "2,68\xa0€"  # the float is 2.67499999...: its digits are 2.675
    assert money(-1234.5, decimals=0) == "-1\u202f235\xa0€"
    assert money(1234567.891) == "1\u202f234\u202f567,89\xa0€"
    assert FILTERS["de_DE"]["money"](1234.5) == "1.234,50\xa0€"


@pytest.mark.parametrize("amount", [math.nan, math.inf, -math.inf])
def test_an_amount_that_is_no_number_is_refused(amount):
    with pytest.raises(FilterError, match="cannot format"):
        FILTERS["fr_FR"]["money"](amount)
