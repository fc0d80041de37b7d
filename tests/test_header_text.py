"""A subject, preheader or sender name is one line: control characters and line breaks
become spaces, runs of spaces one; the common case (nothing to flatten) skips the
patterns and must give the very same text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from segmerge.render.headers import one_line

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def flattened(text: str) -> str:
    return re.sub(r"  +", " ", _CONTROL.sub(" ", text)).strip(" ")


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet="ab é\t\n\r\x00\x0b\x85\u2028\u2029\xa0\u202f\x7f\U0001f600", max_size=20))
def test_one_line_flattens_exactly_what_it_did(text: str) -> None:
    assert one_line(text) == flattened(text)


def test_a_subject_with_a_line_break_cannot_start_a_header() -> None:
    assert one_line(" Zoé,\r\nBcc: x@y.fr  ") == "Zoé, Bcc: x@y.fr"
