"""Who may be mailed, and the signed unsubscribe link every message carries.

Consent is checked here, on whole columns, whatever the rule set says: a rule
set that forgets `exclude: not subscribed` still never mails someone who said
no, nor a suppressed, unsubscribed or bounced address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.i18n import _
from segmerge.ports import addresses
from segmerge.ports.addresses import normalise_column, normalise_set

REASONS = {
    "no_email": "no e-mail address",
    "unsubscribed": "not subscribed",
    "one_click": "unsubscribed (one-click)",
    "unsubscribe_event": "unsubscribed (event)",
    "bounced": "address bounced",
    "suppressed": "on the suppression list",
    "shared": "address shared with a contact who said no",
}
#: an address that cannot be normalised or sent: the contact is skipped, with why
UNUSABLE = "address cannot be used: "
#: :func:`check`'s number for each reason (0: none), and the text of each number
_CODES = {key: n for n, key in enumerate(REASONS, start=1)}
_UNUSABLE_CODE = len(REASONS) + 1
_LABELS = np.array([None, *REASONS.values(), None], dtype=object)


def said(reason: str) -> str:
    """A reason (a value of :data:`REASONS`, or :data:`UNUSABLE` and the address's problem)
    in the command's language. The reasons themselves stay English: they are keys of the run
    summary and the ledger, so only what is printed changes. Any other text (a note of the
    run summary) goes through the catalogs as it is; an unknown one is shown unchanged."""
    if reason.startswith(UNUSABLE):
        problem = reason[len(UNUSABLE) :]
        return _("address cannot be used: {problem}").format(problem=_problem(problem))
    known = {
        REASONS["no_email"]: _("no e-mail address"),
        REASONS["unsubscribed"]: _("not subscribed"),
        REASONS["one_click"]: _("unsubscribed (one-click)"),
        REASONS["unsubscribe_event"]: _("unsubscribed (event)"),
        REASONS["bounced"]: _("address bounced"),
        REASONS["suppressed"]: _("on the suppression list"),
        REASONS["shared"]: _("address shared with a contact who said no"),
    }
    return known.get(reason) or _(reason)


def _problem(problem: str) -> str:
    """Why an address cannot be used (:mod:`segmerge.ports.addresses`' reasons), said."""
    known = {
        addresses.NO_AT: _("not of the form name@domain"),
        addresses.CONTROL: _("control character"),
        addresses.SPACE: _("space inside"),
        addresses.LOCAL_PART: _("invalid characters before the @"),
        addresses.SMTPUTF8: _("non-ASCII before the @: not deliverable without SMTPUTF8"),
        addresses.DOMAIN: _("invalid domain"),
    }
    return known.get(problem, problem)


@dataclass(frozen=True)
class Consent:
    """Per contact: why it must not be mailed (<NA>: it may be), and its address in the
    one normal form (:mod:`segmerge.ports.addresses`) that de-duplication and sending use."""

    reason: pd.Series
    address: pd.Series


def check(
    frame: pd.DataFrame,
    events: pd.DataFrame,
    suppressed: Iterable[str],
    suppressed_ids: Iterable[str] = (),
) -> Consent:
    """Who may be mailed, on whole columns; the first reason wins.

    ``suppressed`` is the address suppression list (normalised here, whatever form it was
    stored in); ``suppressed_ids`` the contacts unsubscribed by id, blocked whatever
    address they have now, and with it every other contact at that address.
    """
    email, problem = _normalised(frame["email"])
    # the first reason of each contact as a small number, made into text once at the end
    # (a column of text rewritten for each reason was copied whole each time)
    code = np.zeros(len(frame), dtype=np.int8)
    ids = frame["contact_id"].astype("string")

    def mark(mask: pd.Series | np.ndarray, key: str) -> None:
        code[np.asarray(mask, dtype=bool) & (code == 0)] = _CODES[key]

    mark(email.isna() & problem.isna(), "no_email")
    bad = problem.notna().to_numpy()
    code[bad] = _UNUSABLE_CODE
    mark(~frame["subscribed"].fillna(False).astype(bool), "unsubscribed")
    by_id = set(suppressed_ids)
    if by_id:
        mark(_isin(ids, by_id), "one_click")
    if len(events):
        kinds = events["event"].astype("string")
        unsub = set(events.loc[kinds == "unsubscribe", "contact_id"].astype(str))
        bounced = set(events.loc[kinds == "bounce", "contact_id"].astype(str))
        mark(_isin(ids, unsub), "unsubscribe_event")
        mark(_isin(ids, bounced), "bounced")
    listed = normalise_set(suppressed)
    if listed:
        mark(_isin(email, listed), "suppressed")
    # a mailbox where one contact unsubscribed or bounced is closed for every contact using it
    refused = email[code != 0].dropna().unique()
    if len(refused):
        mark(_isin(email, refused), "shared")
    said_here = _LABELS[code]
    if bad.any():
        said_here[bad] = (UNUSABLE + problem[bad]).to_numpy(dtype=object)
    return Consent(pd.Series(said_here, index=frame.index, dtype="string"), email)


#: contacts whose addresses are normalised at a time: the whole column's intermediate
#: copies (stripped, lowered, checked) were some 90 MiB at a million contacts
SLICE = 1 << 17


def _normalised(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``normalise_column`` a slice of the column at a time; the slices' Arrow arrays are
    chained, not copied."""
    if len(column) <= SLICE:
        return normalise_column(column)
    parts = [normalise_column(column.iloc[a : a + SLICE]) for a in range(0, len(column), SLICE)]
    return pd.concat([p[0] for p in parts]), pd.concat([p[1] for p in parts])


def not_mailable(
    frame: pd.DataFrame,
    events: pd.DataFrame,
    suppressed: Iterable[str],
    suppressed_ids: Iterable[str] = (),
) -> pd.Series:
    """Per contact, why it must not be mailed (the first reason), or <NA> when it may be."""
    return check(frame, events, suppressed, suppressed_ids).reason


def addresses_of(frame: pd.DataFrame, contact_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(normalised address, contact id) of these contacts as the data has them today: a
    contact unsubscribed by id closes its current mailbox to every record sharing it."""
    wanted = set(contact_ids)
    if not wanted or not len(frame):
        return []
    rows = frame["contact_id"].astype("string").isin(wanted).fillna(False).to_numpy()
    if not rows.any():
        return []
    normal, _ = normalise_column(frame.loc[rows, "email"])
    found = zip(normal.tolist(), frame.loc[rows, "contact_id"].astype(str).tolist(), strict=True)
    return sorted({(a, c) for a, c in found if isinstance(a, str)})


def one_per_address(
    mailable: np.ndarray, address: pd.Series, ids: Sequence[str] | pd.Series
) -> tuple[np.ndarray, int]:
    """One letter per mailbox (a household, or two spellings of one address): the contact
    with the smallest id gets it, whatever the order of the file. Returns the rows still
    mailable and how many were left out.

    The addresses are compared as they are (Arrow strings, sorted): only the few contacts
    whose mailbox is shared have their ids made into Python strings, to be ranked (a
    million addresses and ids made into Python objects were some 150 MiB at a time)."""
    values = pa.array(address, from_pandas=True)  # its chunks as they are: no copy
    # each address's rank among the distinct ones (missing ones share one): a shared
    # mailbox is a rank held by several candidates (ranking sorts indices and copies no
    # string, unlike a hash table of the distinct addresses or the addresses sorted)
    box = pc.rank(values, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.intp)
    del values
    pos = np.flatnonzero(mailable)
    if len(pos) < 2:
        return mailable, 0
    box = box[pos]
    shared = np.bincount(box)[box] > 1
    if not shared.any():
        return mailable, 0
    at = pos[shared]
    group = pd.DataFrame({"address": box[shared], "id": _take(ids, at)}, dtype=object)
    first = ~group.sort_values("id", kind="stable").duplicated("address").sort_index()
    kept = mailable.copy()
    kept[at[~first.to_numpy()]] = False
    return kept, int((~first).sum())


def _isin(column: pd.Series, values: Iterable[Any]) -> np.ndarray:
    """``column.isin(values)``, missing values False, as a NumPy mask. An Arrow string
    column is matched by Arrow's ``is_in``: pandas makes each value an Arrow scalar
    first (a second for the 100,000 closed mailboxes of a million contacts)."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage != "python":
        wanted = pa.array([v for v in values if isinstance(v, str)], type=pa.large_string())
        got = pc.is_in(pa.array(column.array).cast(pa.large_string()), value_set=wanted)
        return got.fill_null(False).to_numpy(zero_copy_only=False)
    return column.isin(values).fillna(False).to_numpy(dtype=bool)


def _take(ids: Sequence[str] | pd.Series, rows: np.ndarray) -> list[str]:
    """The ids of these rows as Python strings, from a list or a column."""
    if isinstance(ids, pd.Series):
        return [str(v) for v in ids.iloc[rows].tolist()]
    return [str(ids[r]) for r in rows.tolist()]
