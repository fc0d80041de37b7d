"""Schedules: cron expressions, in the workspace time zone, and when they fire next.

Where schedules live. A campaign's `schedule =` in segmerge.toml is the main
source; `segmerge schedule add` adds more, kept in a small SQLite table of our
own, `.segmerge/schedules.sqlite`. `serve` reads both at start into APScheduler's
MemoryJobStore. We do not use APScheduler's SQLAlchemyJobStore because:

- segmerge.toml stays the truth: a persistent job store would hold a second,
  pickled copy of each toml schedule that must be reconciled with the file at
  every start anyway (edited, removed, renamed campaigns);
- a pickled job names a callable and a trigger class: upgrading segmerge could
  leave a store that no longer unpickles, a failure mode a plain table has not;
- it would add SQLAlchemy (a large dependency, several MB resident) to a daemon
  that must idle under 100 MB.

What a persistent job store gives, running a fire missed while the daemon was
down (within the misfire grace time), is kept: the table `covered` records, per
campaign, up to which instant fires were handled, and `serve` catches up a
missed one on start (see :func:`missed_fire`).

Cron semantics, where APScheduler 3.x differs from crontab(5), follow crontab:

- day-of-week numbers are crontab's (0 or 7 = Sunday, 1 = Monday); APScheduler
  3.x counts 0 = Monday, so numbers are translated to names before parsing;
- when both day-of-month and day-of-week are restricted, either one matching
  fires (crontab's rule), not both;
- daylight saving time, as Vixie cron does: a wall time that does not exist
  (02:30 on the last Sunday of March in Europe/Paris) fires once, at the same
  instant as if the clock had not moved yet (03:30 CEST), which is what
  APScheduler does; a wall time that happens twice (02:30 on the last Sunday of
  October) fires once, the first time, where APScheduler alone would fire twice.

A six-field expression (seconds first, `*/5 * * * * *`) is accepted too, for
tests and demos.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from segmerge.errors import ConfigError, LedgerError
from segmerge.i18n import _
from segmerge.workspace.config import Workspace
from segmerge.workspace.positions import locate_key

STORE_FILE = "schedules.sqlite"
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_DAY_NUM = {d: i for i, d in enumerate(_DAYS)}


class CronSchedule(BaseTrigger):
    """One cron expression as an APScheduler trigger, with crontab's rules (see module doc)."""

    __slots__ = ("expr", "timezone", "triggers")

    def __init__(self, expr: str, timezone: tzinfo) -> None:
        self.expr = " ".join(expr.split())
        self.timezone = timezone
        self.triggers = _cron_triggers(self.expr, timezone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        best: datetime | None = None
        for trigger in self.triggers:
            prev, at = previous_fire_time, now
            while True:
                t = trigger.get_next_fire_time(prev, at)
                if t is None or not _repeated_wall_time(t, self.timezone):
                    break
                prev, at = t, t  # the second 02:30 of an autumn night: skip it
            if t is not None and (best is None or t < best):
                best = t
        return best

    def __str__(self) -> str:
        return f"cron[{self.expr}]"

    def __repr__(self) -> str:
        return f"<CronSchedule {self.expr!r} {self.timezone}>"


def _repeated_wall_time(t: datetime, tz: tzinfo) -> bool:
    local = t.astimezone(tz)
    return bool(local.fold) and local.replace(fold=0).utcoffset() != local.utcoffset()


def _cron_triggers(expr: str, tz: tzinfo) -> list[CronTrigger]:
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    second, minute, hour, day, month, dow = fields
    dow = _translate_weekdays(dow)
    kw = {"second": second, "minute": minute, "hour": hour, "month": month, "timezone": tz}
    if day != "*" and dow != "*":  # crontab: either the day of the month or the weekday
        return [
            CronTrigger(day=day, day_of_week="*", **kw),
            CronTrigger(day="*", day_of_week=dow, **kw),
        ]
    return [CronTrigger(day=day, day_of_week=dow, **kw)]


def _translate_weekdays(field: str) -> str:
    """crontab weekdays (0/7 = Sunday, names, ranges, steps) -> APScheduler day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        m = re.fullmatch(r"(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?", part)
        if not m:
            raise ValueError(f"weekday {part!r} is not a weekday, a range or a step")
        start, end, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if step < 1:
            raise ValueError(f"weekday step in {part!r} must be at least 1")
        if start == "*":
            lo, hi = 0, 6
        else:
            lo = _day(start, is_end=False)
            hi = _day(end, is_end=True) if end else (6 if m.group(3) else lo)
        if hi < lo:
            raise ValueError(f"weekday range {part!r} goes backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_DAYS[d] for d in sorted(days))


def _day(token: str, *, is_end: bool) -> int:
    if token.isdigit():
        n = int(token)
        if n > 7:
            raise ValueError(f"weekday {n} is out of range (0-7, 0 and 7 are Sunday)")
        return n
    name = token[:3]
    if name not in _DAY_NUM or token not in (name, _full_day(name)):
        raise ValueError(f"unknown weekday {token!r} (expected mon, tue, ... or 0-7)")
    n = _DAY_NUM[name]
    return 7 if (is_end and n == 0) else n


def _full_day(name: str) -> str:
    return {
        "sun": "sunday",
        "mon": "monday",
        "tue": "tuesday",
        "wed": "wednesday",
        "thu": "thursday",
        "fri": "friday",
        "sat": "saturday",
    }[name]


def parse_cron(
    expr: str,
    tz: tzinfo,
    *,
    file: str | Path | None = None,
    line: int | None = None,
    field: str | None = None,
) -> CronSchedule:
    """A cron expression, or a ConfigError naming it and where it came from (exit 2)."""
    try:
        return CronSchedule(expr, tz)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            _("bad cron expression {expr!r}: {exc}").format(expr=expr, exc=exc),
            file=file,
            line=line,
            field=field,
            hint=_('five fields: minute hour day month weekday, e.g. "0 9 * * MON" (Mondays 9:00)'),
        ) from None


@dataclass(frozen=True)
class Schedule:
    campaign: str
    cron: str
    origin: str  # "toml" or "added"
    trigger: CronSchedule
    known: bool = True  # False: added for a campaign no longer in segmerge.toml


class ScheduleStore:
    """`.segmerge/schedules.sqlite`: schedules added by command, and fires already handled."""

    def __init__(self, ws: Workspace, *, create: bool = True) -> None:
        self.path = ws.state_dir / STORE_FILE
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.executescript(
                "CREATE TABLE IF NOT EXISTS schedules (campaign TEXT NOT NULL, cron TEXT NOT NULL,"
                " added_at TEXT NOT NULL, PRIMARY KEY (campaign, cron));"
                "CREATE TABLE IF NOT EXISTS covered (campaign TEXT PRIMARY KEY,"
                " until TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS reruns (campaign TEXT NOT NULL, as_of TEXT NOT NULL,"
                " at TEXT NOT NULL, PRIMARY KEY (campaign, as_of));"
            )
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                _("cannot open the schedule store: {exc}").format(exc=exc), file=self.path
            ) from None

    def close(self) -> None:
        self.db.close()

    def added(self) -> list[tuple[str, str]]:
        return [
            (r[0], r[1])
            for r in self.db.execute(
                "SELECT campaign, cron FROM schedules ORDER BY campaign, added_at"
            )
        ]

    def add(self, campaign: str, cron: str) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO schedules(campaign, cron, added_at) VALUES (?,?,?)",
            (campaign, cron, datetime.now(UTC).isoformat()),
        )
        return cur.rowcount > 0

    def remove(self, campaign: str, cron: str | None = None) -> int:
        if cron is None:
            cur = self.db.execute("DELETE FROM schedules WHERE campaign=?", (campaign,))
        else:
            cur = self.db.execute(
                "DELETE FROM schedules WHERE campaign=? AND cron=?", (campaign, cron)
            )
        return cur.rowcount

    def covered_until(self, campaign: str) -> datetime | None:
        row = self.db.execute("SELECT until FROM covered WHERE campaign=?", (campaign,)).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def cover(self, campaign: str, until: datetime, *, only_if_absent: bool = False) -> None:
        """Fires up to `until` are handled; it only ever moves forward."""
        if only_if_absent:
            self.db.execute(
                "INSERT OR IGNORE INTO covered(campaign, until) VALUES (?,?)",
                (campaign, until.astimezone(UTC).isoformat()),
            )
            return
        old = self.covered_until(campaign)
        if old is None or until > old:
            self.db.execute(
                "INSERT INTO covered(campaign, until) VALUES (?,?) "
                "ON CONFLICT(campaign) DO UPDATE SET until=excluded.until",
                (campaign, until.astimezone(UTC).isoformat()),
            )

    # runs to start again: messages deferred by contact pressure go when it allows them

    def reruns(self) -> list[tuple[str, str, datetime]]:
        rows = self.db.execute("SELECT campaign, as_of, at FROM reruns ORDER BY at").fetchall()
        return [(r[0], r[1], datetime.fromisoformat(r[2])) for r in rows]

    def set_rerun(self, campaign: str, as_of: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO reruns(campaign, as_of, at) VALUES (?,?,?) "
            "ON CONFLICT(campaign, as_of) DO UPDATE SET at=excluded.at",
            (campaign, as_of, at.astimezone(UTC).isoformat()),
        )

    def drop_rerun(self, campaign: str, as_of: str) -> None:
        self.db.execute("DELETE FROM reruns WHERE campaign=? AND as_of=?", (campaign, as_of))


def normalize_cron(expr: str) -> str:
    return " ".join(expr.split())


def load_schedules(ws: Workspace, store: ScheduleStore | None = None) -> list[Schedule]:
    """Every schedule of the workspace: from segmerge.toml first, then the added ones."""
    text = ws.config_file.read_text(encoding="utf-8") if ws.config_file.is_file() else ""
    out: list[Schedule] = []
    for name, camp in ws.config.campaigns.items():
        if camp.schedule:
            trig = parse_cron(
                camp.schedule,
                ws.tz,
                file=ws.config_file,
                line=locate_key(text, ["campaigns", name, "schedule"]),
                field=f"campaigns.{name}.schedule",
            )
            out.append(Schedule(name, trig.expr, "toml", trig))
    own = store
    if own is None and (ws.state_dir / STORE_FILE).exists():
        own = ScheduleStore(ws, create=False)
    if own is not None:
        try:
            for campaign, cron in own.added():
                trig = parse_cron(cron, ws.tz, file=own.path, field=f"schedule of {campaign}")
                out.append(
                    Schedule(
                        campaign, trig.expr, "added", trig, known=campaign in ws.config.campaigns
                    )
                )
        finally:
            if store is None:
                own.close()
    return out


def next_fires(trigger: BaseTrigger, n: int, now: datetime | None = None) -> list[datetime]:
    """The next `n` fire times after `now`, as UTC instants."""
    at = now or datetime.now(UTC)
    prev: datetime | None = None
    out: list[datetime] = []
    while len(out) < n:
        t = trigger.get_next_fire_time(prev, at)
        if t is None:
            break
        out.append(t.astimezone(UTC))
        prev, at = t, t
    return out


def previous_fire(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The last fire time at or before `now` (within 400 days), by widening the window."""
    window = timedelta(seconds=1)
    while window <= timedelta(days=400):
        t = trigger.get_next_fire_time(None, now - window)
        if t is not None and t <= now:
            last = t
            while True:
                nxt = trigger.get_next_fire_time(last, last)
                if nxt is None or nxt > now:
                    return last.astimezone(UTC)
                last = nxt
        window *= 4
    return None


def missed_fire(
    trigger: BaseTrigger, covered: datetime | None, now: datetime, grace_s: float
) -> datetime | None:
    """A fire after `covered` that has not run yet and is still within the grace time."""
    if covered is None:
        return None
    prev = previous_fire(trigger, now)
    if prev is None or prev <= covered or (now - prev).total_seconds() > grace_s:
        return None
    return prev


def by_campaign(schedules: Iterable[Schedule]) -> dict[str, list[Schedule]]:
    out: dict[str, list[Schedule]] = {}
    for s in schedules:
        out.setdefault(s.campaign, []).append(s)
    return out


class AnyOf(BaseTrigger):
    """The earliest of several schedules (one campaign, one job: one instance at a time)."""

    __slots__ = ("triggers",)

    def __init__(self, triggers: Sequence[BaseTrigger]) -> None:
        self.triggers = list(triggers)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        times = [t.get_next_fire_time(previous_fire_time, now) for t in self.triggers]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    def __str__(self) -> str:
        return " | ".join(str(t) for t in self.triggers)
