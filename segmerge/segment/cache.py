"""A local copy of each API source's tables, so later pulls only fetch what changed.

Segmenting needs the whole base (quintiles, windows over every order), but a
platform only needs to be asked for what changed since the last pull. So the
first pull of a source is full; its tables are kept in
``.segmerge/snapshots/<source>/`` with the connector's cursors; the next pull
passes them back (the platform's modified-since filters), and the delta is
merged in: contacts and orders upserted by id, events appended without
duplicates.

Each stream (contacts, orders, events) is kept with its own cursor and time, as
soon as the source says it is complete (``ConnectorContext.stream_done``): a pull
that fails on its events, or a push that fails after the pull, leaves the streams
already read kept, and the next pull resumes each from its own cursor instead of
starting over. A source that gives one cursor for everything (``Tables.cursor``)
resumes every stream from it, as before per-stream cursors existed; manifests
written then (a single ``cursor``) still load.

A modified-since filter never reports deletions (a contact erased on the
platform), so each stream is read whole again when its last whole read is more
than ``FULL_REFRESH_DAYS`` (7) old, however often it was merged since; and
everything is, when the source's settings changed, when the copy cannot be read,
or on ``--full-refresh``.
The snapshot is a cache: losing it costs one full pull, never data.
Sources that always give everything (files) have no cursor and no snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from segmerge.ports.schema import Tables

FULL_REFRESH_DAYS = 7
TABLES = ("contacts", "orders", "events")


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


def _age_days(saved_at: str) -> float:
    return (pd.Timestamp.now(tz="UTC") - pd.Timestamp(saved_at)).total_seconds() / 86400


@dataclass
class StreamState:
    """One stream's progress: where its next pull starts (None: it is read whole), when
    it was kept, and when it was last read whole (deletions are seen only then)."""

    cursor: str | None
    saved_at: str
    full_at: str


@dataclass
class Manifest:
    #: the cursor of the last complete pull, for sources that give one for everything
    #: (None until a pull completed); each stream may have its own in ``streams``
    cursor: str | None
    fingerprint: str
    saved_at: str  # ISO UTC, when ``cursor`` was kept
    streams: dict[str, StreamState] = field(default_factory=dict)
    #: when the oldest stream behind ``cursor`` was last read whole
    full_at: str = ""

    def age_days(self) -> float:
        """Days since the copy behind the combined cursor was last read whole."""
        return _age_days(self.full_at or self.saved_at)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 2,
            "cursor": self.cursor,
            "fingerprint": self.fingerprint,
            "saved_at": self.saved_at,
            "full_at": self.full_at,
            "streams": {
                s: {"cursor": st.cursor, "saved_at": st.saved_at, "full_at": st.full_at}
                for s, st in self.streams.items()
            },
        }


@dataclass
class Resume:
    """Where a pull starts: the combined cursor, each stream's own, and the base they
    apply to. Empty on a full pull."""

    since: str | None = None
    cursors: dict[str, str] = field(default_factory=dict)
    base: dict[str, pd.DataFrame] = field(default_factory=dict)

    def start(self, stream: str) -> str | None:
        """Where this stream's pull starts (its own cursor, else the combined one)."""
        if stream not in self.base:
            return None
        return self.cursors.get(stream) or self.since


def fingerprint(connector: str, settings: dict[str, Any]) -> str:
    """Settings that change what is pulled (another list, another account) void the snapshot."""
    text = json.dumps({"connector": connector, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def frames_of(tables: Tables) -> dict[str, pd.DataFrame]:
    return {"contacts": tables.contacts, "orders": tables.orders, "events": tables.events}


class Snapshot:
    def __init__(self, state_dir: Path, source: str) -> None:
        self.dir = state_dir / "snapshots" / source

    def manifest(self) -> Manifest | None:
        try:
            data = json.loads((self.dir / "manifest.json").read_text(encoding="utf-8"))
            cursor = data["cursor"]
            streams = {
                str(s): StreamState(
                    None if v["cursor"] is None else str(v["cursor"]),
                    str(v["saved_at"]),
                    str(v.get("full_at") or v["saved_at"]),
                )
                for s, v in (data.get("streams") or {}).items()
                if s in TABLES
            }
            saved_at = str(data["saved_at"])  # a manifest of one cursor: read whole then
            return Manifest(
                None if cursor is None else str(cursor),
                str(data["fingerprint"]),
                saved_at,
                streams,
                str(data.get("full_at") or saved_at),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def resume(
        self, fp: str, *, full_refresh: bool = False, max_age_days: float = FULL_REFRESH_DAYS
    ) -> Resume:
        """Where the next pull starts; a stream with no readable, recent, same-settings copy
        starts over (and so does everything on ``full_refresh``)."""
        m = self.manifest()
        if m is None or full_refresh or m.fingerprint != fp:
            return Resume()
        base = {t: f for t in TABLES if (f := self._read(t)) is not None}
        fresh = m.age_days() <= max_age_days
        since = m.cursor if fresh and m.cursor and len(base) == len(TABLES) else None
        cursors: dict[str, str] = {}
        for stream, state in m.streams.items():
            if state.cursor and stream in base and _age_days(state.full_at) <= max_age_days:
                cursors[stream] = state.cursor
        kept = {s: base[s] for s in TABLES if s in base and (since or s in cursors)}
        return Resume(since, cursors, kept)

    def usable_cursor(
        self, fp: str, *, full_refresh: bool = False, max_age_days: float = FULL_REFRESH_DAYS
    ) -> str | None:
        """The combined cursor to pull from, or None when a full pull is due."""
        return self.resume(fp, full_refresh=full_refresh, max_age_days=max_age_days).since

    def load(self) -> Tables | None:
        frames = {t: self._read(t) for t in TABLES}
        contacts, orders, events = frames["contacts"], frames["orders"], frames["events"]
        if contacts is None or orders is None or events is None:
            return None
        return Tables(contacts, orders, events)

    def _read(self, table: str) -> pd.DataFrame | None:
        try:
            frame = pd.read_pickle(self.dir / f"{table}.pkl")
        except Exception:  # a cache from another pandas, half-written, deleted: pull in full
            return None
        return frame if isinstance(frame, pd.DataFrame) else None

    def save(self, tables: Tables, fp: str, *, whole: Iterable[str] = ()) -> None:
        """Keep a complete pull: every stream, with its own cursor and the combined one.
        ``whole`` names the streams this pull read whole (not merged into the old copy)."""
        if not tables.cursor and not tables.cursors:
            return
        cursors = {t: tables.cursors.get(t) for t in TABLES}
        self._write(
            frames_of(tables), cursors, fp, set(whole), combined=tables.cursor, keep_combined=False
        )

    def save_stream(
        self, stream: str, frame: pd.DataFrame, cursor: str | None, fp: str, *, whole: bool
    ) -> None:
        """Keep one stream as soon as it is complete; the others stay as they were kept."""
        self._write(
            {stream: frame},
            {stream: cursor},
            fp,
            {stream} if whole else set(),
            combined=None,
            keep_combined=True,
        )

    def _write(
        self,
        frames: dict[str, pd.DataFrame],
        cursors: dict[str, str | None],
        fp: str,
        whole: set[str],
        *,
        combined: str | None,
        keep_combined: bool,
    ) -> None:
        """Write next to the old copy, then swap directories: never a half-written snapshot.

        Streams not written are carried over (hard links: files are only ever replaced,
        never rewritten), and so is the combined cursor with ``keep_combined``, unless the
        settings changed, which voids them.
        """
        now = _now()
        old = self.manifest()
        if old is None or old.fingerprint != fp:
            old = None
        streams = dict(old.streams) if old else {}
        for stream, cursor in cursors.items():
            before = streams.get(stream)
            full_at = before.full_at if before and stream not in whole else now
            streams[stream] = StreamState(cursor, now, full_at)
        if keep_combined:
            combined = old.cursor if old else None
            saved_at, full_at = (old.saved_at, old.full_at) if old else (now, now)
        else:
            saved_at = now
            full_at = min(
                (streams[t].full_at for t in TABLES if t in streams), key=pd.Timestamp, default=now
            )
        manifest = Manifest(combined, fp, saved_at, streams, full_at)
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.dir.name}-", dir=self.dir.parent))
        try:
            for t in TABLES:
                if t in frames:
                    frames[t].to_pickle(tmp / f"{t}.pkl")
                elif old is not None and (self.dir / f"{t}.pkl").exists():
                    _carry(self.dir / f"{t}.pkl", tmp / f"{t}.pkl")
                else:
                    manifest.streams.pop(t, None)
            (tmp / "manifest.json").write_text(json.dumps(manifest.as_json()), encoding="utf-8")
            previous = self.dir.with_name(f".{self.dir.name}.old")
            if previous.exists():
                shutil.rmtree(previous)
            if self.dir.exists():
                os.replace(self.dir, previous)
            os.replace(tmp, self.dir)
            shutil.rmtree(previous, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _carry(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


def merge(base: Tables, delta: Tables) -> Tables:
    """The base with the delta applied: the newest row of each id wins."""
    old, new = frames_of(base), frames_of(delta)
    contacts, orders, events = (merge_stream(t, old[t], new[t]) for t in TABLES)
    return replace(
        delta,
        contacts=contacts,
        orders=orders,
        events=events,
        notes=list(delta.notes),
        incremental=False,
    )


def merge_stream(stream: str, base: pd.DataFrame, delta: pd.DataFrame) -> pd.DataFrame:
    """One stream's delta applied to its base: contacts and orders by id, events deduplicated."""
    if stream == "contacts":
        return _upsert(base, delta, "contact_id")
    if stream == "orders":
        return _upsert(base, delta, "order_id")
    events = _concat(base, delta)
    key = [c for c in ("contact_id", "campaign_id", "event", "at") if c in delta]
    return events.drop_duplicates(subset=key or None).reset_index(drop=True)


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
