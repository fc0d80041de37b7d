"""The same rule tree as one SQL boolean expression, run by DuckDB.

When a base outgrows memory, the conditions go to where the data is. SQL
already has the language's three-valued logic, so most nodes translate one to
one; the exceptions are spelled out: division by zero is NULL (``NULLIF``),
"N days" moves the wall clock in the workspace zone (``timezone()`` twice), a
date difference counts calendar days there, and ``x in []`` is false.

The compiler assumes canonical column types (DOUBLE, VARCHAR, BOOLEAN,
TIMESTAMPTZ, VARCHAR[]); :class:`DuckDBEvaluator` prepares a pandas frame that
way so the two engines can be compared on the same contacts. One known
difference: a wall time that does not exist (the hour skipped in spring) is
moved forward by the gap in DuckDB, to the first valid minute in pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from segmerge.errors import RuleError
from segmerge.metrics.catalog import FUNCTIONS, Kind
from segmerge.rules import ast
from segmerge.rules.checker import Scope, bind_call, kind_of
from segmerge.rules.columns import day_start, load_column
from segmerge.rules.evaluator import Evaluator

_SQL_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


class SqlCompiler:
    """Tree → DuckDB SQL text, for one scope, reference date and time zone."""

    def __init__(self, kinds: Mapping[str, Kind], as_of: pd.Timestamp, tz: tzinfo) -> None:
        self.scope = Scope(kinds)
        self.tz = tz
        self.zone = literal(_zone_name(tz))
        self.today = day_start(as_of, tz)

    def names(self, expr: ast.Node) -> set[str]:
        """Columns the compiled expression reads (contact columns, metrics, metric calls)."""
        if isinstance(expr, ast.Func):  # its arguments name orders columns, not contact ones
            return {bind_call(expr).key}
        if isinstance(expr, ast.Name):
            return set() if self.scope.kind_of_name(expr.name) == Kind.NULL else {expr.name}
        return set().union(*(self.names(child) for child in expr.children()))

    def kind(self, node: ast.Node) -> Kind:
        return kind_of(node, self.scope)

    def _moment(self, ts: pd.Timestamp) -> str:
        return f"TIMESTAMPTZ '{ts.tz_convert('UTC').isoformat()}'"

    def compile(self, node: ast.Node) -> str:  # noqa: C901 - one branch per node type
        c = self.compile
        if isinstance(node, ast.Number):
            return f"CAST({float(node.value)!r} AS DOUBLE)"
        if isinstance(node, ast.String):
            return literal(node.value)
        if isinstance(node, ast.Bool):
            return "TRUE" if node.value else "FALSE"
        if isinstance(node, ast.Null):
            return "NULL"
        if isinstance(node, ast.DateLit):
            return self._moment(day_start(node.value, self.tz))
        if isinstance(node, ast.Today):
            return self._moment(self.today)
        if isinstance(node, ast.Name):
            kind = self.scope.kind_of_name(node.name)
            if kind == Kind.NULL:
                return "NULL"
            return (
                f"CAST({ident(node.name)} AS DOUBLE)" if kind == Kind.NUMBER else ident(node.name)
            )
        if isinstance(node, ast.Func):
            key = ident(bind_call(node).key)
            return f"CAST({key} AS DOUBLE)" if FUNCTIONS[node.name].returns == Kind.NUMBER else key
        if isinstance(node, ast.Neg):
            return f"(-{c(node.operand)})"
        if isinstance(node, ast.Arith):
            return self._arith(node)
        if isinstance(node, ast.Compare):
            return f"({c(node.left)} {_SQL_OPS[node.op]} {c(node.right)})"
        if isinstance(node, ast.In):
            if not node.items:
                return "TRUE" if node.negated else "FALSE"
            items = ", ".join(c(i) for i in node.items)
            return f"({c(node.operand)} {'NOT IN' if node.negated else 'IN'} ({items}))"
        if isinstance(node, ast.Between):
            return f"({c(node.operand)} BETWEEN {c(node.low)} AND {c(node.high)})"
        if isinstance(node, ast.IsNull):
            return f"({c(node.operand)} IS {'NOT ' if node.negated else ''}NULL)"
        if isinstance(node, ast.Contains):
            fn = "list_contains" if self.kind(node.operand) == Kind.LIST else "contains"
            return f"{fn}({c(node.operand)}, {c(node.needle)})"
        if isinstance(node, ast.StartsWith):
            return f"starts_with({c(node.operand)}, {c(node.prefix)})"
        if isinstance(node, ast.Not):
            return f"(NOT {c(node.operand)})"
        if isinstance(node, ast.And):
            return f"({c(node.left)} AND {c(node.right)})"
        if isinstance(node, ast.Or):
            return f"({c(node.left)} OR {c(node.right)})"
        raise TypeError(f"not a rule node: {node!r}")  # pragma: no cover

    def _arith(self, node: ast.Arith) -> str:
        kind, lk, rk = self.kind(node), self.kind(node.left), self.kind(node.right)
        a, b = self.compile(node.left), self.compile(node.right)
        if kind == Kind.NULL:
            return "NULL"
        if lk == rk == Kind.NUMBER:
            return f"({a} / NULLIF({b}, 0))" if node.op == "/" else f"({a} {node.op} {b})"
        if lk == rk == Kind.DATETIME:
            day_a = f"CAST(timezone({self.zone}, {a}) AS DATE)"
            day_b = f"CAST(timezone({self.zone}, {b}) AS DATE)"
            return f"CAST(date_diff('day', {day_b}, {day_a}) AS DOUBLE)"
        moment, days = (a, b) if lk == Kind.DATETIME else (b, a)
        sign = "-" if node.op == "-" else "+"
        micros = f"to_microseconds(CAST(round({days} * 86400000000) AS BIGINT))"
        return f"timezone({self.zone}, timezone({self.zone}, {moment}) {sign} {micros})"


def compile_condition(
    expr: ast.Node, kinds: Mapping[str, Kind], as_of: pd.Timestamp, tz: tzinfo
) -> str:
    """A DuckDB boolean expression over canonical columns; NULL means "not matched"."""
    return SqlCompiler(kinds, as_of, tz).compile(expr)


class DuckDBEvaluator(Evaluator):
    """Runs compiled conditions on a pandas frame through an embedded DuckDB."""

    def __init__(
        self,
        frame: pd.DataFrame,
        kinds: Mapping[str, Kind],
        as_of: pd.Timestamp,
        tz: tzinfo,
        connection: Any = None,
    ) -> None:
        import duckdb

        self.frame = frame
        self.tz = tz
        self.compiler = SqlCompiler(kinds, as_of, tz)
        self.con = connection or duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self._arrays: dict[str, pa.Array] = {}

    def _array(self, name: str) -> pa.Array:
        if name not in self._arrays:
            function = FUNCTIONS.get(name.split("(")[0]) if name.endswith(")") else None
            kind = function.returns if function else self.compiler.scope.kind_of_name(name)
            if kind is None:
                raise RuleError(f"unknown name '{name}'", field=name)
            self._arrays[name] = _arrow(self.frame[name], kind, self.tz)
        return self._arrays[name]

    def _query(self, expr: ast.Node) -> pa.ChunkedArray:
        names = sorted(self.compiler.names(expr))
        arrays = [pa.array(np.arange(len(self.frame)))] + [self._array(n) for n in names]
        table = pa.Table.from_arrays(arrays, names=["__row", *names])
        self.con.register("contacts", table)
        sql = f"SELECT {self.compiler.compile(expr)} AS v FROM contacts ORDER BY __row"
        relation = self.con.sql(sql)
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table  # 2 / 1
        result = fetch().column("v")
        self.con.unregister("contacts")
        return result

    def truth(self, expr: ast.Node) -> pd.Series:
        column = self._query(expr).cast(pa.bool_())
        series = column.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
        return pd.Series(series.array, index=self.frame.index, dtype="boolean")

    def values(self, expr: ast.Node) -> list[Any]:
        out: list[Any] = []
        for x in self._query(expr).to_pylist():
            if isinstance(x, float):
                out.append(None if x != x else (int(x) if x.is_integer() else x))
            elif hasattr(x, "tzinfo") and x is not None:
                out.append(pd.Timestamp(x).tz_convert(self.tz))
            else:
                out.append(x)
        return out


def _arrow(series: pd.Series, kind: Kind, tz: tzinfo) -> pa.Array:
    """A column in the canonical SQL type, nulls as SQL NULL (NaN included)."""
    vals, mask = load_column(series, kind, tz)
    if kind == Kind.NUMBER:
        return pa.array(vals, type=pa.float64(), mask=mask)
    if kind == Kind.BOOL:
        return pa.array(vals, type=pa.bool_(), mask=mask)
    if kind == Kind.DATETIME:
        return pa.array(vals, type=pa.timestamp("ns", tz="UTC"), mask=mask)
    if kind == Kind.STRING:
        return pa.array(vals.to_numpy(dtype=object, na_value=None), type=pa.string())
    try:
        return pa.array(vals.to_numpy(dtype=object), type=pa.list_(pa.string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # elements that are not strings
        as_text = [None if m else [str(i) for i in v] for v, m in zip(vals, mask, strict=True)]
        return pa.array(as_text, type=pa.list_(pa.string()))
