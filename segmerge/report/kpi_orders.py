"""`segmerge kpi` on a source whose data live in a database: orders counted there.

Why: `kpi` needs, per recipient, whether they ordered in the attribution window after
their letter and how much; a shop with millions of orders in PostgreSQL should not
ship them all out for a few thousand recipients' windows. The recipients (contact id
and send time, from the ledger) go into the database as one VALUES list, and one
statement returns, per recipient with an order in the window, the orders' number and
their sum: at most one row per recipient, never an order row. A second one returns
the latest order (how far the data go). The order-status rules are the segmentation's:
the status words counted per distinct status, folded by segmerge.segment.order_status,
those left out excluded in the statement.

The events (opens, clicks, unsubscribes, matched to campaign ids) are still read as
rows: `kpi` matches them to this run's campaign ids and its tracked hits in pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmerge.ports.connector import Source
from segmerge.ports.schema import Tables, empty_events, empty_orders, frame_from_arrow
from segmerge.ports.sql import text_literal
from segmerge.segment.order_status import StatusRules, status_counts
from segmerge.workspace.config import Workspace
from segmerge.workspace.sources import SourceRef


@dataclass
class DatabaseOrders:
    """Each recipient's orders in its window, as the database counted them."""

    days: int
    #: one row per (contact_id, sent_at) asked: orders and revenue in the window
    counted: pd.DataFrame
    until: pd.Timestamp | None

    def hits(self, people: pd.DataFrame, days: int) -> tuple[np.ndarray, np.ndarray]:
        """(ordered in the window, revenue in it) for each of ``people``'s rows."""
        assert days == self.days, "counted for another window"
        keys = people[["contact_id", "sent_at"]].astype({"contact_id": "string"})
        got = keys.merge(self.counted, on=["contact_id", "sent_at"], how="left")
        n = got["orders"].fillna(0).to_numpy(dtype=np.int64)
        return n > 0, got["revenue"].fillna(0.0).to_numpy(dtype=float)


def kpi_tables(source: Source) -> Tables:
    """The events as a pull gives them; no order row (they are counted in the database)."""
    relations = source.relations()
    events = empty_events()
    if "events" in relations:
        got = source.execute(
            f"SELECT contact_id, campaign_id, event, at FROM {relations['events']} AS e"
        )
        events = frame_from_arrow(got)
    contacts = pd.DataFrame({"contact_id": pd.Series(dtype="string")})
    return Tables(contacts, empty_orders(), events)


def count_orders(
    ws: Workspace, name: str, source: Source, peoples: Sequence[pd.DataFrame | None], days: int
) -> DatabaseOrders:
    """Every recipient's orders of the ``days`` after its send, counted by ``source``."""
    orders = source.relations()["orders"]
    where = _counted(ws, name, source)
    frames = [p[["contact_id", "sent_at"]] for p in peoples if p is not None and len(p)]
    pairs = pd.concat(frames) if frames else pd.DataFrame(columns=["contact_id", "sent_at"])
    pairs = pairs.dropna().drop_duplicates().reset_index(drop=True)
    pairs["contact_id"] = pairs["contact_id"].astype("string")
    last = source.execute(f"SELECT MAX(o.ordered_at) AS last FROM {orders} AS o WHERE {where}")
    until = frame_from_arrow(last)["last"].iloc[0]
    until = None if pd.isna(until) else pd.Timestamp(until)
    counted = pairs.assign(orders=pd.Series(dtype="Int64"), revenue=pd.Series(dtype=float))
    if len(pairs):
        stamps = pd.to_datetime(pairs["sent_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        ids, sent = pairs["contact_id"].astype(str).map(text_literal), stamps.map(text_literal)
        rows = "(" + pd.Series(pairs.index.astype(str)) + ", " + ids + ", " + sent + ")"
        got = frame_from_arrow(
            source.execute(
                "SELECT p.i AS i, COUNT(*) AS n, SUM(o.amount) AS revenue "
                "FROM (SELECT i, CAST(c AS VARCHAR) AS contact_id, CAST(t AS TIMESTAMPTZ) AS at "
                f"FROM (VALUES {', '.join(rows)}) AS v(i, c, t)) AS p "
                f"JOIN {orders} AS o ON o.contact_id = p.contact_id AND o.ordered_at > p.at "
                f"AND o.ordered_at <= p.at + INTERVAL '{int(days)} days' AND {where} "
                "GROUP BY p.i"
            )
        )
        at = got["i"].to_numpy(dtype=np.int64)
        counted.loc[at, "orders"] = got["n"].to_numpy(dtype=np.int64)
        counted.loc[at, "revenue"] = got["revenue"].astype(float).to_numpy()
    return DatabaseOrders(days, counted, until)


def _counted(ws: Workspace, name: str, source: Source) -> str:
    """The condition an order counts by (its status not left out), as SQL. The orders
    per status are counted as the segmentation counts them (the source's own when its
    checks counted them already, else one statement)."""
    # the engine (sqlglot and the relational plan, ~1 s of imports) only for a database source
    from segmerge.segment.in_database import order_counts

    statuses = order_counts(source)[2]
    if statuses is None:
        return "TRUE"
    ref = ws.config.sources.get(name) or SourceRef(connector="files")
    rules = StatusRules.for_source(ref.exclude_statuses, ref.include_statuses)
    _report, left_out = status_counts(statuses, rules)
    if not left_out:
        return "TRUE"
    words = ", ".join(text_literal(str(w)) for w in left_out)
    return f"(o.status IS NULL OR o.status NOT IN ({words}))"
