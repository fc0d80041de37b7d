"""The same rule tree as one SQL boolean expression (a sqlglot tree), run by DuckDB.

When a base outgrows memory, the conditions go to where the data is. SQL
already has the language's three-valued logic, so most nodes translate one to
one; the tree is dialect-neutral (segmerge.relational prints it for PostgreSQL or a
warehouse), and the exceptions are spelled out: division by zero is NULL (``NULLIF``),
"N days" moves the wall clock in the workspace zone (``AT TIME ZONE`` twice), a
date difference counts calendar days there, and ``x in []`` is false.

The compiler assumes canonical column types (DOUBLE, VARCHAR, BOOLEAN,
TIMESTAMPTZ, VARCHAR[]); :class:`DuckDBEvaluator` prepares a pandas frame that
way so the two engines can be compared on the same contacts. One known
difference: a wall time that does not exist (the hour skipped in spring) is
moved forward by the gap in DuckDB, to the first valid minute in pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from segmerge.errors import RuleError
from segmerge.i18n import _
from segmerge.metrics.catalog import FUNCTIONS, Kind
from segmerge.rules import ast
from segmerge.rules.checker import Scope, bind_call, kind_of
from segmerge.rules.columns import day_start, load_column
from segmerge.rules.evaluator import Evaluator

_COMPARE: dict[str, type[exp.Expression]] = {
    "==": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}
_ARITH: dict[str, type[exp.Expression]] = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}
_DAY_MICROS = 86_400_000_000


def zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def moment(ts: pd.Timestamp) -> exp.Expression:
    """A UTC instant as a ``TIMESTAMPTZ`` literal (every dialect has one)."""
    return exp.cast(exp.Literal.string(ts.tz_convert("UTC").isoformat()), "timestamptz")


def local_day(value: exp.Expression, zone: str) -> exp.Expression:
    """The calendar day an instant falls on in ``zone`` (a DATE)."""
    return exp.cast(exp.AtTimeZone(this=value, zone=exp.Literal.string(zone)), "date")


def day_diff(later: exp.Expression, earlier: exp.Expression) -> exp.Expression:
    """Whole calendar days from one DATE to another."""
    return exp.DateDiff(this=later, expression=earlier, unit=exp.var("DAY"))


def as_double(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, "double")


def _p(value: exp.Expression) -> exp.Expression:
    """Built trees carry no precedence: every composite is parenthesised, as SQL text was."""
    return exp.Paren(this=value)


def quoted(name: str) -> exp.Expression:
    return exp.column(name, quoted=True)


class SqlCompiler:
    """Tree → a sqlglot expression (printed for DuckDB or any dialect), for one scope,
    reference date and time zone. ``column`` maps a contact column, scalar metric or
    metric call key to the expression that reads it (by default its quoted name)."""

    def __init__(
        self,
        kinds: Mapping[str, Kind],
        as_of: pd.Timestamp,
        tz: tzinfo,
        column: Callable[[str], exp.Expression] = quoted,
    ) -> None:
        self.scope = Scope(kinds)
        self.tz = tz
        self.zone = zone_name(tz)
        self.today = day_start(as_of, tz)
        self.column = column

    def names(self, expr: ast.Node) -> set[str]:
        """Columns the compiled expression reads (contact columns, metrics, metric calls)."""
        if isinstance(expr, ast.Func):  # its arguments name orders columns, not contact ones
            return {bind_call(expr).key}
        if isinstance(expr, ast.Name):
            return set() if self.scope.kind_of_name(expr.name) == Kind.NULL else {expr.name}
        return set().union(*(self.names(child) for child in expr.children()))

    def kind(self, node: ast.Node) -> Kind:
        return kind_of(node, self.scope)

    def compile(self, node: ast.Node) -> str:
        """DuckDB SQL text of the condition."""
        return self.tree(node).sql(dialect="duckdb", copy=False)  # a fresh tree, nobody else's

    def tree(self, node: ast.Node) -> exp.Expression:  # noqa: C901 - one branch per node type
        t = self.tree
        if isinstance(node, ast.Or):  # first: a generated rule is thousands of them
            return _p(exp.Or(this=t(node.left), expression=t(node.right)))
        if isinstance(node, ast.And):
            return _p(exp.And(this=t(node.left), expression=t(node.right)))
        if isinstance(node, ast.Number):
            return as_double(exp.Literal.number(repr(float(node.value))))
        if isinstance(node, ast.String):
            return exp.Literal.string(node.value)
        if isinstance(node, ast.Bool):
            return exp.true() if node.value else exp.false()
        if isinstance(node, ast.Null):
            return exp.null()
        if isinstance(node, ast.DateLit):
            return moment(day_start(node.value, self.tz))
        if isinstance(node, ast.Today):
            return moment(self.today)
        if isinstance(node, ast.Name):
            kind = self.scope.kind_of_name(node.name)
            if kind == Kind.NULL:
                return exp.null()
            col = self.column(node.name)
            return as_double(col) if kind == Kind.NUMBER else col
        if isinstance(node, ast.Func):
            col = self.column(bind_call(node).key)
            return as_double(col) if FUNCTIONS[node.name].returns == Kind.NUMBER else col
        if isinstance(node, ast.Neg):
            return _p(exp.Neg(this=t(node.operand)))
        if isinstance(node, ast.Arith):
            return self._arith(node)
        if isinstance(node, ast.Compare):
            return _p(_COMPARE[node.op](this=t(node.left), expression=t(node.right)))
        if isinstance(node, ast.In):
            if not node.items:
                return exp.true() if node.negated else exp.false()
            found = exp.In(this=t(node.operand), expressions=[t(i) for i in node.items])
            return _p(exp.Not(this=found) if node.negated else found)
        if isinstance(node, ast.Between):
            return _p(exp.Between(this=t(node.operand), low=t(node.low), high=t(node.high)))
        if isinstance(node, ast.IsNull):
            test = exp.Is(this=t(node.operand), expression=exp.null())
            return _p(exp.Not(this=test) if node.negated else test)
        if isinstance(node, ast.Contains | ast.StartsWith) and Kind.NULL in (
            self.kind(node.operand),
            self.kind(node.needle if isinstance(node, ast.Contains) else node.prefix),
        ):
            return exp.null()  # a column without values: NULL, not a function on an untyped NULL
        if isinstance(node, ast.Contains):
            if self.kind(node.operand) == Kind.LIST:
                return exp.ArrayContains(this=t(node.operand), expression=t(node.needle))
            at = exp.StrPosition(this=t(node.operand), substr=t(node.needle))
            return _p(exp.GT(this=at, expression=exp.Literal.number(0)))
        if isinstance(node, ast.StartsWith):
            return exp.StartsWith(this=t(node.operand), expression=t(node.prefix))
        if isinstance(node, ast.Not):
            return _p(exp.Not(this=t(node.operand)))
        raise TypeError(f"not a rule node: {node!r}")  # pragma: no cover

    def _arith(self, node: ast.Arith) -> exp.Expression:
        kind, lk, rk = self.kind(node), self.kind(node.left), self.kind(node.right)
        a, b = self.tree(node.left), self.tree(node.right)
        if kind == Kind.NULL:
            return exp.null()
        if lk == rk == Kind.NUMBER:
            if node.op == "/":
                divisor = exp.Nullif(this=b, expression=exp.Literal.number(0))
                return _p(exp.Div(this=a, expression=divisor))
            return _p(_ARITH[node.op](this=a, expression=b))
        if lk == rk == Kind.DATETIME:
            return as_double(day_diff(local_day(a, self.zone), local_day(b, self.zone)))
        when, days = (a, b) if lk == Kind.DATETIME else (b, a)
        zone = exp.Literal.string(self.zone)
        micros = exp.func("round", exp.Mul(this=days, expression=exp.Literal.number(_DAY_MICROS)))
        shift = exp.DateSub if node.op == "-" else exp.DateAdd
        wall = shift(
            this=exp.AtTimeZone(this=when, zone=zone),
            expression=exp.cast(micros, "bigint"),
            unit=exp.var("MICROSECOND"),
        )
        return _p(exp.AtTimeZone(this=_p(wall), zone=zone))


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
                raise RuleError(_("unknown name '{name}'").format(name=name), field=name)
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
