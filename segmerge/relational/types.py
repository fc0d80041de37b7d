"""SQL column types → the rule language's kinds, as the pandas engine reads a frame.

A source's relation says what its columns are (``DESCRIBE`` in DuckDB, the catalog
in PostgreSQL); the plan needs the kind of every contact column a rule reads, and
whether a date-time carries its zone (a naive one is wall time in the workspace
zone, as :func:`segmerge.rules.columns.load_column` reads it).
"""

from __future__ import annotations

import re

from segmerge.metrics.catalog import Kind

_NUMBER = re.compile(
    r"^(U?(TINY|SMALL|HUGE|BIG)?INT(EGER)?\d*|INT\d|FLOAT\d?|REAL|DOUBLE( PRECISION)?|"
    r"DECIMAL(\(.*\))?|NUMERIC(\(.*\))?|UHUGEINT|UBIGINT|USMALLINT|UTINYINT|UINTEGER|"
    r"FLOAT64|INT64|BIGNUMERIC)$"
)
_DATETIME = re.compile(
    r"^(TIMESTAMP(TZ)?(_S|_MS|_US|_NS)?(TZ)?( WITH(OUT)? TIME ZONE)?|DATE|DATETIME\d*)(\(\d\))?$"
)


def kind_of_type(sql_type: str) -> Kind:
    """The kind of a column of that SQL type (unknown types read as strings)."""
    t = sql_type.strip().upper()
    if t.endswith("[]") or t.startswith(("LIST", "ARRAY")):
        return Kind.LIST
    if t in ("BOOLEAN", "BOOL"):
        return Kind.BOOL
    if _NUMBER.match(t):
        return Kind.NUMBER
    if _DATETIME.match(t):
        return Kind.DATETIME
    if t in ("NULL", '"NULL"'):
        return Kind.ANY
    return Kind.STRING


def naive_datetime(sql_type: str) -> bool:
    """A date-time type without a zone (TIMESTAMP, DATE): wall time in the workspace zone."""
    t = sql_type.strip().upper()
    return _DATETIME.match(t) is not None and "TZ" not in t and "WITH TIME ZONE" not in t
