"""The engine's rules for every source's orders, applied wherever a source is read.

Every command that reads a source (`validate`, `segment`, `explain`, `run`,
`report`, `preview`) segments through :func:`segmerge.segment.segmentation.segment`,
which calls :func:`apply` on the whole base: after an API source's incremental
pull is merged into its snapshot, not on the delta (a delta lacks the contacts
that did not change, and an order cancelled since the last pull must replace
its older row before it is left out). So the rules hold for every connector
alike, and changing them takes effect at once, with no full pull.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from segmerge.i18n import _
from segmerge.ports.schema import Tables
from segmerge.segment.order_links import check_links
from segmerge.segment.order_status import StatusReport, StatusRules, counted_mask
from segmerge.workspace.sources import SourceRef

if TYPE_CHECKING:
    from segmerge.workspace.config import Workspace


def _ref(ws: Workspace, name: str) -> SourceRef:
    ref = ws.config.sources.get(name)
    return ref if ref is not None else SourceRef(connector="files")


def apply(ws: Workspace, name: str, tables: Tables) -> tuple[Tables, Tables]:
    """(the tables as pulled, with the rules' notes and warnings; the same with only
    the orders that count, for the metrics).

    The first keeps every order, so that a snapshot saved from it stays whole.
    Raises a DataError when too many orders name no contact (see order_links).
    """
    ref = _ref(ws, name)
    notes, warnings = list(tables.notes), list(tables.warnings)
    orders = tables.orders
    linked = check_links(
        orders, tables.contacts, name, ref.on_unmatched_orders, tables.origins.get("orders")
    )
    if linked:
        warnings.append(linked)
        notes.append(linked)
    report = StatusReport(total=len(orders))
    keep = None
    if "status" in orders.columns and len(orders):
        rules = StatusRules.for_source(ref.exclude_statuses, ref.include_statuses)
        mask, report = counted_mask(orders["status"], rules)
        keep = mask.to_numpy(dtype=bool)
    elif len(orders):
        notes.append(
            _(
                "{name}: the orders have no status column, so every order counts, "
                "cancelled or refunded ones too (map the shop's order status to "
                "`status` to leave those out)"
            ).format(name=name)
        )
    note, unknown = report.note(name), report.warning(name)
    if note:
        notes.append(note)
    if unknown:
        warnings.append(unknown)
        notes.append(unknown)
    shown = replace(tables, notes=notes, warnings=warnings)
    if keep is None or bool(np.all(keep)):
        return shown, shown
    return shown, replace(shown, orders=orders[keep].reset_index(drop=True))
