"""Run ids and idempotency keys: built and read here, and nowhere else.

A key is the ledger's primary key for one action, so its text *is* the
promise that an action happens once: a run started again rebuilds the same
keys and finds what it already did. Written by f-strings in five modules, one
of them could drift (a space, another separator) and a resumed run would send
everything again. So every key and run id is made by a builder below, and
read back by :func:`parse_key` / :func:`parse_run_id`; the texts are exactly the
ones earlier versions wrote, so an old ledger resumes (tests/test_keys.py).

It lives in the ledger package, not in ``segmerge.run``: the ledger itself builds
a send key (:meth:`~segmerge.ledger.tracking.TrackingMixin.delivered_at`) and the
ledger is a lower layer than the run, which may use it but not the other way.

The forms::

    <campaign>@<YYYY-MM-DD>                  a run: a campaign and its reference day
    <campaign>@test-<YYYYmmddTHHMMSS>         a `test-send` (UTC time)
    <run>|<contact>|send                      a letter we send
    <run>|<contact>|member                    a contact's group in a platform's experiment
    <run>|<letter>|test                       a test letter (``fonceurs.B``)
    <run>|<contact>|<kind>:<name>             tag, untag, add_to_list, remove_from_list
    <run>|-|create_campaign:<segment>[.<v>]   a draft campaign (no contact)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

SEP = "|"
NO_CONTACT = "-"
#: kinds whose key ends with the kind alone
PLAIN_KINDS = frozenset({"send", "member", "test"})
#: kinds whose key ends with ``kind:target`` (a tag or list name, a draft's group)
TARGET_KINDS = frozenset({"tag", "untag", "add_to_list", "remove_from_list", "create_campaign"})
_TARGETED = re.compile(r"\|(" + "|".join(sorted(TARGET_KINDS)) + r"):")
_TEST_PREFIX = "test-"


# run ids ------------------------------------------------------------------------------------


def run_id(campaign: str, day: date | str) -> str:
    """The run of a campaign for a reference day: the same day again is the same run."""
    shown = day.isoformat() if isinstance(day, date) else day
    return f"{campaign}@{shown}"


def run_id_at(campaign: str, as_of: datetime, tz: tzinfo) -> str:
    """The run of the day ``as_of`` (an aware instant) falls on in the workspace's zone."""
    return run_id(campaign, as_of.astimezone(tz).strftime("%Y-%m-%d"))


def test_run_id(campaign: str, at: datetime) -> str:
    """A `test-send`'s own run, never the campaign's day: tests are not sends."""
    return f"{campaign}@{_TEST_PREFIX}{at:%Y%m%dT%H%M%S}"


def rerun_job(campaign: str, day: str) -> str:
    """The scheduler's job that starts a run again for its deferred messages."""
    return f"{run_id(campaign, day)} rerun"


@dataclass(frozen=True)
class RunId:
    campaign: str
    #: the reference day (``2026-12-01``), or ``test-…`` for a test-send
    day: str

    @property
    def is_test(self) -> bool:
        return self.day.startswith(_TEST_PREFIX)

    def __str__(self) -> str:
        return run_id(self.campaign, self.day)


def parse_run_id(text: str) -> RunId:
    """The campaign and day of a run id; ValueError for a text that is not one."""
    campaign, at, day = text.rpartition("@")
    if not at or not campaign or not day or SEP in text:
        raise ValueError(f"not a run id: {text!r}")
    return RunId(campaign, day)


# action keys --------------------------------------------------------------------------------


def send_key(run: str, contact_id: str) -> str:
    return SEP.join((run, contact_id, "send"))


def member_key(run: str, contact_id: str) -> str:
    return SEP.join((run, contact_id, "member"))


def test_key(run: str, letter: str) -> str:
    return SEP.join((run, letter, "test"))


def membership_key(run: str, contact_id: str, kind: str, name: str) -> str:
    """A tag or list change: ``kind`` is tag, untag, add_to_list or remove_from_list."""
    if kind not in TARGET_KINDS or kind == "create_campaign":
        raise ValueError(f"not a membership change: {kind!r}")
    return SEP.join((run, contact_id, f"{kind}:{name}"))


def draft_key(run: str, segment: str, variant: str | None = None) -> str:
    group = segment + (f".{variant}" if variant else "")
    return SEP.join((run, NO_CONTACT, f"create_campaign:{group}"))


@dataclass(frozen=True)
class ActionKey:
    run_id: str
    #: the contact id; the letter for a ``test``; ``-`` for a draft
    subject: str
    kind: str
    #: the tag or list name, or the draft's ``segment[.variant]``; None for plain kinds
    target: str | None = None

    @property
    def contact_id(self) -> str | None:
        if self.kind in ("test", "create_campaign"):
            return None
        return self.subject

    @property
    def group(self) -> tuple[str, str | None]:
        """A draft's (segment, variant)."""
        segment, _, variant = (self.target or "").partition(".")
        return segment, variant or None

    def __str__(self) -> str:
        action = f"{self.kind}:{self.target}" if self.target is not None else self.kind
        return SEP.join((self.run_id, self.subject, action))


def parse_key(key: str) -> ActionKey:
    """Read a key back; ValueError for a text no builder above makes.

    The run id never holds ``|``; a contact id might, so the action is found
    from the end (a plain kind) or by its ``|kind:`` mark (a tag name is free text).
    """
    run, sep, rest = key.partition(SEP)
    if not run or not sep:
        raise ValueError(f"not an action key: {key!r}")
    m = _TARGETED.search(rest)
    if m and m.start():
        return ActionKey(run, rest[: m.start()], m.group(1), rest[m.end() :])
    subject, sep, kind = rest.rpartition(SEP)
    if not sep or not subject or kind not in PLAIN_KINDS:
        raise ValueError(f"not an action key: {key!r}")
    return ActionKey(run, subject, kind)
