"""A letter that never ends or eats memory is stopped, and only that contact's letter.

Templates are user text and contact data fills them, so a letter can be made
to loop for ever (``{% for %}`` inside ``{% for %}``, a macro calling itself
twice), or to grow without end (``'x' * 10**9``, a buffer doubled by ``~``,
``| center(10**9)``). Jinja's sandbox only caps ``range()``. Here each letter
gets a budget (:func:`start`) that the template cannot get around:

- time: a deadline checked at every call, every loop start and every few
  thousand items of a long loop (Python code cannot loop in a template
  without one of them);
- size: every joined buffer (the letter, a macro, a ``{% set %}`` block, a
  ``~``) and every ``*``, ``+``, ``%``, ``**``, string method and sizing
  filter is checked *before* it allocates; what a ``{{ ... }}`` inside a loop
  outputs, and what a macro returns, is counted against the letter's size
  (outside loops a letter has as many outputs as its text has ``{{``);
- loop items: one letter may walk at most :data:`MAX_ITEMS` items in all,
  so nested loops fail at once rather than when the clock runs out.

The budget lives in a thread-local: the preview server renders in threads,
the pool in processes, and each letter starts its own. A broken limit raises
:class:`RenderLimit`, which :func:`segmerge.render_errors.render_failure` turns
into that contact's TemplateError: the contact is skipped with the reason,
the run goes on. Checks on the common path are an integer compare or a clock
read; benchmarks/render.py measures them.
"""

from __future__ import annotations

import operator
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from time import monotonic
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Macro, markup_join, str_join

from .render_env import FastTemplate, Sandbox

#: items one letter may loop over, all loops together (a real letter walks a few hundred)
MAX_ITEMS = 1_000_000
#: an integer argument that sizes a result (``center``, ``indent``, ``zfill``...) above this
MAX_WIDTH = 100_000
#: the filters every ``{% for %}`` iterable, and each ``{{ ... }}`` in a loop, go through
LOOP_FILTER = "_segmerge_loop"
OUTPUT_FILTER = "_segmerge_out"
_MANY_PIECES = 1024  # a buffer longer than this is measured before it is joined
_CHECK_EVERY = 4096  # items of an unsized loop between two clock reads
_BIG_NUMBER = re.compile(r"\d{7,}")  # a width of a million or more in a format string
# builtin filters whose result can outgrow their input by an integer or a string argument
_SIZING_FILTERS = ("center", "indent", "wordwrap", "truncate", "batch", "slice", "replace",
                   "join", "format", "urlize", "striptags", "list", "string")  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """What one letter may cost; ``[mail]`` render_timeout / max_letter_size set them."""

    seconds: float = 5.0
    max_size: int = 5_000_000  # characters, every part of the letter together


class RenderLimit(Exception):
    """A letter broke its budget: too long to render, too big, too many loop items."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class _Budget(threading.local):
    deadline = float("inf")
    left = Limits.max_size  # characters the letter may still output
    items = MAX_ITEMS
    limits = Limits()
    max_size = Limits.max_size


_budget = _Budget()


def start(limits: Limits) -> None:
    """A new letter: a fresh budget for this thread."""
    b = _budget
    b.deadline = monotonic() + limits.seconds
    b.left = b.max_size = limits.max_size
    b.items = MAX_ITEMS
    if b.limits is not limits:
        b.limits = limits


def _timeout() -> RenderLimit:
    return RenderLimit(
        f"the letter took more than {_budget.limits.seconds:g} s to render "
        "(a loop or a macro that never ends?)",
        timed_out=True,
    )


def _too_big(what: str) -> RenderLimit:
    return RenderLimit(
        f"{what} would exceed the letter size limit of {_budget.limits.max_size:,} characters"
    )


def _check_size(n: int, what: str = "the letter") -> None:
    if n > _budget.max_size:
        raise _too_big(what)


def check_clock() -> None:
    """Raise if this thread's letter is past its deadline (for work outside Jinja)."""
    if monotonic() > _budget.deadline:
        raise _timeout()


def _count_output(value: Any) -> Any:
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
    b = _budget
    b.left -= n
    if b.left < 0:
        b.left = 0
        raise _too_big("the letter")
    return value


def _concat(parts: Iterable[Any]) -> str:
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
    if len(text) > _budget.max_size:
        raise _too_big("a joined text")
    return text


def _measure(parts: list[Any]) -> None:
    try:
        total = sum(map(len, parts))  # buffers hold strings: counted at C speed
    except TypeError:
        total = sum(len(p) if isinstance(p, str) else 16 for p in parts)
    if total > _budget.max_size:
        raise _too_big("a joined text")


def _str_join(seq: Iterable[Any]) -> str:
    return _joined(seq, str_join)


def _markup_join(seq: Iterable[Any]) -> str:
    return _joined(seq, markup_join)


def _joined(seq: Iterable[Any], join: Callable[[Iterable[Any]], str]) -> str:
    """``a ~ b``: a tuple of a few pieces, each bounded; the result is measured."""
    text = join(seq)
    if len(text) > _budget.max_size:
        raise _too_big("a joined text")
    return text


def _loop(iterable: Any) -> Any:
    """Every ``{% for %}`` iterable: its items come off the letter's budget."""
    check_clock()
    try:
        n = len(iterable)
    except TypeError:  # a generator (``| map``, ``| select``): counted item by item
        return _counted(iterable)
    b = _budget
    b.items -= n
    if b.items < 0:
        raise RenderLimit(f"the letter loops over more than {MAX_ITEMS:,} items in all")
    return iterable


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    b = _budget
    for i, item in enumerate(iterable):
        b.items -= 1
        if b.items < 0:
            raise RenderLimit(f"the letter loops over more than {MAX_ITEMS:,} items in all")
        if not i % _CHECK_EVERY:
            check_clock()
        yield item


def _sized_length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _binop_size(op: str, left: Any, right: Any) -> None:
    """Refuse, before it runs, an operator whose result would not fit in a letter."""
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            size = _sized_length(seq)
            if size is not None and isinstance(n, int):
                if isinstance(seq, list | tuple):
                    size = sum(len(x) if isinstance(x, str) else 8 for x in seq)
                _check_size(size * max(n, 0), "a repeated text")
    elif op == "+":
        a, b = _sized_length(left), _sized_length(right)
        if a is not None and b is not None:
            _check_size(a + b, "a joined text")
    elif op == "%":
        if isinstance(left, str) and _BIG_NUMBER.search(left):
            raise RenderLimit(f"a format width in {left[:40]!r} is too large")
    elif op == "**" and _huge_power(left, right):
        raise RenderLimit(f"{left} ** {right} is too large a number")


def _huge_power(left: Any, right: Any) -> bool:
    """An integer power of more than 64 k bits (computing it alone can take minutes)."""
    if not (isinstance(left, int) and isinstance(right, int)) or abs(left) < 2 or right < 1:
        return False
    return left.bit_length() * right > 64 * 1024


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_WIDTH:
            raise RenderLimit(f"{what}: the argument {a} is too large")


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A builtin filter that can outgrow its input, checked before and after."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        # the first argument or two are the environment / context and the value
        values = [a for a in args if isinstance(a, str)]
        if name == "format":
            if values and _BIG_NUMBER.search(values[0]):
                raise RenderLimit(f"a format width in {values[0][:40]!r} is too large")
        else:
            _check_arguments(args[1:], kwargs, f"| {name}")
        if name == "replace" and len(values) >= 3 and values[1] == "":
            _check_size(len(values[0]) * (len(values[2]) + 1), "| replace")
        result = func(*args, **kwargs)
        size = _sized_length(result)
        if size is not None:
            _check_size(size, f"| {name}")
        return result

    for attr in ("jinja_pass_arg",):  # how Jinja knows to pass the environment or context
        if hasattr(func, attr):
            setattr(checked, attr, getattr(func, attr))
    return checked


class LimitedTemplate(FastTemplate):
    """A compiled template whose ``~`` joins are checked (they are module globals)."""

    @classmethod
    def _from_namespace(cls, environment: Any, namespace: Any, globals: Any) -> Any:
        namespace["str_join"] = _str_join
        namespace["markup_join"] = _markup_join
        return super()._from_namespace(environment, namespace, globals)


class LimitedSandbox(Sandbox):
    """The render sandbox with the letter's budget checked at each of its hooks."""

    template_class = LimitedTemplate
    intercepted_binops = frozenset(("*", "+", "%", "**"))
    concat = staticmethod(_concat)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in _SIZING_FILTERS:
            if name in self.filters:
                self.filters[name] = _checked_filter(name, self.filters[name])
        self.filters[LOOP_FILTER] = _loop
        self.filters[OUTPUT_FILTER] = _count_output

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every ``{% for %}`` iterates through :func:`_loop`, which charges its items, and
        each ``{{ ... }}`` in its body outputs through :func:`_count_output`."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = _wrapped(loop.iter, LOOP_FILTER)
            for out in _outputs(loop.body + loop.else_):
                out.nodes = [n if isinstance(n, nodes.TemplateData) else
                             _wrapped(n, OUTPUT_FILTER) for n in out.nodes]  # fmt: skip
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _binop_size(operator, left, right)
        return _BINOPS[operator](left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Every call of a letter (macros included) reads the clock; a string method or
        a global that sizes its result by an argument is checked before it runs."""
        if monotonic() > _budget.deadline:
            raise _timeout()
        if type(__obj) is Macro:  # a template's own macro: its output is checked inside
            return __context.call(__obj, *args, **kwargs)
        _check_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        size = _sized_length(result)
        if size is not None and size > _budget.max_size:
            raise _too_big("a call's result")
        return result


def _check_call(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A string method or ``lipsum`` sized by an argument, or ``str.format`` given a huge
    width, is refused before it allocates."""
    name = getattr(func, "__name__", "")
    wrapped = getattr(func, "__wrapped__", None)  # the sandbox's str.format wrapper
    owner = getattr(wrapped if wrapped is not None else func, "__self__", None)
    if not isinstance(owner, str):
        if name == "generate_lorem_ipsum":
            _check_arguments(args, kwargs, "lipsum")
        return
    if name in ("format", "format_map"):
        if _BIG_NUMBER.search(owner):
            raise RenderLimit(f"a format width in {owner[:40]!r} is too large")
        return
    _check_arguments(args, kwargs, f".{name}")
    if name == "replace" and args and args[0] == "":
        new = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        _check_size(len(owner) * (len(new) + 1), ".replace")


def _wrapped(node: Any, name: str) -> nodes.Expr:
    if isinstance(node, nodes.Filter) and node.name == name:
        return node  # a loop inside a loop: wrapped once
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _outputs(body: list[nodes.Node]) -> Iterator[nodes.Output]:
    for node in body:
        if isinstance(node, nodes.Output):
            yield node
        else:
            yield from node.find_all(nodes.Output)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "+": operator.add,
    "%": operator.mod,
    "**": operator.pow,
}
