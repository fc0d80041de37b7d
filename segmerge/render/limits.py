"""A letter that never ends or eats memory is stopped, and only that contact's letter.

Templates are user text and contact data fills them, so a letter can be made
to loop for ever (``{% for %}`` inside ``{% for %}``, a macro calling itself
twice), or to grow without end (``'x' * 10**9``, a buffer doubled by ``~``,
``| center(10**9)``). Jinja's sandbox only caps ``range()``. Here each letter
gets a budget (:func:`start`) that the template cannot get around:

- time: a deadline on the rendering thread's own CPU time, checked at every
  call, every loop start and every few thousand items of a long loop (Python
  code cannot loop in a template without one of them). CPU, not wall time: on
  a loaded machine a letter waiting for a core has cost nothing, and the
  verdict on a template must not depend on what else the machine runs;
- size: every joined buffer (the letter, a macro, a ``{% set %}`` block, a
  ``~``) and every ``*``, ``+``, ``%``, ``**``, string method and sizing
  filter is checked *before* it allocates; what the ``{{ ... }}`` inside loops
  output is counted against the letter's size (outside loops a letter has as
  many outputs as its text has ``{{``, each already bounded);
- loop items: one letter may walk at most :data:`MAX_ITEMS` items in all,
  so nested loops fail at once rather than when the clock runs out.

:mod:`segmerge.render.sandbox` charges it from Jinja's hooks. The budget
lives in a thread-local: the preview server renders in threads,
the pool in processes, and each letter starts its own. A broken limit raises
:class:`RenderLimit`, which :func:`segmerge.render.errors.render_failure` turns
into that contact's TemplateError: the contact is skipped with the reason,
the run goes on. The text part derived from the HTML runs under the same
clock (:func:`check_clock`). Checks on the common path are an integer compare
or a read of the monotonic clock (the CPU clock is a system call: read only
when the letter may be late, see :func:`start`); benchmarks/render.py measures
what they cost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from time import monotonic, thread_time
from typing import Any

from jinja2.runtime import markup_join, str_join

from segmerge.i18n import _, number

#: items one letter may loop over, all loops together (a real letter walks a few hundred)
MAX_ITEMS = 1_000_000
_MANY_PIECES = 1024  # a buffer longer than this is measured before it is joined
_CHECK_EVERY = 4096  # items of an unsized loop between two clock reads
#: wall seconds between two reads of a thread's CPU clock when letters start: a read
#: costs 2-4 µs (a system call), some 5 % of a short letter, and a letter started
#: within this gap of the last read gets at most this much more CPU time
ANCHOR_GAP = 0.01


@dataclass(frozen=True)
class Limits:
    """What one letter may cost; ``[mail]`` render_timeout / max_letter_size set them."""

    seconds: float = 5.0
    max_size: int = 5_000_000  # characters: any one text the letter builds, all loops' output


class RenderLimit(Exception):
    """A letter broke its budget: too long to render, too big, too many loop items."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class _Budget(threading.local):
    deadline = float("inf")  # the thread's CPU time the letter may not pass
    wall = float("inf")  # monotonic time before which it cannot have passed it
    cpu_anchor = wall_anchor = float("-inf")  # the last read of the thread's CPU clock
    left = Limits.max_size  # characters the letter may still output
    items = MAX_ITEMS
    limits = Limits()
    max_size = Limits.max_size


budget = _Budget()


def start(limits: Limits) -> None:
    """A new letter: a fresh budget for this thread.

    A thread cannot spend more CPU time than the wall time that passes, so until
    ``wall`` (start + seconds, on the cheap monotonic clock) the letter cannot be
    late and no check reads the CPU clock; its CPU time at start is bounded by the
    last read plus the wall time since (the thread ran at most all of it), which
    gives the letter at most :data:`ANCHOR_GAP` more than its limit."""
    b = budget
    now = monotonic()
    if now - b.wall_anchor > ANCHOR_GAP:
        b.cpu_anchor, b.wall_anchor = thread_time(), now
    b.deadline = b.cpu_anchor + (now - b.wall_anchor) + limits.seconds
    b.wall = now + limits.seconds
    b.left = b.max_size = limits.max_size
    b.items = MAX_ITEMS
    if b.limits is not limits:
        b.limits = limits


def timeout() -> RenderLimit:
    return RenderLimit(
        _(
            "the letter took more than {seconds} s to render (a loop or a macro that never ends?)"
        ).format(seconds=number(budget.limits.seconds, 3)),
        timed_out=True,
    )


def too_many_items() -> RenderLimit:
    return RenderLimit(
        _("the letter loops over more than {n} items in all").format(n=number(MAX_ITEMS))
    )


def what_text(what: str) -> str:
    """The thing that grew too big, in the command's language (a filter's name stays code)."""
    said = {
        "the letter": _("the letter"),
        "a joined text": _("a joined text"),
        "a repeated text": _("a repeated text"),
        "a formatted text": _("a formatted text"),
        "a replaced text": _("a replaced text"),
        "a format width": _("a format width"),
        "a call's result": _("a call's result"),
    }
    return said.get(what, what)


def too_big(what: str) -> RenderLimit:
    return RenderLimit(
        _("{what} would exceed the letter size limit of {n} characters").format(
            what=what_text(what), n=number(budget.limits.max_size)
        )
    )


def check_size(n: int, what: str = "the letter") -> None:
    if n > budget.max_size:
        raise too_big(what)


def check_clock() -> None:
    """Raise if this thread's letter is past its deadline (for work outside Jinja)."""
    b = budget
    if monotonic() > b.wall and thread_time() > b.deadline:
        raise timeout()


def count_output(value: Any) -> Any:
    """A ``{{ ... }}`` in a loop, or a macro's result: counted against the letter's size.

    A loop is how a template repeats an output until memory runs out, so
    outputs outside loops (as many as the file has) are not worth the call.
    """
    if type(value) is str or isinstance(value, str):
        n = len(value)
    elif isinstance(value, list | tuple | dict | set):
        n = sum(len(x) if isinstance(x, str) else 8 for x in value)
    else:
        return value
    b = budget
    b.left -= n
    if b.left < 0:
        b.left = 0
        raise too_big("the letter")
    return value


def concat(parts: Iterable[Any]) -> str:
    """A buffer (the letter, a macro's, a block's) joined into one string, checked.

    Each piece is already bounded (checked operators, calls and filters), so a
    buffer of a few pieces is joined and then measured; a long one (a loop's
    output) is measured first, since a loop can repeat one piece a million times.
    """
    if type(parts) is not list:
        parts = list(parts)
    if len(parts) > _MANY_PIECES:
        _measure(parts)
    text = "".join(parts)
    if len(text) > budget.max_size:
        raise too_big("a joined text")
    return text


def _measure(parts: list[Any]) -> None:
    try:
        total = sum(map(len, parts))  # buffers hold strings: counted at C speed
    except TypeError:
        total = sum(len(p) if isinstance(p, str) else 16 for p in parts)
    if total > budget.max_size:
        raise too_big("a joined text")


def checked_str_join(seq: Iterable[Any]) -> str:
    return _joined(seq, str_join)


def checked_markup_join(seq: Iterable[Any]) -> str:
    return _joined(seq, markup_join)


def _joined(seq: Iterable[Any], join: Callable[[Iterable[Any]], str]) -> str:
    """``a ~ b``: a tuple of a few pieces, each bounded; the result is measured."""
    text = join(seq)
    if len(text) > budget.max_size:
        raise too_big("a joined text")
    return text


def loop_items(iterable: Any) -> Any:
    """Every ``{% for %}`` iterable: its items come off the letter's budget."""
    check_clock()
    try:
        n = len(iterable)
    except TypeError:  # a generator (``| map``, ``| select``): counted item by item
        return _counted(iterable)
    b = budget
    b.items -= n
    if b.items < 0:
        raise too_many_items()
    return iterable


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    b = budget
    for i, item in enumerate(iterable):
        b.items -= 1
        if b.items < 0:
            raise too_many_items()
        if not i % _CHECK_EVERY:
            check_clock()
        yield item
