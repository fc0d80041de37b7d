"""One pull's progress, kept stream by stream as the source completes each.

A pull of a large platform account takes minutes to hours (Brevo's hourly budget,
HubSpot's events); what fails after it (the events stream, a push) must not throw
away what was read. The source says when a stream is complete
(``ConnectorContext.stream_done``): that stream is merged into the snapshot's base
and kept on disk at once, with its cursor. When the pull returns, the whole base
is put together from the same rule, which streams were resumed from a cursor
(their rows are what changed) and which were read whole (their rows replace the
old copy).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from segmerge.errors import ConnectorError
from segmerge.i18n import _
from segmerge.ports.schema import STRING, Tables, conform
from segmerge.segment.cache import TABLES, Resume, Snapshot, frames_of, merge_stream


class StreamProgress:
    """The engine's ``stream_done`` for one pull of one source, and the base it builds."""

    def __init__(self, source: str, snap: Snapshot, fp: str, resume: Resume, *, keep: bool) -> None:
        self.source = source
        self.snap = snap
        self.fp = fp
        self.resume = resume
        self.keep = keep  # False for commands that must write nothing (a dry run)
        self.reported: set[str] = set()
        #: streams this pull read whole rather than merged into the kept copy
        self.read_whole: set[str] = set(TABLES)

    def done(self, stream: str, rows: Any, cursor: str | None) -> None:
        """A stream is completely pulled: merge it into its base and keep it now."""
        if stream not in TABLES:
            raise ConnectorError(
                _("{source}: the source reported an unknown stream {stream!r} as pulled").format(
                    source=self.source, stream=stream
                ),
                field=self.source,
                hint=_("a source's streams are {value}").format(value=", ".join(TABLES)),
            )
        self.reported.add(stream)
        if not self.keep:
            return
        frame = conform_stream(stream, rows, self.source)
        base = self.resume.base.get(stream)
        resumed = base is not None and self.resume.start(stream) is not None
        if base is not None and resumed:
            frame = merge_stream(stream, base, frame)
        self.snap.save_stream(stream, frame, cursor, self.fp, whole=not resumed)

    def whole(self, pulled: Tables) -> Tables:
        """The whole base after this pull: each resumed stream merged into its old copy.

        A source that tracks streams apart (it reported one, or gave ``Tables.cursors``)
        resumed each stream that had a cursor and a copy; its contacts are only what
        changed when it says so (``incremental``: it may have read them whole anyway).
        A source with one cursor resumed everything or nothing, as it says.
        """
        per_stream = bool(self.reported or pulled.cursors)
        frames = frames_of(pulled)
        out: dict[str, pd.DataFrame] = {}
        for stream in TABLES:
            base = self.resume.base.get(stream)
            if per_stream:
                resumed = stream != "contacts" or pulled.incremental
            else:
                resumed = self.resume.since is not None and pulled.incremental
            if base is not None and resumed and self.resume.start(stream) is not None:
                out[stream] = merge_stream(stream, base, frames[stream])
                self.read_whole.discard(stream)
            else:
                out[stream] = frames[stream]
        # everything else the source said (notes, warnings, origins...) is kept as said
        whole = replace(
            pulled,
            contacts=out["contacts"],
            orders=out["orders"],
            events=out["events"],
            notes=list(pulled.notes),
        )
        start = self.resume.start("contacts")
        if start is not None and pulled.incremental and "contacts" in self.resume.base:
            whole.notes.append(
                f"{self.source}: incremental pull since {start}: "
                f"{len(pulled.contacts)} contact(s) changed"
            )
        return whole


def conform_stream(stream: str, rows: Any, source: str) -> pd.DataFrame:
    """One stream in the canonical shape, as :func:`conform` gives it with the others."""
    if not isinstance(rows, pd.DataFrame):
        raise ConnectorError(
            _("{source}: the {stream} reported as pulled are a {kind}, not a table").format(
                source=source, stream=stream, kind=type(rows).__name__
            ),
            field=source,
        )
    if stream == "contacts":
        return conform(Tables(rows), source=source).contacts
    nobody = pd.DataFrame({"contact_id": pd.Series(dtype=STRING)})
    if stream == "orders":
        return conform(Tables(nobody, orders=rows), source=source).orders
    return conform(Tables(nobody, events=rows), source=source).events
