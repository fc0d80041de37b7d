"""The log of `segmerge serve`: human lines on stderr, JSON lines in a file, one line a run.

The JSON lines are for machines (a log shipper, `jq`); the human lines carry
the workspace's time with its UTC offset, the time schedules are written in,
unambiguous across a DST change.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from segmerge import redact


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, message, and the record's `data` if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            entry.update(data)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _Human(logging.Formatter):
    """Workspace time with its UTC offset: the times schedules speak, unambiguous across DST."""

    def __init__(self, fmt: str, tz: tzinfo | None) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        t = datetime.fromtimestamp(record.created, self.tz or UTC)
        return t.isoformat(timespec="seconds")


@contextmanager
def configured_logging(log_file: Path | None, tz: tzinfo | None = None) -> Iterator[None]:
    """Human lines on stderr, JSON lines in `log_file`; APScheduler's own chatter at WARNING."""
    handlers: list[logging.Handler] = []
    stderr = logging.StreamHandler()
    stderr.setFormatter(_Human("%(asctime)s %(levelname)s %(message)s", tz))
    handlers.append(stderr)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(JsonLines())
        handlers.append(fh)
    redact.install(handlers)  # a credential echoed in an error never reaches the log
    root = logging.getLogger("segmerge")
    aps = logging.getLogger("apscheduler")
    old = (root.level, root.propagate, aps.level)
    root.setLevel(logging.INFO)
    root.propagate = False
    aps.setLevel(logging.WARNING)
    for h in handlers:
        root.addHandler(h)
        aps.addHandler(h)
    try:
        yield
    finally:
        for h in handlers:
            root.removeHandler(h)
            aps.removeHandler(h)
            h.close()
        root.setLevel(old[0])
        root.propagate = old[1]
        aps.setLevel(old[2])


def summary_line(s: dict[str, Any], failed: int, seconds: float) -> str:
    """A run summary (`RunSummary.as_dict()`) on one line: what a person reading the log wants."""
    head = f"run {s['run_id']} {'partial' if failed else 'done'}"
    parts = [f"{head}{' (resumed)' if s.get('resumed') else ''} in {seconds:.1f} s:"]
    parts.append(f"pulled {s.get('pulled', {}).get('contacts', 0)} contacts;")
    if s.get("segments"):
        parts.append("segments " + " ".join(f"{k}={v}" for k, v in s["segments"].items()) + ";")
    for kind, statuses in s.get("outcome", {}).items():
        parts.append(f"{kind} " + " ".join(f"{k}={v}" for k, v in sorted(statuses.items())) + ";")
    deferred = s.get("deferred")
    if deferred:
        n = deferred if isinstance(deferred, int) else sum(dict(deferred).values())
        parts.append(f"deferred {n};")
    parts.append(
        f"not mailed {sum(s.get('not_mailed', {}).values())}; "
        f"render errors {len(s.get('render_errors', []))}; failed {failed}"
    )
    return " ".join(parts)


def skip_line(
    run_id: str, what: str, busy: tuple[str, float], limit: float, data: dict[str, Any]
) -> tuple[Any, ...]:
    """The log line (format and arguments) of a fire whose campaign's last run still goes on.

    Also adds to `data`, for the JSON line, what is running and for how long.
    """
    other, since = busy
    took = time.monotonic() - since
    data |= {"status": "skipped", "running": other, "running_for_s": round(took, 3)}
    again = "; tried again in a minute" if data.get("trigger") == "rerun" else ""
    return (
        "run %s not started (%s): %s is still running (for %s; its max run time is %s)%s",
        run_id,
        what,
        other,
        duration(took),
        duration(limit),
        again,
    )


def duration(seconds: float) -> str:
    """A duration as a person reads it in a log: 45 s, 12 min, 6 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


def local_time(t: datetime, tz: tzinfo) -> str:
    """An instant in the workspace's time zone, with its abbreviation (CET, CEST)."""
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def one_line(text: str) -> str:
    return " ".join(text.split())
