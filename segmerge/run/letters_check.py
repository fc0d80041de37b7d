"""`validate` fills every letter for every contact who would get it, before `run` does.

Rendering one sample contact per segment proved the template compiles and
that *one* contact fills it; the contact without a first name, the order
with no date, the amount the money filter refuses were found by `run` on
Monday at 9:00 and skipped there. So `validate` renders, for every contact
in a segment, every letter of that segment (each A/B variant: assignment
changes as contacts come and go) with the render pool `run` uses (every
core, contacts passed in large chunks), and fails with the count and three
examples when any letter cannot be filled. On a platform that sends its own
drafts (merge tags, filled by the platform) nothing is filled per contact,
so one sample per segment stays the check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segmerge.errors import TemplateError
from segmerge.i18n import _, ngettext, number

#: examples a failure names
EXAMPLES = 3


@dataclass
class LetterCheck:
    """What filling every letter found."""

    contacts: int = 0  # contacts in a segment
    letters: int = 0  # letters filled (contacts times the letters of their segment)
    failed: int = 0
    examples: list[str] = field(default_factory=list)  # "00042 (fonceurs): why"
    seconds: float = 0.0

    def summary(self) -> str:
        return ngettext(
            "{n} letter filled for {contacts} contacts in {seconds} s",
            "{n} letters filled for {contacts} contacts in {seconds} s",
            self.letters,
        ).format(
            n=number(self.letters), contacts=number(self.contacts), seconds=number(self.seconds, 1)
        )


@dataclass(frozen=True)
class ToFill:
    """Every letter `validate` fills: (letter, contact) items, and whose each one is."""

    items: list[tuple[str, Any]]
    who: list[int]  # per item, its contact's place in ``ids``
    ids: Any  # the contacts' ids, as text (a numpy array)


def letters_to_fill(camp: Any) -> ToFill:
    """Each segment's letters (every A/B variant) for each contact the segment holds."""
    seg = camp.seg
    primary = seg.assignment.primary
    rows = np.flatnonzero(primary.notna().to_numpy(dtype=bool))
    records = seg.frame.iloc[rows].to_dict("records")
    names = primary.iloc[rows].astype(str).to_numpy()
    ids = seg.frame["contact_id"].iloc[rows].astype(str).to_numpy()
    items: list[tuple[str, Any]] = []
    who: list[int] = []
    for name in dict.fromkeys(names.tolist()):
        members = np.flatnonzero(names == name)
        for letter in camp.templates.letter_keys(name):
            items.extend((letter, records[i]) for i in members)
            who.extend(members.tolist())
    return ToFill(items, who, ids)


def fill_every_letter(camp: Any, key: bytes | None) -> LetterCheck:
    """Render each segment's letters for each of its contacts; count what cannot be filled."""
    started = time.perf_counter()
    todo = letters_to_fill(camp)
    check = LetterCheck(contacts=len(todo.ids))
    if not len(todo.ids):
        return check
    letters = camp.templates.render_many(todo.items, camp.render_context("-", key))
    check.letters = len(letters)
    for (letter, _contact), i, result in zip(todo.items, todo.who, letters, strict=True):
        if isinstance(result, TemplateError):
            check.failed += 1
            if len(check.examples) < EXAMPLES:
                check.examples.append(f"{todo.ids[i]} ({letter}): {_one_line(result)}")
    check.seconds = time.perf_counter() - started
    return check


def _one_line(exc: TemplateError) -> str:
    """Where and why, without the per-error hint: the failure gives one hint for all."""
    where = exc.location()
    what = (
        f"{exc.field}: {exc.message}" if exc.field and exc.field not in exc.message else exc.message
    )
    return f"{where}: {what}" if where else what


def refuse_unfilled(campaign: str, check: LetterCheck) -> None:
    """A TemplateError (exit 2) with the count and the first examples, when any failed."""
    if not check.failed:
        return
    head = ngettext(
        "campaign {campaign}: {n} of {total} letters cannot be filled",
        "campaign {campaign}: {n} of {total} letters cannot be filled",
        check.failed,
    ).format(campaign=campaign, n=number(check.failed), total=number(check.letters))
    raise TemplateError(
        head + "\n  " + "\n  ".join(check.examples),
        hint=_(
            "`run` would skip these contacts; fill the missing values in the data, or "
            "give the template a fallback such as {example}"
        ).format(example="{{ contact.first_name | default('') }}"),
    )
