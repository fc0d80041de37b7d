"""A rule-set file: ordered segments, their conditions, an exclusion, a mode.

Loading (:mod:`segmerge.rules.loading`) parses every condition (syntax errors point
into the YAML file);
:meth:`RuleSet.check` then checks names and kinds against the source's columns
before anything runs; :meth:`RuleSet.assign` turns a frame of contacts and
metrics into segment membership, applying the exclusion and the mode
(``first``: a contact joins the first segment it matches; ``all``: every one).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np
import pandas as pd

from segmerge.errors import RuleError
from segmerge.i18n import _, ngettext
from segmerge.metrics.catalog import SCALAR_METRICS, Kind, MetricCall
from segmerge.rules import ast
from segmerge.rules.checker import Scope, bind_call, check_condition
from segmerge.rules.columns import kind_of_series
from segmerge.rules.evaluator import Evaluator, PandasEvaluator
from segmerge.rules.parser import ExprError
from segmerge.rules.yamlpos import (
    Locate,
)


@dataclass(frozen=True)
class Segment:
    name: str
    label: str
    when_text: str
    expr: ast.Node
    line: int
    description: str = ""
    locate: Locate | None = field(default=None, repr=False, compare=False)


@dataclass
class Assignment:
    """Who is in which segment, after the exclusion and the mode."""

    matrix: pd.DataFrame
    excluded: pd.Series
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> pd.Series:
        """The first segment (rule order) each contact is in, <NA> when none."""
        return _first_segment(self.matrix)

    def primary_at(self, rows: np.ndarray) -> pd.Series:
        """:attr:`primary` of these row positions only: a run asks chunk by chunk, and
        building the whole column for each chunk made a run quadratic in its contacts."""
        return _first_segment(self.matrix.iloc[rows])

    def sizes(self) -> dict[str, int]:
        return {str(name): int(self.matrix[name].sum()) for name in self.matrix.columns}


def _first_segment(matrix: pd.DataFrame) -> pd.Series:
    names = np.array(list(matrix.columns), dtype=object)
    values = matrix.to_numpy(dtype=bool)
    out = np.full(len(matrix), None, dtype=object)
    if values.shape[1]:
        hit = values.any(axis=1)
        out[hit] = names[values.argmax(axis=1)[hit]]
    return pd.Series(out, index=matrix.index, dtype="string", name="segment")


@dataclass
class RuleSet:
    name: str
    description: str
    mode: str
    segments: list[Segment]
    exclude: ast.Node | None
    path: Path
    exclude_text: str | None = None
    exclude_locate: Locate | None = field(default=None, repr=False)

    # --- checks ------------------------------------------------------------------------------

    def conditions(self) -> list[tuple[str, str, ast.Node, Locate | None]]:
        """(field, text, tree, locator) for the exclusion and every segment, in file order."""
        out: list[tuple[str, str, ast.Node, Locate | None]] = []
        if self.exclude is not None:
            out.append(("exclude", self.exclude_text or "", self.exclude, self.exclude_locate))
        for seg in self.segments:
            where = _("segment {name}, when").format(name=repr(seg.name))
            out.append((where, seg.when_text, seg.expr, seg.locate))
        return out

    def _error(self, where: str, exc: ExprError, locate: Locate | None) -> RuleError:
        line, column = locate(exc.offset) if locate else (None, None)
        return RuleError(
            exc.message, file=self.path, line=line, column=column, field=where, hint=exc.hint
        )

    def check(self, columns: Mapping[str, Kind], orders_columns: Collection[str] | None) -> None:
        """Names and kinds against the source: unknown columns fail here, not at run time."""
        scope = Scope(dict(columns), None if orders_columns is None else set(orders_columns))
        for where, _text, expr, locate in self.conditions():
            try:
                check_condition(expr, scope)
            except ExprError as exc:
                raise self._error(where, exc, locate) from None

    def metric_calls(self) -> set[MetricCall]:
        calls: set[MetricCall] = set()
        for where, _text, expr, locate in self.conditions():
            for node in ast.walk(expr):
                if isinstance(node, ast.Func):
                    try:
                        calls.add(bind_call(node))
                    except ExprError as exc:
                        raise self._error(where, exc, locate) from None
        return calls

    def names(self) -> set[str]:
        """Contact columns and scalar metrics the conditions read."""
        return {
            n.name
            for _w, _t, expr, _l in self.conditions()
            for n in ast.walk(expr)
            if isinstance(n, ast.Name)
        }

    def warnings(self) -> list[str]:
        """Things that are legal but probably not what the author meant."""
        out: list[str] = []
        count = len(self.segments)
        if count > 4 or count < 2:
            out.append(
                ngettext(
                    "{n} segment: good segmentations usually have 2 to 4 segments, "
                    "homogeneous inside and distinct from each other",
                    "{n} segments: good segmentations usually have 2 to 4 segments, "
                    "homogeneous inside and distinct from each other",
                    count,
                ).format(n=count)
            )
        if self.exclude is not None and _static_truth(self.exclude) is True:
            out.append(_("the exclude condition is always true: every contact is excluded"))
        seen: dict[ast.Node, str] = {}
        always: str | None = None
        for seg in self.segments:
            if always is not None and self.mode == "first":
                out.append(
                    _(
                        "segment {name} can never match: {always} before it is always "
                        "true (mode: first)"
                    ).format(name=repr(seg.name), always=repr(always))
                )
            elif _static_truth(seg.expr) is False or isinstance(seg.expr, ast.Null):
                out.append(
                    _("segment {name} can never match: its condition is always false").format(
                        name=repr(seg.name)
                    )
                )
            elif seg.expr in seen:
                twin = seen[seg.expr]
                same = _("segment {name} has the same condition as {twin}")
                if self.mode == "first":
                    same = _(
                        "segment {name} has the same condition as {twin} and can never "
                        "match (mode: first)"
                    )
                out.append(same.format(name=repr(seg.name), twin=repr(twin)))
            seen.setdefault(seg.expr, seg.name)
            if always is None and _static_truth(seg.expr) is True:
                always = seg.name
        return out

    # --- evaluation --------------------------------------------------------------------------

    def kinds_for(self, frame: pd.DataFrame) -> dict[str, Kind]:
        """Kinds of the frame's columns, inspecting only those the conditions read."""
        used = self.names()
        return {
            str(c): kind_of_series(frame[c]) if c in used and c not in SCALAR_METRICS else Kind.ANY
            for c in frame.columns
        }

    def evaluator(
        self, frame: pd.DataFrame, as_of: pd.Timestamp, tz: tzinfo, kinds: Mapping[str, Kind]
    ) -> Evaluator:
        self.check(kinds, None)
        return PandasEvaluator(frame, kinds, as_of, tz)

    def assign(self, frame: pd.DataFrame, as_of: pd.Timestamp, tz: tzinfo) -> Assignment:
        """Segment membership of every contact in ``frame`` (one row per contact)."""
        ev = self.evaluator(frame, as_of, tz, self.kinds_for(frame))
        return self.assign_with(ev, frame.index)

    def assign_with(self, ev: Evaluator, index: pd.Index) -> Assignment:
        n = len(index)
        excluded = np.zeros(n, dtype=bool)
        if self.exclude is not None:
            excluded = _true(ev.truth(self.exclude))
        taken = excluded.copy()
        columns: dict[str, np.ndarray] = {}
        for seg in self.segments:
            member = _true(ev.truth(seg.expr)) & ~excluded
            if self.mode == "first":
                member &= ~taken
                taken |= member
            columns[seg.name] = member
        matrix = pd.DataFrame(columns, index=index, columns=[s.name for s in self.segments])
        return Assignment(
            matrix.astype(bool),
            pd.Series(excluded, index=index, name="excluded"),
            {s.name: s.label for s in self.segments},
        )


def _true(truth: pd.Series) -> np.ndarray:
    return np.asarray(truth.fillna(False).to_numpy(dtype=bool), dtype=bool)


def _static_truth(expr: ast.Node) -> bool | None:
    """True/False when the condition cannot depend on the contact or the day, else None."""
    if isinstance(expr, ast.Or):
        sides = (_static_truth(expr.left), _static_truth(expr.right))
        return True if True in sides else (False if sides == (False, False) else None)
    if isinstance(expr, ast.And):
        sides = (_static_truth(expr.left), _static_truth(expr.right))
        return False if False in sides else (True if sides == (True, True) else None)
    if isinstance(expr, ast.Not):
        inner = _static_truth(expr.operand)
        return None if inner is None else not inner
    if any(isinstance(n, ast.Name | ast.Func | ast.Today) for n in ast.walk(expr)):
        return None
    try:
        frame = pd.DataFrame(index=pd.RangeIndex(1))
        values = PandasEvaluator(frame, {}, pd.Timestamp(0, tz="UTC"), UTC).values(expr)
    except Exception:  # not a valid condition: the checker reports it, not the warnings
        return None
    return bool(values[0]) if values[0] is not None else False
