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
from segmerge.segment.order_links import check_links, unmatched_message
from segmerge.segment.order_status import StatusReport, StatusRules, counted_mask, status_counts
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
    orders = tables.orders
    linked = check_links(
        orders, tables.contacts, name, ref.on_unmatched_orders, tables.origins.get("orders")
    )
    report = StatusReport(total=len(orders))
    keep = None
    has_status = "status" in orders.columns
    if has_status and len(orders):
        rules = StatusRules.for_source(ref.exclude_statuses, ref.include_statuses)
        mask, report = counted_mask(orders["status"], rules)
        keep = mask.to_numpy(dtype=bool)
    shown = _told(tables, name, linked, report, has_status)
    if keep is None or bool(np.all(keep)):
        return shown, shown
    return shown, replace(shown, orders=orders[keep].reset_index(drop=True))


def apply_counts(
    ws: Workspace,
    name: str,
    tables: Tables,
    *,
    total: int,
    unmatched: int,
    statuses: list[tuple[object, int]] | None,
    examples: str | None = None,
) -> tuple[Tables, list[str]]:
    """The same rules on counts a database made (orders, those naming no contact, orders
    per distinct status; None: no status column; a few of the unmatched ones, shown):
    (``tables`` with the rules' notes and warnings, the status words whose orders do not
    count). Raises like :func:`apply`."""
    ref = _ref(ws, name)
    origin = tables.origins.get("orders")
    linked = unmatched_message(unmatched, total, name, ref.on_unmatched_orders, origin, examples)
    report, left_out = StatusReport(total=total), list[str]()
    if statuses is not None and total:
        rules = StatusRules.for_source(ref.exclude_statuses, ref.include_statuses)
        report, left_out = status_counts(statuses, rules)
    return _told(tables, name, linked, report, statuses is not None, total), left_out


def _told(
    tables: Tables,
    name: str,
    linked: str | None,
    report: StatusReport,
    has_status: bool,
    total: int | None = None,
) -> Tables:
    """``tables`` with the notes and warnings of the link check and the status rules."""
    notes, warnings = list(tables.notes), list(tables.warnings)
    if linked:
        warnings.append(linked)
        notes.append(linked)
    if not has_status and (len(tables.orders) if total is None else total):
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
    return replace(tables, notes=notes, warnings=warnings)
