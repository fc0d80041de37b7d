"""Contact pressure: one policy for every campaign of a workspace.

Several campaigns running on their own schedules can pile up in one inbox;
a letter at 23:00 on a Sunday reads as spam. The policy caps how many
messages one address gets in a rolling window (all campaigns together,
counted from the ledger) and keeps quiet hours and days in the workspace
time zone. A message that would break it is *deferred*: recorded with the
time it becomes allowed, resent by the same run started again after that
time (`segmerge serve` does it on its own), never silently dropped.

Addresses, not contact ids, are counted: two sources may know the same
person under two ids, and it is the inbox that is under pressure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from segmerge.i18n import _, ngettext, number
from segmerge.ledger.store import PlannedAction
from segmerge.ports.addresses import normalise_column
from segmerge.workspace.pressure import _SPAN, DAYS, PressureConfig  # noqa: F401


@dataclass
class Policy:
    config: PressureConfig
    tz: ZoneInfo

    def quiet_until(self, now: datetime) -> datetime | None:
        """When sending may start again, if ``now`` is quiet; None if it may send now."""
        local = now.astimezone(self.tz)
        t = local
        for _step in range(24 * 8):  # at most a week of quiet days and one span a day
            nxt = self._quiet_end(t)
            if nxt is None:
                return None if t == local else t
            t = nxt
        return t

    def _quiet_end(self, local: datetime) -> datetime | None:
        days = {DAYS[d.strip().lower()] for d in self.config.quiet_days}
        if local.weekday() in days:
            midnight = datetime.combine(local.date() + timedelta(days=1), time(0), self.tz)
            return midnight
        span = self.config.quiet_hours
        if not span:
            return None
        m = _SPAN.match(span)
        assert m is not None
        start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
        now_t = local.time()
        if start <= end:
            inside = start <= now_t < end
            end_day = local.date()
        else:  # across midnight: 21:00-08:00
            inside = now_t >= start or now_t < end
            end_day = local.date() + timedelta(days=1) if now_t >= start else local.date()
        if not inside:
            return None
        return datetime.combine(end_day, end, self.tz)

    def capped(self, addresses: pd.Series, sent: pd.DataFrame, now: datetime) -> pd.Series:
        """Per address, when it may be mailed again (NaT: now), from past sends.

        ``sent`` has ``address`` (normalised: :mod:`segmerge.ports.addresses`) and
        ``at`` (UTC) of every message already sent. An address that got ``max_messages`` in the last
        ``per_days`` days is next allowed when the oldest of those leaves the
        window.
        """
        out = pd.Series(pd.NaT, index=addresses.index, dtype="datetime64[ns, UTC]")
        cap = self.config.max_messages
        if not cap or sent.empty:
            return out
        window = pd.Timedelta(days=self.config.per_days)
        now_ts = pd.Timestamp(now).tz_convert("UTC")
        recent = sent[sent["at"] > now_ts - window]
        if recent.empty:
            return out
        # the cap-th most recent send of each address: once it leaves the window, one more
        ranked = recent.sort_values("at", ascending=False)
        ranked = ranked.assign(n=ranked.groupby("address").cumcount())
        pivot = ranked[ranked["n"] == cap - 1].set_index("address")["at"] + window
        if pivot.empty:  # nobody at the cap yet (mapping an empty Series gives floats)
            return out
        keys, _ = normalise_column(addresses)  # as the ledger's sends are (sent_since)
        # none of these at the cap: the mapping gives floats, which astype would refuse
        when = pd.to_datetime(keys.map(pivot).to_numpy(), utc=True)
        return pd.Series(when, index=addresses.index).astype("datetime64[ns, UTC]")

    def describe(self) -> str:
        return self.config.describe()

    def shown(self) -> str:
        return self.config.shown()


#: the fixed keys of a run summary's ``deferred`` counts (the policy is told apart)
QUIET, CAP = "quiet_hours", "frequency_cap"


@dataclass
class HeldBack:
    """What contact pressure decided for a run's letters, for the pipeline to record."""

    kept: list[int] | np.ndarray  # the rows that may be mailed now
    deferred: list[PlannedAction] = field(default_factory=list)  # the others, with their time
    reason: str | None = None  # QUIET or CAP
    until: str | None = None  # ISO UTC: when the first held-back letter may go
    policy: str = ""  # the policy, in the command's language

    def note(self, tz: tzinfo) -> str | None:
        """The run's note saying how many wait, why and until when (None: nobody waits)."""
        if not self.deferred or self.until is None:
            return None
        n = len(self.deferred)
        shown = (
            _("quiet hours or days")
            if self.reason == QUIET
            else _("frequency cap ({policy})").format(policy=self.policy)
        )
        return ngettext(
            "{n} message held back by contact pressure ({reason}); it goes when this run is "
            "started again after {when} (`segmerge serve` does it by itself)",
            "{n} messages held back by contact pressure ({reason}); they go when this run is "
            "started again after {when} (`segmerge serve` does it by itself)",
            n,
        ).format(
            n=number(n),
            reason=shown,
            when=f"{pd.Timestamp(self.until).tz_convert(tz):%Y-%m-%d %H:%M}",
        )


def hold_back(
    todo: list[int] | np.ndarray,
    keys: Mapping[int, str],
    ids: Sequence[str],
    pressure: tuple[Policy, datetime, pd.DataFrame],
    frame: pd.DataFrame,
    primary: pd.Series,
    tz: ZoneInfo,
    dest: str,
) -> HeldBack:
    """Hold back what the workspace's contact pressure policy forbids now; keep the rest.

    ``todo`` (frame rows) may be an array: a million rows as a list of Python ints were
    some 36 MiB more. The rows kept come back as ``todo`` came (list or array); only the
    held-back ones are made into ledger rows, one by one."""
    policy, now, sent = pressure
    if not policy.config.active or not len(todo):
        return HeldBack(todo)
    rows = np.asarray(todo, dtype=np.int64)
    emails = frame["email"].iloc[rows]
    quiet = policy.quiet_until(now)
    if quiet is not None:
        until = pd.Series(pd.Timestamp(quiet).tz_convert("UTC"), index=emails.index)
        reason, why = QUIET, "quiet hours or days"  # the ledger's details stay English
    else:
        until = policy.capped(emails, sent, now)
        reason, why = CAP, f"frequency cap ({policy.describe()})"
    held = until.notna().to_numpy()
    if not held.any():
        return HeldBack(todo)
    kept = rows[~held]
    out = HeldBack(kept if isinstance(todo, np.ndarray) else kept.tolist(), reason=reason)
    out.policy = policy.shown()
    waits = until[held]
    for i, when in zip(rows[held].tolist(), waits.tolist(), strict=True):
        local = when.tz_convert(tz).strftime("%Y-%m-%d %H:%M")
        out.deferred.append(
            PlannedAction(
                keys[i],
                ids[i],
                "send",
                dest,
                str(primary.iat[i]),
                str(frame["email"].iat[i]),
                "deferred",
                f"{why}: deferred to {local}",
                when.isoformat(),
            )
        )
    out.until = min(waits).isoformat()
    return out


def earliest(*instants: str | None) -> str | None:
    """The earliest of ISO instants, compared as times (not as text), None if none."""
    given = [t for t in instants if t]
    return min(given, key=pd.Timestamp) if given else None
