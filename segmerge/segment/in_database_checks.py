"""What the in-database segmentation tells and keeps as the files source does.

Kept apart from segmerge/segment/in_database.py (which runs the plan): the two
things here make a database source say and give what the pandas engine says and
gives on the same rows, without reading more than a handful of rows.

- A contacts column named like one of the plan's own outputs (``segment``,
  ``excluded``: a CRM's "B2B"/"B2C" field, a do-not-contact flag) is the contact's,
  usable in rules and letters as with files: the plan's answer has the name twice,
  and the contact's is told apart by position.
- The warning about orders naming no contact gives a few examples, as the files
  source does: the database returns at most :data:`EXAMPLES` such orders (their id
  and the contact they name), never all of them. A source that knows its pull's order
  names the first ones in it (the files source on DuckDB: the pandas pull's examples);
  a database's table has none, so no ORDER BY there: the scan stops at the third it
  meets instead of sorting every unmatched order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pyarrow as pa
from sqlglot import exp

from segmerge.ports.connector import Source
from segmerge.ports.schema import frame_from_arrow
from segmerge.relational.plan import RESERVED, Plan
from segmerge.segment.order_links import _examples

#: unmatched orders named in the warning (the files source names its first three)
EXAMPLES = 3
_CONTACT = "contact:"


def result_names(output: Sequence[str]) -> list[str]:
    """The plan's output names, a contact column named like a plan's own column renamed
    ``contact:<name>`` (the plan's own comes last), so every name is one column."""
    names = list(output)
    for reserved in RESERVED:
        at = [i for i, n in enumerate(names) if n == reserved]
        for i in at[:-1]:
            names[i] = _CONTACT + reserved
    return names


def contact_rows(result: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``contact_id`` and the contacts' ``columns`` of the plan's answer, under their names."""
    taken = set(result.column_names)
    picked = [_CONTACT + c if _CONTACT + c in taken else c for c in columns]
    return result.select(["contact_id", *picked]).rename_columns(["contact_id", *columns])


def answer(
    source: Source,
    plan: Plan,
    relations: dict[str, str],
    columns: Sequence[str],
    others: Collection[str],
) -> pa.Table:
    """The plan's rows with only the columns the caller types, under their public names:
    ``contact_id``, the contacts' ``columns`` (as :func:`contact_rows` finds them) and
    ``others`` (metrics, flags). The plan is asked for those alone, so a contact column
    only the rules read (a tags list) is never sent back nor copied; were two of the
    plan's own names alike (never so far), the whole answer is fetched and narrowed."""
    public = result_names(plan.output)
    taken = set(public)
    want = {"contact_id", *others, *(_CONTACT + c if _CONTACT + c in taken else c for c in columns)}
    picked = [i for i, n in enumerate(public) if n in want]
    sql = plan.sql(source.dialect or "duckdb", relations, pretty=False)
    inner = plan.tree.named_selects if isinstance(plan.tree, exp.Query) else []
    if len(set(inner)) == len(inner) == len(public):
        said = [exp.to_identifier(inner[i], quoted=True).sql(source.dialect) for i in picked]
        got = source.execute(f"SELECT {', '.join(said)} FROM ({sql}) AS segmerge_plan")
        return got.rename_columns([public[i] for i in picked])
    return source.execute(sql).rename_columns(public).select([public[i] for i in picked])


def unmatched_examples(
    source: Source, relations: dict[str, str], unmatched: int, has_email: bool
) -> str | None:
    """A few orders naming no contact, as the files source names them; None for none."""
    if not unmatched:
        return None
    email = ", o.email" if has_email else ""
    got = source.unmatched_orders(EXAMPLES)
    if got is None:
        got = source.execute(
            f"SELECT o.order_id, o.contact_id{email} FROM {relations['orders']} AS o "
            f"WHERE NOT EXISTS (SELECT 1 FROM {relations['contacts']} AS c "
            f"WHERE c.contact_id = o.contact_id) LIMIT {EXAMPLES}"
        )
    orders = frame_from_arrow(got)
    return _examples(orders, np.ones(len(orders), dtype=bool), EXAMPLES) or None
