"""A rule-set file: ordered segments, their conditions, an exclusion, a mode.

Loading parses every condition (syntax errors point into the YAML file);
:meth:`RuleSet.check` then checks names and kinds against the source's columns
before anything runs; :meth:`RuleSet.assign` turns a frame of contacts and
metrics into segment membership, applying the exclusion and the mode
(``first``: a contact joins the first segment it matches; ``all``: every one).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from segmerge.errors import RuleError
from segmerge.i18n import _, ngettext
from segmerge.metrics.catalog import SCALAR_METRICS, Kind, MetricCall
from segmerge.rules import ast
from segmerge.rules.checker import Scope, bind_call, check_condition, suggest
from segmerge.rules.columns import kind_of_series
from segmerge.rules.evaluator import Evaluator, PandasEvaluator
from segmerge.rules.parser import ExprError, parse
from segmerge.rules.yamlpos import (
    INT_TAG,
    Locate,
    compose,
    locator,
    mapping_items,
    mark_of,
    read_text,
    scalar_text,
)

SLUG = re.compile(r"[a-z0-9_-]+")
MODES = ("first", "all")
_TOP_KEYS = ("version", "name", "description", "mode", "exclude", "segments")
_SEGMENT_KEYS = ("name", "label", "when", "description")


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
        names = np.array(list(self.matrix.columns), dtype=object)
        values = self.matrix.to_numpy(dtype=bool)
        out = np.full(len(self.matrix), None, dtype=object)
        if values.shape[1]:
            hit = values.any(axis=1)
            out[hit] = names[values.argmax(axis=1)[hit]]
        return pd.Series(out, index=self.matrix.index, dtype="string", name="segment")

    def sizes(self) -> dict[str, int]:
        return {str(name): int(self.matrix[name].sum()) for name in self.matrix.columns}


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


# --- loading --------------------------------------------------------------------------------


def load_ruleset(path: Path) -> RuleSet:
    """Read and parse a rule-set file; every mistake is a RuleError with file, line, column."""
    path = Path(path)
    text = read_text(path)
    root = compose(text, path)
    if root is None:
        raise RuleError(
            _("the rule set is empty"),
            file=path,
            line=1,
            column=1,
            hint=_("it needs at least `version: 1` and a list of `segments:`"),
        )
    top = mapping_items(root, _("a rule set"), path)
    _refuse_unknown(top, _TOP_KEYS, _("in a rule set"), path)
    if "version" not in top:
        raise RuleError(_("missing `version: 1`"), file=path, line=1, column=1, field="version")
    key_node, version = top["version"]
    if not (
        isinstance(version, yaml.ScalarNode)
        and version.tag == INT_TAG
        and str(version.value).strip().lstrip("+") == "1"
    ):
        shown = str(version.value)[:20]
        raise _at(
            version,
            path,
            _("unsupported version {version}; expected 1").format(version=repr(shown)),
            "version",
        )

    name = path.stem
    if "name" in top:
        given = scalar_text(top["name"][1], _("a name"), path)
        if given is not None:
            if not SLUG.fullmatch(given):
                raise _at(top["name"][1], path, _slug_message(given), "name")
            name = given
    description = _optional_text(top, "description", path)
    mode = (_optional_text(top, "mode", path) or "first").strip()
    if mode not in MODES:
        raise _at(
            top["mode"][1],
            path,
            _("unknown mode {mode}; expected first or all").format(mode=repr(mode)),
            "mode",
        )

    exclude = exclude_text = exclude_locate = None
    if "exclude" in top:
        node = top["exclude"][1]
        exclude_text = scalar_text(node, _("a condition"), path)
        if exclude_text is not None:
            assert isinstance(node, yaml.ScalarNode)
            exclude_locate = locator(text, node)
            exclude = _parse(exclude_text, exclude_locate, path, "exclude")

    if "segments" not in top:
        raise RuleError(
            _("missing `segments:`, the list of segments"),
            file=path,
            line=1,
            column=1,
            field="segments",
        )
    seg_key, seg_node = top["segments"]
    if not isinstance(seg_node, yaml.SequenceNode) or not seg_node.value:
        raise _at(
            seg_node if isinstance(seg_node, yaml.SequenceNode) else seg_key,
            path,
            _("expected a non-empty list of segments (`- name: ...`)"),
            "segments",
        )
    segments: list[Segment] = []
    for item in seg_node.value:
        segments.append(_segment(item, text, path, {s.name: s for s in segments}))
    return RuleSet(name, description, mode, segments, exclude, path, exclude_text, exclude_locate)


def _segment(node: yaml.Node, text: str, path: Path, seen: dict[str, Segment]) -> Segment:
    items = mapping_items(node, _("a segment (name:, when:)"), path)
    _refuse_unknown(items, _SEGMENT_KEYS, _("in a segment"), path)
    line = mark_of(node)[0]
    if "name" not in items:
        raise _at(node, path, _("a segment needs a name"), "name")
    name = scalar_text(items["name"][1], _("a name"), path)
    if name is None or not SLUG.fullmatch(name):
        raise _at(items["name"][1], path, _slug_message(name or ""), "name")
    if name in seen:
        raise _at(
            items["name"][1],
            path,
            _("duplicate segment name '{name}' (first at line {line})").format(
                name=name, line=seen[name].line
            ),
            "name",
        )
    label = _optional_text(items, "label", path) or name
    if "when" not in items or scalar_text(items["when"][1], _("a condition"), path) is None:
        where = items["when"][1] if "when" in items else node
        raise _at(
            where,
            path,
            _("segment '{name}' needs a condition `when:`").format(name=name),
            "when",
            _("write `when: true` for a catch-all segment"),
        )
    when_node = items["when"][1]
    assert isinstance(when_node, yaml.ScalarNode)
    when_text = str(when_node.value)
    locate = locator(text, when_node)
    expr = _parse(when_text, locate, path, _("segment {name}, when").format(name=repr(name)))
    description = _optional_text(items, "description", path)
    return Segment(name, label, when_text, expr, line, description, locate)


def _parse(text: str, locate: Locate, path: Path, where: str) -> ast.Node:
    try:
        return parse(text)
    except ExprError as exc:
        line, column = locate(exc.offset)
        raise RuleError(
            exc.message, file=path, line=line, column=column, field=where, hint=exc.hint
        ) from None


def _optional_text(items: dict[str, tuple[yaml.Node, yaml.Node]], key: str, path: Path) -> str:
    if key not in items:
        return ""
    return (scalar_text(items[key][1], _("text for {key}").format(key=key), path) or "").strip()


def _refuse_unknown(
    items: dict[str, tuple[yaml.Node, yaml.Node]], allowed: tuple[str, ...], what: str, path: Path
) -> None:
    for key, (key_node, _value) in items.items():
        if key not in allowed:
            close = suggest(key, allowed)
            mean = _("; did you mean '{close}'?").format(close=close[0]) if close else ""
            raise _at(
                key_node,
                path,
                _("unknown key '{key}' {where}").format(key=key, where=what) + mean,
                key,
                _("allowed: {keys}").format(keys=", ".join(allowed)),
            )


def _slug_message(value: str) -> str:
    return _("invalid name {name}; expected lower-case letters, digits, '-' or '_'").format(
        name=repr(value)
    )


def _at(
    node: yaml.Node, path: Path, message: str, field_name: str, hint: str | None = None
) -> RuleError:
    line, column = mark_of(node)
    return RuleError(message, file=path, line=line, column=column, field=field_name, hint=hint)
