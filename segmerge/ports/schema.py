"""The canonical tables every connector yields, whatever the platform.

The pipeline, the metrics and the rules only ever see these shapes, so a new
connector is correct once :func:`conform` accepts what it produces.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segmerge.errors import BadAnswer, DataError
from segmerge.i18n import _

if TYPE_CHECKING:  # loaded by the first table built: importing the plugin API stays cheap
    import numpy as np
    import pandas as pd
    import pyarrow as pa

CONTACT_COLUMNS = (
    "contact_id",
    "email",
    "first_name",
    "last_name",
    "subscribed",
    "created_at",
    "updated_at",
    "tags",
)
ORDER_COLUMNS = ("contact_id", "order_id", "ordered_at", "amount")
#: ``status`` is the shop's word for the order ("Annulé", "wc-refunded", "paid"): orders
#: whose status says cancelled, refunded or failed count for no metric (order_status.py)
ORDER_OPTIONAL = ("category", "rating", "status")
EVENT_COLUMNS = ("contact_id", "campaign_id", "event", "at")
EVENT_KINDS = ("sent", "open", "click", "unsubscribe", "bounce")

STRING = "string"  # pandas' nullable string dtype, the same on pandas 2 and 3
UTC = "datetime64[ns, UTC]"


@dataclass
class Tables:
    """What one pull of a source yields.

    ``skipped`` counts rows left out under ``on_bad_rows = "skip"``, by file,
    so the run report can say so; ``cursor`` is what the next incremental pull
    starts from (opaque to the engine, stored in the ledger).
    """

    contacts: pd.DataFrame
    orders: pd.DataFrame = field(default_factory=lambda: empty_orders())
    events: pd.DataFrame = field(default_factory=lambda: empty_events())
    skipped: dict[str, int] = field(default_factory=dict)
    cursor: str | None = None
    notes: list[str] = field(default_factory=list)
    #: True when the tables hold only what changed since the cursor given to pull
    incremental: bool = False
    #: each stream's own cursor ("contacts", "orders", "events") when a source tracks
    #: their progress apart; a stream missing here falls back to ``cursor``
    cursors: dict[str, str] = field(default_factory=dict)
    #: the notes the user must see even where notes are not shown (`segment`, `explain`):
    #: orders naming no contact, status words nobody knows; each is in ``notes`` too
    warnings: list[str] = field(default_factory=list)
    #: where each table came from ("orders" -> "exports/commandes.csv"), for messages
    #: that must name a file; a source that knows sets it
    origins: dict[str, str] = field(default_factory=dict)


def empty_orders() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "contact_id": pd.Series(dtype=STRING),
            "order_id": pd.Series(dtype=STRING),
            "ordered_at": pd.Series(dtype=UTC),
            "amount": pd.Series(dtype="float64"),
        }
    )


def empty_events() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "contact_id": pd.Series(dtype=STRING),
            "campaign_id": pd.Series(dtype=STRING),
            "event": pd.Series(dtype=STRING),
            "at": pd.Series(dtype=UTC),
        }
    )


def _require(df: pd.DataFrame, columns: tuple[str, ...], table: str, source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            _("the {table} table has no column {value}").format(
                table=table, value=", ".join(missing)
            ),
            file=source,
            hint=_("map the file's own headers with `columns = {...}` in the source"),
        )


def conform(tables: Tables, source: str) -> Tables:
    """Check and coerce a connector's output to the canonical dtypes.

    Connectors do the parsing (they know lines and fields); this is the
    contract check that keeps a sloppy connector from reaching the metrics.
    """
    import pandas as pd

    c = tables.contacts
    _require(c, ("contact_id",), "contacts", source)
    c = c.copy(deep=False)  # columns are replaced, never written into: no value copied
    notes = list(tables.notes)
    if "subscribed" not in c.columns:
        notes.append(f"{source}: no `subscribed` column, so no contact counts as consenting")
    for col in CONTACT_COLUMNS:
        if col not in c.columns:
            c[col] = _default_contact_column(col, len(c))
    for col in ("contact_id", "email", "first_name", "last_name"):
        c[col] = c[col].astype(STRING)
    c["subscribed"] = c["subscribed"].fillna(False).astype(bool)
    for col in ("created_at", "updated_at"):
        c[col] = pd.to_datetime(c[col], utc=True)
    tags = c["tags"].tolist()
    if set(map(type, tags)) - {list}:  # all lists, as connectors give them: nothing to build
        c["tags"] = [list(t) if isinstance(t, list | tuple) else [] for t in tags]
    if not _unique(c["contact_id"]):  # pandas then names the first
        dupes = c["contact_id"][c["contact_id"].duplicated()]
        raise DataError(
            _("duplicate contact_id {value!r}").format(value=dupes.iloc[0]),
            file=source,
            field="contact_id",
        )
    ordered = list(CONTACT_COLUMNS) + [x for x in c.columns if x not in CONTACT_COLUMNS]
    c = c[ordered].reset_index(drop=True)

    o = tables.orders
    _require(o, ORDER_COLUMNS, "orders", source)
    o = o.copy(deep=False)
    o["contact_id"] = o["contact_id"].astype(STRING)
    o["order_id"] = o["order_id"].astype(STRING)
    o["ordered_at"] = pd.to_datetime(o["ordered_at"], utc=True)
    o["amount"] = o["amount"].astype("float64")
    if "category" in o.columns:
        o["category"] = o["category"].astype(STRING)
    if "rating" in o.columns:
        o["rating"] = o["rating"].astype("float64")
    if "status" in o.columns:
        o["status"] = o["status"].astype(STRING)

    e = tables.events
    _require(e, EVENT_COLUMNS, "events", source)
    e = e.copy(deep=False)
    for col in ("contact_id", "campaign_id", "event"):
        e[col] = e[col].astype(STRING)
    e["at"] = pd.to_datetime(e["at"], utc=True)

    return Tables(
        c,
        o,
        e,
        dict(tables.skipped),
        tables.cursor,
        notes,
        bool(tables.incremental),
        dict(tables.cursors),
        list(tables.warnings),
        dict(tables.origins),
    )


def _unique(ids: pd.Series) -> bool:
    """No id twice, without a Python string per id (a set of a million took 0.5 s):
    ids in increasing order (a server's answer sorted by id, an export numbered in
    order) are proven unique by comparing neighbours (5 ms); others are hashed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.array(ids, from_pandas=True)
    n = len(values)
    if n > 1 and not values.null_count and pc.all(pc.less(values[: n - 1], values[1:])).as_py():
        return True
    return bool(pc.count_distinct(values, mode="all").as_py() == len(values))


def _default_contact_column(col: str, n: int) -> Any:
    import pandas as pd

    if col == "subscribed":  # consent is never assumed
        return pd.Series([False] * n, dtype=bool)
    if col in ("created_at", "updated_at"):
        return pd.Series([pd.NaT] * n, dtype=UTC)
    if col == "tags":
        return pd.Series([[] for _ in range(n)], dtype=object)
    return pd.Series([pd.NA] * n, dtype=STRING)


def vendor_times(values: list[Any], *, where: Callable[[int], str], source: str) -> pd.Series:
    """A vendor's ISO 8601 date-times as one UTC column; the first that is not one stops
    the pull naming it (``where(n)`` says which field of which item), never a silent NaT."""
    import pandas as pd

    raw = pd.Series(values, dtype=object)
    at = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
    if at.isna().any():
        n = int(at.isna().to_numpy().argmax())
        raise BadAnswer(
            _("{source}: {value} is {value2!r}, not a date-time").format(
                source=source, value=where(n), value2=str(raw.iloc[n])[:80]
            ),
            field=source,
        )
    return at


def frame_from_arrow(table: pa.Table) -> pd.DataFrame:
    """Rows a database answered (Arrow) as the pandas dtypes a pull gives: nullable strings,
    integers and booleans, nanosecond times, lists (tags) as Python lists."""
    import pandas as pd
    import pyarrow as pa

    def pandas_type(t: pa.DataType) -> Any:
        if t == pa.string():
            return pd.StringDtype()
        if t == pa.int64():
            return pd.Int64Dtype()
        if t == pa.bool_():
            return pd.BooleanDtype()
        return None

    types = zip(table.column_names, table.schema.types, strict=True)
    lists = [n for n, t in types if pa.types.is_list(t) or pa.types.is_large_list(t)]
    frame = table.drop_columns(lists).to_pandas(
        types_mapper=pandas_type, coerce_temporal_nanoseconds=True
    )
    for name in lists:
        frame[name] = pd.Series(_lists(table.column(name)), dtype=object, index=frame.index)
    return frame[table.column_names] if table.column_names else frame


def _lists(column: pa.ChunkedArray) -> np.ndarray:
    """A list column's cells as Python lists, every empty or missing one the same empty list:
    most contacts have no tag, and a million lists of their own held ~55 MiB at a run's
    peak. Nothing writes into a cell's list (a new list replaces it), so sharing is safe."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(column)
    cells = np.fromiter(itertools.repeat([], n), dtype=object, count=n)
    full = np.flatnonzero(pc.fill_null(pc.list_value_length(column), 0).to_numpy() > 0)
    if len(full):
        kept = pc.take(column, full).to_pylist()
        cells[full] = np.fromiter(kept, dtype=object, count=len(kept))
    return cells
