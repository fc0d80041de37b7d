"""Orders that name no contact: a wrong join, caught before a letter quotes it.

When a shop's customers export and orders export are mapped with the wrong
columns (PrestaShop calls the customer id and the order id both ``ID``), every
order lands on the wrong customer or on nobody, and the metrics stay quietly
plausible. A real base has a few strays (a customer deleted since, a test
order), never many. So more than :data:`UNMATCHED_LIMIT` of the orders naming
no contact stops every command that reads the source (exit 2), unless the
source says ``on_unmatched_orders = "warn"``; fewer is a warning. Either way
those orders count for nobody (the metrics skip unknown contacts).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.errors import DataError
from segmerge.i18n import _, ngettext, number, percent

#: share of orders that may name no contact before reading the source is an error
UNMATCHED_LIMIT = 0.01
OnUnmatched = Literal["error", "warn"]


def _arrow(series: pd.Series) -> pa.Array:
    arr: pa.Array | pa.ChunkedArray = pa.array(series.astype("string"))
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def unmatched_mask(orders: pd.Series, contacts: pd.Series) -> np.ndarray:
    """True for each order whose contact id is empty or not among ``contacts`` (Arrow's hash)."""
    if not len(orders):
        return np.zeros(0, dtype=bool)
    known = pc.is_in(_arrow(orders), value_set=_arrow(contacts.dropna()))
    return ~known.fill_null(False).to_numpy(zero_copy_only=False)


def _share(n: int, total: int) -> str:
    share = n / total
    return percent(share) if share >= 0.001 else _("less than {share}").format(share=percent(0.001))


def _examples(orders: pd.DataFrame, mask: np.ndarray, shown: int = 3) -> str:
    cols = ["order_id", "contact_id"] + (["email"] if "email" in orders.columns else [])
    picked = orders.loc[mask, cols].head(shown)
    parts = []
    for oid, cid, *email in picked.itertuples(index=False, name=None):
        if not (pd.isna(cid) or str(cid) == ""):
            who = _("contact {id}").format(id=repr(str(cid)))
        elif email and not pd.isna(email[0]):  # linked by e-mail (files_link), to no one
            who = _("e-mail {address}").format(address=repr(str(email[0])))
        else:
            who = _("no contact")
        parts.append(_("order {id} ({who})").format(id=repr(str(oid)), who=who))
    return ", ".join(parts)


def check_links(
    orders: pd.DataFrame,
    contacts: pd.DataFrame,
    source: str,
    on_unmatched: OnUnmatched = "error",
    origin: str | None = None,
) -> str | None:
    """Raise, or return the warning to show, when orders name contacts the source lacks.

    ``origin`` is where the orders came from (a file), named in the message when known.
    """
    mask = unmatched_mask(orders["contact_id"], contacts["contact_id"])
    n = int(mask.sum())
    if not n:
        return None
    return unmatched_message(n, len(orders), source, on_unmatched, origin, _examples(orders, mask))


def unmatched_message(
    n: int,
    total: int,
    source: str,
    on_unmatched: OnUnmatched = "error",
    origin: str | None = None,
    examples: str | None = None,
) -> str | None:
    """Raise, or return the warning, for ``n`` of ``total`` orders naming no contact
    (counted where the orders are: in pandas, or by the source's database)."""
    if not n:
        return None
    counted = ngettext(
        "{n} of {total} orders ({share}) names a contact that is not in the contacts table",
        "{n} of {total} orders ({share}) name a contact that is not in the contacts table",
        n,
    ).format(n=number(n), total=number(total), share=_share(n, total))
    body = (
        _("{counted}, e.g. {examples}").format(counted=counted, examples=examples)
        if examples
        else counted
    )
    if n / total > UNMATCHED_LIMIT and on_unmatched == "error":
        raise DataError(
            _("source {source}: {body}").format(source=source, body=body)
            if origin
            else f"{source}: {body}",
            file=origin,
            hint=_(
                "check which column holds the customer's id in each file (the orders' "
                "customer id, not the order number); if these orders really belong to no "
                'contact, set on_unmatched_orders = "warn" in [sources.{source}]'
            ).format(source=source),
        )
    where = f"{source} ({origin})" if origin else source
    return _("{where}: {body}; they count for nobody").format(where=where, body=body)
