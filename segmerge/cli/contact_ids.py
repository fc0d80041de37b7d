"""The contact id a user typed, checked against the base before anything is explained.

Exports keep ids as text with their leading zeros (``00042``), and a person
types ``42``; the id may also come with other case or stray spaces. Guessing
silently would explain the wrong contact, so an unknown id is an error whose
hint names the ids it probably meant, found on the whole id column at once.
"""

from __future__ import annotations

import difflib

import pandas as pd

from segmerge.errors import DataError
from segmerge.i18n import _

#: ids difflib compares at most (it is quadratic in the length, linear in the count)
CLOSE_SCAN = 50_000


def likely_ids(ids: pd.Series, typed: str, n: int = 3) -> list[str]:
    """Ids the user probably meant by ``typed``: the same number with its leading zeros,
    the same text in another case or spacing, then the closest spellings."""
    text = ids.dropna().astype("string")
    wanted = str(typed).strip()
    found: list[str] = []
    if wanted.isdigit():
        number = wanted.lstrip("0") or "0"
        digits = text.str.fullmatch(r"\s*0*\d+\s*").fillna(False).astype(bool)
        same = text[digits & ((text.str.strip().str.lstrip("0").replace("", "0")) == number)]
        found.extend(same.str.strip().tolist())
    folded = text.str.strip().str.casefold()
    found.extend(text[folded == wanted.casefold()].tolist())
    if not found:
        found.extend(difflib.get_close_matches(wanted, text.tolist()[:CLOSE_SCAN], n=n))
    return list(dict.fromkeys(found))[:n]


def check_contact_id(frame: pd.DataFrame, typed: str) -> None:
    """Raise a DataError naming the likely ids when no contact has ``typed`` as its id."""
    ids = frame["contact_id"].astype("string")
    if bool((ids == str(typed)).fillna(False).any()):
        return
    close = likely_ids(ids, typed)
    raise DataError(
        _("no contact with contact_id {id}").format(id=repr(str(typed))),
        field="contact_id",
        hint=_("did you mean {ids}?").format(ids=", ".join(close)) if close else None,
    )
