"""A local copy of each API source's tables, so later pulls only fetch what changed.

Segmenting needs the whole base (quintiles, windows over every order), but a
platform only needs to be asked for what changed since the last pull. So the
first pull of a source is full; its tables are kept in
``.segmerge/snapshots/<source>/`` with the connector's cursor; the next pull
passes that cursor (the platform's modified-since filter), and the delta is
merged in: contacts and orders upserted by id, events appended without
duplicates.

A modified-since filter never reports deletions, so the snapshot is refreshed
in full when it is older than ``full_refresh_days`` (7 by default), when the
source's settings changed, when it cannot be read, or on ``--full-refresh``.
The snapshot is a cache: losing it costs one full pull, never data.
Sources that always give everything (files) have no cursor and no snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .schema import Tables

FULL_REFRESH_DAYS = 7
TABLES = ("contacts", "orders", "events")


@dataclass
class Manifest:
    cursor: str
    fingerprint: str
    saved_at: str  # ISO UTC

    def age_days(self) -> float:
        saved = pd.Timestamp(self.saved_at)
        return (pd.Timestamp.now(tz="UTC") - saved).total_seconds() / 86400


def fingerprint(connector: str, settings: dict[str, Any]) -> str:
    """Settings that change what is pulled (another list, another account) void the snapshot."""
    text = json.dumps({"connector": connector, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Snapshot:
    def __init__(self, state_dir: Path, source: str) -> None:
        self.dir = state_dir / "snapshots" / source

    def manifest(self) -> Manifest | None:
        try:
            data = json.loads((self.dir / "manifest.json").read_text(encoding="utf-8"))
            return Manifest(str(data["cursor"]), str(data["fingerprint"]), str(data["saved_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def usable_cursor(self, fp: str, *, full_refresh: bool = False,
                      max_age_days: float = FULL_REFRESH_DAYS) -> str | None:  # fmt: skip
        """The cursor to pull from, or None when a full pull is due (and why is logged)."""
        m = self.manifest()
        if m is None or full_refresh or m.fingerprint != fp or m.age_days() > max_age_days:
            return None
        return m.cursor

    def load(self) -> Tables | None:
        try:
            frames = {t: pd.read_pickle(self.dir / f"{t}.pkl") for t in TABLES}
        except Exception:  # a cache from another pandas, half-written, deleted: pull in full
            return None
        return Tables(frames["contacts"], frames["orders"], frames["events"])

    def save(self, tables: Tables, fp: str) -> None:
        """Write next to the old copy, then swap directories: never a half-written snapshot."""
        if not tables.cursor:
            return
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.dir.name}-", dir=self.dir.parent))
        try:
            for t in TABLES:
                getattr(tables, t).to_pickle(tmp / f"{t}.pkl")
            manifest = {"cursor": tables.cursor, "fingerprint": fp,
                        "saved_at": pd.Timestamp.now(tz="UTC").isoformat()}  # fmt: skip
            (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
            old = self.dir.with_name(f".{self.dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            if self.dir.exists():
                os.replace(self.dir, old)
            os.replace(tmp, self.dir)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def merge(base: Tables, delta: Tables) -> Tables:
    """The base with the delta applied: the newest row of each id wins."""
    contacts = _upsert(base.contacts, delta.contacts, "contact_id")
    orders = _upsert(base.orders, delta.orders, "order_id")
    events = _concat(base.events, delta.events).drop_duplicates(
        subset=[c for c in ("contact_id", "campaign_id", "event", "at") if c in delta.events]
    )
    merged = Tables(contacts, orders, events.reset_index(drop=True))
    merged.cursor = delta.cursor
    merged.skipped = dict(delta.skipped)
    merged.notes = list(delta.notes)
    return merged


def _upsert(base: pd.DataFrame, delta: pd.DataFrame, key: str) -> pd.DataFrame:
    if delta.empty:
        return base
    if key not in base or key not in delta:
        return _concat(base, delta)
    kept = base[~base[key].isin(delta[key].dropna())]
    return _concat(kept, delta).reset_index(drop=True)


def _concat(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    if a.empty:
        return b.copy()
    if b.empty:
        return a.copy()
    out = pd.concat([a, b], ignore_index=True)
    # keep the base's dtypes where pandas widened them to object
    for col in a.columns:
        if col in b.columns and a[col].dtype == b[col].dtype and out[col].dtype != a[col].dtype:
            out[col] = out[col].astype(a[col].dtype)
    return out
