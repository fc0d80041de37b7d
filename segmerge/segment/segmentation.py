"""Pull a source, compute the metrics a rule set needs, and assign segments.

Shared by `segment`, `explain`, `render`, `validate` and `run`, so that what a
marketer previews is computed exactly as what the run sends.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmerge.errors import ConfigError
from segmerge.heap import frozen_heap
from segmerge.i18n import _
from segmerge.metrics.compute import compute_metrics, reference_instant
from segmerge.ports.connector import PullInstead, Source
from segmerge.ports.schema import Tables, conform
from segmerge.rules import Assignment, RuleSet, kinds_from_frame, load_ruleset
from segmerge.segment import order_rules as source_rules
from segmerge.segment.cache import Snapshot, fingerprint
from segmerge.segment.opened import (  # noqa: F401 - opened here by many commands
    connector_context,
    default_source_for,
    open_source,
)
from segmerge.segment.progress import StreamProgress
from segmerge.workspace.config import Workspace


@dataclass
class Segmented:
    """Everything known after segmentation; nothing has been written anywhere yet."""

    ruleset: RuleSet
    tables: Tables
    frame: pd.DataFrame  # contacts + metrics, one row per contact
    assignment: Assignment
    as_of: pd.Timestamp
    source_name: str


def pull(source: Source, since: str | None = None) -> Tables:
    """The source's tables, conformed; collections skip the heap the run started with."""
    with frozen_heap():
        return conform(source.pull(since), source=source.name)


def pull_source(
    ws: Workspace, source: Source, *, full_refresh: bool = False, keep: bool = False
) -> Tables:
    """Pull what changed since the snapshot (or everything) and return the whole base.

    Each stream resumes from its own cursor. With ``keep`` (a run; previews and dry
    runs write nothing) each stream is kept as soon as the source completes it, and the
    whole base as soon as the pull returns: a failure after that, in a later stream or
    in a push, costs the next run nothing already read.
    """
    snap = Snapshot(ws.state_dir, source.name)
    fp = source_fingerprint(ws, source.name)
    resume = snap.resume(fp, full_refresh=full_refresh)
    progress = StreamProgress(source.name, snap, fp, resume, keep=keep)
    ctx = source.ctx
    before = ctx.stream_done
    ctx.cursors, ctx.stream_done = dict(resume.cursors), progress.done
    try:
        tables = progress.whole(pull(source, resume.since))
    finally:
        ctx.stream_done = before
    if keep:
        save_snapshot(ws, source.name, tables, whole=progress.read_whole)
    return tables


def source_fingerprint(ws: Workspace, name: str) -> str:
    ref = ws.config.sources[name]
    return fingerprint(ref.connector, ref.settings())


def save_snapshot(
    ws: Workspace, source_name: str, tables: Tables, *, whole: Iterable[str] = ()
) -> None:
    """Keep the pulled base for the next incremental pull (only sources with a cursor);
    ``whole``: the streams this pull read whole, so their deletions are up to date."""
    if (tables.cursor or tables.cursors) and source_name in ws.config.sources:
        fp = source_fingerprint(ws, source_name)
        Snapshot(ws.state_dir, source_name).save(tables, fp, whole=whole)


def build_frame(
    tables: Tables, ruleset: RuleSet, as_of: pd.Timestamp, ws: Workspace, extra_calls: tuple = ()
) -> pd.DataFrame:
    calls = set(ruleset.metric_calls()) | set(extra_calls)
    metrics = compute_metrics(tables, as_of, ws.tz, calls)
    contacts = tables.contacts.reset_index(drop=True)
    overlap = [c for c in metrics.columns if c in contacts.columns]
    if overlap:
        raise ConfigError(
            _("the source has columns named like metrics: {value}").format(
                value=", ".join(overlap)
            ),
            hint=_("rename them with `columns = {...}` in the source"),
        )
    return pd.concat([contacts, metrics.reset_index(drop=True)], axis=1)


def rules_file(ws: Workspace, rules: str | Path) -> Path:
    """The rule-set file ``rules`` names (relative to the workspace), refused if missing."""
    rules_path = ws.path(rules) if not Path(rules).is_absolute() else Path(rules)
    if not rules_path.is_file():
        raise ConfigError(_("rule set {rules} not found").format(rules=rules), file=rules_path)
    return rules_path


def segment(
    ws: Workspace,
    rules: str | Path,
    *,
    source_name: str | None = None,
    as_of: str | None = None,
    tables: Tables | None = None,
    full_refresh: bool = False,
    source: Source | None = None,
    order_categories: bool = False,
    columns: Collection[str] | None = None,
    ruleset: RuleSet | None = None,
) -> Segmented:
    """Segment ``rules`` on a source: its pulled ``tables`` (pulled here when None), or,
    for a source with a SQL dialect and no tables given, inside its database
    (segmerge.segment.in_database; ``source``: the one already open, else opened here;
    ``order_categories``: the tables' orders then hold each order's contact and category,
    for `report`, and no other order column; ``columns``: in a database, only these
    contact columns and scalar metrics come back besides the rules', None: all;
    ``ruleset``: the one at ``rules``, already loaded by :func:`rules_file` before a pull)."""
    rules_path = rules_file(ws, rules)
    ruleset = ruleset if ruleset is not None else load_ruleset(rules_path)
    name = source_name or default_source_for(ws, rules_path)
    instant = as_of_instant(ws, as_of)
    if tables is None:
        src = source or open_source(ws, name)
        try:
            if src.dialect is not None:
                from segmerge.segment.in_database import segment_in_database

                try:
                    done = segment_in_database(
                        ws,
                        name,
                        src,
                        ruleset,
                        instant,
                        order_categories=order_categories,
                        columns=columns,
                    )
                except PullInstead:  # its plan's answer cannot stand: the pull says why
                    done = None
                if done is not None:
                    got = done.tables, done.frame, done.assignment
                    return Segmented(ruleset, *got, instant, name)
            tables = pull_source(ws, src, full_refresh=full_refresh)
        finally:
            if source is None:
                src.close()
    tables, counted = source_rules.apply(ws, name, tables)  # statuses, orders of nobody
    orders_columns = set(tables.orders.columns)
    ruleset.check(kinds_from_frame(tables.contacts), orders_columns)
    frame = build_frame(counted, ruleset, instant, ws)
    assignment = ruleset.assign(frame, instant, ws.tz)
    return Segmented(ruleset, tables, frame, assignment, instant, name)


def as_of_instant(ws: Workspace, as_of: str | None) -> pd.Timestamp:
    """The run's reference instant: the given day, or the start of today, in the workspace tz."""
    if as_of is None:
        return reference_instant(pd.Timestamp.now(tz=ws.tz).date(), ws.tz)
    try:
        return reference_instant(as_of, ws.tz)
    except (ValueError, TypeError):
        raise ConfigError(
            _("--as-of {value} is not a date").format(value=repr(as_of)),
            field="--as-of",
            hint=_("expected e.g. 2026-01-31"),
        ) from None
