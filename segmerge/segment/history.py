"""Who was in which segment each day: the assignments kept for `report`'s movements.

Each `report` and each run keeps the assignment of the day in
``.segmerge/assignments/<rule set>.parquet``: one row per contact and segment (an
empty segment for a contact in none), with the values of every column and metric
the conditions read, as text, and a digest of the rules. Saving lives here, with
the segmentation, and not in :mod:`segmerge.report.movements`, which reads these
files back: a run saves the day's assignment, and the run must not import
reporting code (the layers: run > segment, report > run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from segmerge.rules import Assignment, RuleSet, ast
from segmerge.rules.checker import bind_call
from segmerge.segment.segmentation import Segmented
from segmerge.workspace.config import Workspace

KEEP_DAYS = 3  # days kept per rule set: today's and a couple before it
NONE = ""  # the segment of a contact in no segment


def snapshot_path(ws: Workspace, ruleset_name: str) -> Path:
    return ws.state_dir / "assignments" / f"{ruleset_name}.parquet"


def rules_digest(rs: RuleSet) -> str:
    """Changes when the rules do: movements can say part of them comes from that."""
    text = "\n".join(
        [rs.mode, rs.exclude_text or ""] + [f"{s.name}:{s.when_text}" for s in rs.segments]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reads(node: ast.Node) -> Iterator[tuple[str, str]]:
    """(frame column, label) of each contact column or metric call a condition reads."""
    if isinstance(node, ast.Func):
        yield bind_call(node).key, node.to_text()
        return
    if isinstance(node, ast.Name):
        yield node.name, node.name
    for child in node.children():
        yield from _reads(child)


def columns_read(expr: ast.Node, frame: pd.DataFrame) -> dict[str, str]:
    """Frame columns a condition reads, with their label as written in rules, in order."""
    return {c: label for c, label in _reads(expr) if c in frame.columns}


def read_columns(rs: RuleSet, frame: pd.DataFrame) -> dict[str, str]:
    """Every column the rule set's conditions read (exclusion and segments), labelled."""
    out: dict[str, str] = {}
    for _where, _text, expr, _loc in rs.conditions():
        for c, label in columns_read(expr, frame).items():
            out.setdefault(c, label)
    return out


def _as_text(series: pd.Series) -> pd.Series:
    """Comparable, displayable text of any column; null stays null."""
    if pd.api.types.is_float_dtype(series.dtype):
        series = series.round(2)
    elif series.dtype == object:
        series = series.map(lambda v: "|".join(map(str, v)) if isinstance(v, list | tuple) else v)
    return series.astype("string")


def _pairs(assignment: Assignment) -> tuple[np.ndarray, np.ndarray]:
    """(row, segment) for each membership, and (row, "") for contacts in none."""
    m = assignment.matrix.to_numpy(dtype=bool)
    names = np.asarray(list(assignment.matrix.columns), dtype=object)
    rows, cols = np.nonzero(m)
    none = np.flatnonzero(~m.any(axis=1)) if m.shape[1] else np.arange(len(m))
    return (
        np.concatenate([rows, none]),
        np.concatenate([names[cols], np.full(len(none), NONE, dtype=object)]),
    )


def current(
    ruleset: RuleSet, frame: pd.DataFrame, assignment: Assignment, day: str, source: str
) -> pd.DataFrame:
    """The day's assignment as it is kept: a row per (contact, segment)."""
    rows, segs = _pairs(assignment)
    out = pd.DataFrame(
        {
            "day": day,
            "source": source,
            "contact_id": frame["contact_id"].astype("string").to_numpy()[rows],
            "segment": pd.array(segs, dtype="string"),
            "rules": rules_digest(ruleset),
        }
    )
    for c in read_columns(ruleset, frame):
        out[f"v:{c}"] = _as_text(frame[c]).to_numpy()[rows]
    return out


def load(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception:  # a damaged snapshot only costs the movements, never the report
        return None


def save_assignment(
    ws: Workspace,
    ruleset: RuleSet,
    frame: pd.DataFrame,
    assignment: Assignment,
    as_of: pd.Timestamp,
    source: str,
) -> Path:
    """Keep today's assignment (replacing today's, keeping the few days before it)."""
    day = as_of.tz_convert(ws.tz).strftime("%Y-%m-%d")
    path = snapshot_path(ws, ruleset.name)
    now = current(ruleset, frame, assignment, day, source)
    old = load(path)
    if old is not None:
        old = old[(old["day"] != day) | (old["source"] != source)]
        days = sorted(set(old["day"]) | {day}, reverse=True)[:KEEP_DAYS]
        now = pd.concat([old[old["day"].isin(days)], now], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    now.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def save_segmented(ws: Workspace, seg: Segmented) -> Path:
    """What a run and `report` call once segments are computed."""
    return save_assignment(ws, seg.ruleset, seg.frame, seg.assignment, seg.as_of, seg.source_name)
