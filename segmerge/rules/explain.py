"""Why one contact is, or is not, in each segment, sub-condition by sub-condition.

Marketers debug rules by asking about a customer they know. The explanation
re-evaluates the same trees with the same engine on that contact's row, so it
can never disagree with the real assignment, and shows every sub-expression
with its source text and its value (None for null, which explains most
surprises: a null comparison is not a match).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd

from segmerge.errors import DataError
from segmerge.i18n import _
from segmerge.rules import ast
from segmerge.rules.evaluator import Evaluator
from segmerge.rules.ruleset import RuleSet


@dataclass(frozen=True)
class ConditionNode:
    text: str
    value: Any
    children: tuple[ConditionNode, ...] = ()


@dataclass(frozen=True)
class SegmentExplanation:
    name: str
    label: str
    matched: bool
    decided_by: str
    condition: ConditionNode | None
    is_exclude: bool = False


def explain(
    rs: RuleSet, frame: pd.DataFrame, contact_id: str, as_of: pd.Timestamp, tz: tzinfo
) -> list[SegmentExplanation]:
    """The exclusion first (if any), then every segment in rule order."""
    ids = frame["contact_id"].astype("string")
    rows = np.flatnonzero((ids == str(contact_id)).fillna(False).to_numpy(dtype=bool))
    if not len(rows):
        close = difflib.get_close_matches(str(contact_id), ids.dropna().tolist()[:50_000], n=3)
        raise DataError(
            _("no contact with contact_id {value}").format(value=repr(contact_id)),
            field="contact_id",
            hint=_("did you mean {names}?").format(names=", ".join(close)) if close else None,
        )
    row = frame.iloc[rows[:1]].reset_index(drop=True)
    ev = rs.evaluator(row, as_of, tz, rs.kinds_for(frame))  # kinds from all contacts, not one
    assignment = rs.assign_with(ev, row.index)
    out: list[SegmentExplanation] = []
    excluded = bool(assignment.excluded.iloc[0])
    if rs.exclude is not None:
        tree = _tree(rs.exclude, rs.exclude_text or "", ev)
        state = {
            True: _("the exclude condition is true"),
            False: _("the exclude condition is false"),
            None: _("the exclude condition is null (unknown), so it does not exclude"),
        }
        out.append(
            SegmentExplanation(
                "exclude",
                "exclude",
                excluded,
                state[tree.value],
                tree,
                is_exclude=True,
            )
        )
    earlier: str | None = None
    for seg in rs.segments:
        tree = _tree(seg.expr, seg.when_text, ev)
        matched = bool(assignment.matrix[seg.name].iloc[0])
        if excluded:
            why = _("excluded")
        elif earlier is not None and rs.mode == "first":
            why = _("an earlier segment {name} matched (mode: first)").format(name=repr(earlier))
        elif tree.value is None:
            why = _("its condition is null (unknown), which is not a match")
        else:
            why = _("its condition is true") if tree.value else _("its condition is false")
        if matched and earlier is None:
            earlier = seg.name
        out.append(SegmentExplanation(seg.name, seg.label, matched, why, tree))
    return out


def _tree(node: ast.Node, source: str, ev: Evaluator) -> ConditionNode:
    text = source[node.pos.start : node.pos.end] if node.pos else node.to_text()
    children: tuple[ast.Node, ...] = () if isinstance(node, ast.Func) else node.children()
    kept = tuple(_tree(c, source, ev) for c in children if not isinstance(c, ast.LITERALS))
    return ConditionNode(text, ev.values(node)[0], kept)
