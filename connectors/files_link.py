"""Orders to their customers: by customer id, else by e-mail address.

Shopify's orders export has no customer id at all, and WooCommerce gives guest
checkouts the id 0; both name the buyer's e-mail. Addresses are compared in
the one normal form of `segmerge.ports.addresses` (the form consent and suppression
compare), whole columns at a time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from segmerge.ports import DataError, _, normalise_column, number

from .files_read import RawTable


def no_buyer(raw: RawTable, hint: str) -> DataError:
    """An orders file that cannot be linked: which column is missing, and how to get it."""
    return DataError(
        _(
            "this orders file names no customer: it has no contact_id column and "
            "no email column to link its orders to the contacts (headers: "
            "{headers})"
        ).format(headers=raw.headers),
        file=raw.display,
        line=raw.header_line or None,
        hint=hint
        or _(
            'map the column holding the customer number, e.g. columns = {{ "ID client" = '
            '"contact_id" }}, or the one holding the buyer\'s e-mail to "email"'
        ),
    )


def fold_line_items(
    raw: RawTable, order_col: int, amount_col: int, notes: list[str], warnings: list[str]
) -> RawTable:
    """The rows that open an order in a one-row-per-line-item export (Shopify).

    The order's totals sit on its first row; the next rows repeat the order
    number with a line item each and no total. Keeping the first row counts
    each order once, whatever its number of items. A later row with a total of
    its own is kept as an order (Shopify allows two orders one number) and said.
    """
    ids = raw.data[order_col].astype("string")
    later = ids.duplicated(keep="first").to_numpy(dtype=bool) & ids.notna().to_numpy(dtype=bool)
    own_total = later & raw.data[amount_col].notna().to_numpy(dtype=bool)
    drop = later & ~own_total
    if own_total.any():
        first = int(raw.lines[np.argmax(own_total)])
        warnings.append(
            f"{raw.display}, line {first}: {int(own_total.sum())} rows repeat the number of an "
            "order above but carry a total of their own; each is read as an order (a Shopify "
            "export writes an order's total on its first row only)"
        )
    if not drop.any():
        return raw
    notes.append(
        _(
            "{file}: {n} line-item rows belong to the order on a row above (its totals are "
            "on its first row)"
        ).format(file=raw.display, n=number(int(drop.sum())))
    )
    keep = ~drop
    return dataclasses.replace(
        raw, data=raw.data[keep].reset_index(drop=True), lines=raw.lines[keep]
    )


def link_by_email(
    orders: pd.DataFrame, contacts: pd.DataFrame, source: str, display: str
) -> tuple[pd.DataFrame, list[str]]:
    """Give each order without a customer id the id of the contact with its e-mail.

    An order whose address matches no contact keeps no id: the engine counts it
    among the orders for nobody (and its `email` stays, to name it). When two
    contacts share an address, the first in the contacts file gets the orders.
    """
    notes: list[str] = []
    if "contact_id" not in orders.columns:
        orders["contact_id"] = pd.Series(pd.NA, index=orders.index, dtype="string")
    todo = orders["contact_id"].isna().to_numpy(dtype=bool)
    if "email" not in orders.columns or not todo.any():
        return orders, notes
    if "email" not in contacts.columns:
        raise DataError(
            _("the orders name their buyer by e-mail only, but the contacts have no email column"),
            file=display,
            hint=_('map the contacts file\'s e-mail header to "email"'),
        )
    theirs, _bad = normalise_column(contacts["email"])
    known = pd.DataFrame({"email": theirs, "contact_id": contacts["contact_id"]}).dropna()
    shared = known["email"].duplicated(keep="first")
    if shared.any():
        example = known["email"][shared].iloc[0]
        notes.append(
            _(
                "{source}: {n} contacts share an e-mail address with an earlier contact; "
                "orders linked by e-mail go to the first (e.g. {example})"
            ).format(source=source, n=number(int(shared.sum())), example=example)
        )
    by_email = known[~shared].set_index("email")["contact_id"]
    ours, _bad = normalise_column(orders["email"][todo])
    found = ours.map(by_email).astype("string")
    orders.loc[todo, "contact_id"] = found.to_numpy()
    linked = int(found.notna().sum())
    said = _("{file}: {n} of {total} orders linked to contacts by e-mail")
    notes.append(said.format(file=display, n=number(linked), total=number(int(todo.sum()))))
    return orders, notes
