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
  and the contact they name), never all of them. No ORDER BY: the scan stops at the
  third it meets (the files source also names the first ones it reads), instead of
  sorting every unmatched order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pyarrow as pa

from segmerge.ports.connector import Source
from segmerge.ports.schema import frame_from_arrow
from segmerge.relational.plan import RESERVED
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


def needed(result: pa.Table, columns: Sequence[str], others: Collection[str]) -> pa.Table:
    """The plan's answer with only what the caller types: ``contact_id``, the contacts'
    ``columns`` (as :func:`contact_rows` finds them) and ``others`` (metrics, flags). A
    contact column only the rules read (a tags list) goes before any copy of the rows."""
    taken = set(result.column_names)
    want = {"contact_id", *others, *(_CONTACT + c if _CONTACT + c in taken else c for c in columns)}
    return result.select([n for n in result.column_names if n in want])


def unmatched_examples(
    source: Source, relations: dict[str, str], unmatched: int, has_email: bool
) -> str | None:
    """A few orders naming no contact, as the files source names them; None for none."""
    if not unmatched:
        return None
    email = ", o.email" if has_email else ""
    got = source.execute(
        f"SELECT o.order_id, o.contact_id{email} FROM {relations['orders']} AS o "
        f"WHERE NOT EXISTS (SELECT 1 FROM {relations['contacts']} AS c "
        f"WHERE c.contact_id = o.contact_id) LIMIT {EXAMPLES}"
    )
    orders = frame_from_arrow(got)
    return _examples(orders, np.ones(len(orders), dtype=bool), EXAMPLES) or None
