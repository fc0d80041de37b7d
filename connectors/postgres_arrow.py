"""One SELECT's rows from PostgreSQL as an Arrow table, whole columns at a time.

Why COPY and not a cursor: fetching rows builds a Python tuple and one Python object
per value (a million contacts: tens of millions of objects). ``COPY (…) TO STDOUT``
streams the rows as CSV, and Arrow's CSV reader types each column in C. The server
writes each value in a form that reader takes without guessing: times as microseconds
since the epoch (timezone-aware ones in UTC, so the session's TimeZone never matters),
numbers as float8, booleans as t/f, text arrays joined with a separator no tag holds.

Types, from the statement's description (``LIMIT 0``, nothing read):
integers -> int64, numeric/real/double/money -> float64, boolean -> bool, date ->
date32, timestamp -> timestamp[us], timestamptz -> timestamp[us, UTC] (infinite
dates and times -> null), text[] and varchar[] -> list<string> (an empty one -> null),
anything else (text, uuid, json…) -> its text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

INTEGER = frozenset({20, 21, 23, 26})  # int8 int2 int4 oid
FLOAT = frozenset({700, 701, 1700, 790})  # float4 float8 numeric money
TEXT = frozenset({25, 1043, 1042, 19, 18})  # text varchar bpchar name "char"
TEXT_ARRAY = frozenset({1009, 1015, 1014})  # text[] varchar[] bpchar[]
BOOL, DATE, TIMESTAMP, TIMESTAMPTZ = 16, 1082, 1114, 1184
#: joins a text array's elements in the CSV; a tag never holds a control character
SEP = "\x1f"


@dataclass(frozen=True)
class Column:
    name: str
    oid: int
    type_name: str  # as the server names it: "text", "numeric(10,2)"


def describe(conn: Any, query: str) -> list[Column]:
    """The columns ``query`` (a relation or a parenthesised SELECT) gives, reading no row."""
    cur = conn.execute(f"SELECT * FROM {query} AS q LIMIT 0")
    return [Column(d.name, d.type_code, d.type_display) for d in cur.description or []]


def _out(col: Column, alias: str) -> tuple[sql.Composable, pa.DataType]:
    """The SELECT expression writing ``col`` for the CSV reader, and the Arrow type read."""
    c = sql.SQL("q.{}").format(sql.Identifier(col.name))
    a = sql.Identifier(alias)
    micros = sql.SQL("(extract(epoch FROM {c}) * 1000000)::int8")
    finite = sql.SQL("CASE WHEN isfinite({c}) THEN {v} END AS {a}")
    if col.oid in INTEGER:
        return sql.SQL("{c}::int8 AS {a}").format(c=c, a=a), pa.int64()
    if col.oid in FLOAT:
        expr = "{c}::numeric::float8" if col.oid == 790 else "{c}::float8"
        return sql.SQL(expr + " AS {a}").format(c=c, a=a), pa.float64()
    if col.oid == BOOL:
        return sql.SQL("{c} AS {a}").format(c=c, a=a), pa.bool_()
    if col.oid == DATE:
        return finite.format(c=c, v=c, a=a), pa.date32()
    if col.oid in (TIMESTAMP, TIMESTAMPTZ):
        return finite.format(c=c, v=micros.format(c=c), a=a), pa.int64()
    if col.oid in TEXT_ARRAY:
        joined = sql.SQL("CASE WHEN cardinality({c}) > 0 THEN array_to_string({c}, {s}) END AS {a}")
        return joined.format(c=c, s=sql.Literal(SEP), a=a), pa.string()
    if col.oid in TEXT:
        return sql.SQL("{c} AS {a}").format(c=c, a=a), pa.string()
    return sql.SQL("{c}::text AS {a}").format(c=c, a=a), pa.string()


def _arrow(col: Column, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """What the CSV column becomes once read: times and lists from their written form."""
    if col.oid == TIMESTAMPTZ:
        return values.cast(pa.timestamp("us", tz="UTC"))
    if col.oid == TIMESTAMP:
        return values.cast(pa.timestamp("us"))
    if col.oid in TEXT_ARRAY:
        return pc.split_pattern(values, SEP)
    return values


def fetch(conn: Any, query: str, columns: list[Column] | None = None) -> pa.Table:
    """Every row of ``query`` (a relation or a parenthesised SELECT) as Arrow columns
    named as the statement names them."""
    columns = describe(conn, query) if columns is None else columns
    if not columns:  # `SELECT FROM t`: rows of nothing, which Arrow cannot hold
        return pa.table({})
    aliases = [f"c{i}" for i in range(len(columns))]
    outs = [_out(col, alias) for col, alias in zip(columns, aliases, strict=True)]
    select = sql.SQL("COPY (SELECT {cols} FROM {q} AS q) TO STDOUT (FORMAT csv)").format(
        cols=sql.SQL(", ").join(expr for expr, _ in outs), q=sql.SQL(query)
    )
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(select) as copy:
        for chunk in copy:
            buf.write(chunk)
    types = {alias: typ for alias, (_, typ) in zip(aliases, outs, strict=True)}
    if buf.tell() == 0:
        read = pa.table({a: pa.array([], type=t) for a, t in types.items()})
    else:
        buf.seek(0)
        read = pacsv.read_csv(
            buf,
            read_options=pacsv.ReadOptions(column_names=aliases),
            # a row of one NULL column is an empty line: a row, not nothing
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
    arrays = [_arrow(col, read.column(a)) for col, a in zip(columns, aliases, strict=True)]
    return pa.Table.from_arrays(arrays, names=[col.name for col in columns])
