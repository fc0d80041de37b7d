"""The hooks that charge a letter's budget (:mod:`segmerge.render.limits`) from Jinja.

:class:`LimitedSandbox` is the render sandbox with every way a template can
spend time or memory routed through a check: calls read the clock, ``{% for %}``
iterables and the outputs in loop bodies go through two filters added to the
parsed tree, joins are measured, and the operators and methods that size
their result by an argument (``'x' * n``, ``.center(n)``, ``| indent(n)``,
``s.replace('', t)``, ``'%99999s'``...) are judged *before* they allocate,
from their arguments, since a string built is memory already spent.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from time import monotonic, thread_time
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Macro

from segmerge.i18n import _, number
from segmerge.render.env import FastTemplate, Sandbox
from segmerge.render.limits import (
    RenderLimit,
    budget,
    check_size,
    checked_markup_join,
    checked_str_join,
    concat,
    count_output,
    loop_items,
    timeout,
    too_big,
    what_text,
)

#: an integer argument that sizes a result (``center``, ``indent``, ``zfill``...) above this
MAX_WIDTH = 100_000
#: the filters every ``{% for %}`` iterable, and each ``{{ ... }}`` in a loop, go through
LOOP_FILTER = "_segmerge_loop"
OUTPUT_FILTER = "_segmerge_out"
# the widths of a printf format (%-10.3f, %*d) and of a str.format spec ({:>10}, {:{}})
_PRINTF_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}:]*:((?:[^{}]|\{[^{}]*\})*)\}")
_DIGITS = re.compile(r"\d+")
# pure-Python filters slower than linear on a long text: the length they accept
_SLOW_INPUT = {"wordwrap": 100_000, "urlize": 1_000_000}
# builtin filters whose result can outgrow their input by an integer or a string argument
_SIZING_FILTERS = (
    "center",
    "indent",
    "wordwrap",
    "truncate",
    "batch",
    "slice",
    "replace",
    "join",
    "format",
    "urlize",
    "striptags",
    "list",
    "string",
    "sum",
)


def _sized_length(value: Any) -> int | None:
    if isinstance(value, str | list | tuple | bytes | bytearray):
        return len(value)
    return None


def _binop_size(op: str, left: Any, right: Any) -> None:
    """Refuse, before it runs, an operator whose result would not fit in a letter."""
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            size = _sized_length(seq)
            if size is not None and isinstance(n, int):
                if isinstance(seq, list | tuple):
                    size = sum(len(x) if isinstance(x, str) else 8 for x in seq)
                check_size(size * max(n, 0), "a repeated text")
    elif op == "+":
        a, b = _sized_length(left), _sized_length(right)
        if a is not None and b is not None:
            check_size(a + b, "a joined text")
    elif op == "%":
        args = right if isinstance(right, tuple) else (right,)
        _format_size(left, args, right if isinstance(right, dict) else {})
    elif op == "**" and _huge_power(left, right):
        raise RenderLimit(
            _("{left} ** {right} is too large a number").format(left=left, right=right)
        )


def _huge_power(left: Any, right: Any) -> bool:
    """An integer power of more than 64 k bits (computing it alone can take minutes)."""
    if not (isinstance(left, int) and isinstance(right, int)) or abs(left) < 2 or right < 1:
        return False
    return left.bit_length() * right > 64 * 1024


def _check_arguments(args: Any, kwargs: dict[str, Any], what: str) -> None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_WIDTH:
            raise RenderLimit(
                _("{what}: the argument {value} is too large").format(what=what_text(what), value=a)
            )


def _format_size(fmt: Any, args: Any, kwargs: dict[str, Any]) -> None:
    """``'%99999s' * 50000 % values`` or ``'{:>999999999}'.format(1)``: the widths the
    format asks for, and the texts it is given, must fit in a letter."""
    if not isinstance(fmt, str):
        return
    widths, from_args = 0, False
    if "%" in fmt:
        for m in _PRINTF_WIDTH.finditer(fmt):
            from_args = from_args or "*" in m.group(0)
            widths += sum(int(g) for g in m.groups() if g and g.isdigit())
    if "{" in fmt:
        for m in _BRACE_SPEC.finditer(fmt):
            from_args = from_args or "{" in m.group(1)
            widths += sum(int(d) for d in _DIGITS.findall(m.group(1)))
    if from_args:  # a width taken from the values: '%*d' % (10**9, 1)
        _check_arguments(args, kwargs, "a format width")
    given = sum(len(a) for a in (*args, *kwargs.values()) if isinstance(a, str))
    check_size(len(fmt) + widths + given, "a formatted text")


def _replace_size(s: Any, old: Any, new: Any) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        check_size(len(s) + s.count(old) * (len(new) - len(old)), "a replaced text")


def _join_size(sep: Any, items: Any) -> None:
    if isinstance(sep, str) and isinstance(items, list | tuple):
        texts = sum(len(x) if isinstance(x, str) else 8 for x in items)
        check_size(len(sep) * len(items) + texts, "a joined text")


def _filter_size(name: str, value: Any, rest: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What a builtin filter would make of ``value``, judged from its arguments."""
    if name == "format":
        _format_size(value, rest, kwargs)
        return
    _check_arguments(rest, kwargs, f"| {name}")
    arg = rest[0] if rest else None
    if name == "replace" and len(rest) >= 2:
        _replace_size(value, rest[0], rest[1])
    elif name == "join":
        _join_size(kwargs.get("d", arg if arg is not None else ""), value)
    elif name == "indent" and isinstance(value, str):
        width = kwargs.get("width", arg if arg is not None else 4)
        pad = width if isinstance(width, int) else len(str(width))
        check_size(len(value) + (value.count("\n") + 1) * pad, "| indent")
    elif name == "sum" and not isinstance(kwargs.get("start", rest[-1] if rest else 0), int):
        _check_count(value, 1000, _("| sum of lists or texts"))  # each step copies the total
    elif name in _SLOW_INPUT and isinstance(value, str) and len(value) > _SLOW_INPUT[name]:
        raise RenderLimit(
            _("| {name} on {n} characters would take too long").format(
                name=name, n=number(len(value))
            )
        )


def _check_count(items: Any, most: int, what: str) -> None:
    if isinstance(items, list | tuple | str | range) and len(items) > most:
        raise RenderLimit(
            _("{what} over {n} items would take too long").format(what=what, n=number(len(items)))
        )


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A builtin filter that can outgrow its input, checked before and after."""
    first = 1 if hasattr(func, "jinja_pass_arg") else 0  # the environment or context

    def checked(*args: Any, **kwargs: Any) -> Any:
        if len(args) > first:
            _filter_size(name, args[first], args[first + 1 :], kwargs)
        result = func(*args, **kwargs)
        size = _sized_length(result)
        if size is not None:
            check_size(size, f"| {name}")
        return result

    if first:  # how Jinja knows to pass the environment or context
        checked.jinja_pass_arg = func.jinja_pass_arg  # type: ignore[attr-defined]
    return checked


class LimitedTemplate(FastTemplate):
    """A compiled template whose ``~`` joins are checked (they are module globals)."""

    @classmethod
    def _from_namespace(cls, environment: Any, namespace: Any, globals: Any) -> Any:
        namespace["str_join"] = checked_str_join
        namespace["markup_join"] = checked_markup_join
        return super()._from_namespace(environment, namespace, globals)


class LimitedSandbox(Sandbox):
    """The render sandbox with the letter's budget checked at each of its hooks."""

    template_class = LimitedTemplate
    intercepted_binops = frozenset(("*", "+", "%", "**"))
    concat = staticmethod(concat)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in _SIZING_FILTERS:
            if name in self.filters:
                self.filters[name] = _checked_filter(name, self.filters[name])
        self.filters[LOOP_FILTER] = loop_items
        self.filters[OUTPUT_FILTER] = count_output

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every ``{% for %}`` iterates through :func:`loop_items`, which charges its items, and
        each ``{{ ... }}`` in its body outputs through :func:`count_output`."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = _wrapped(loop.iter, LOOP_FILTER)
            for out in _outputs(loop.body + loop.else_):
                out.nodes = [
                    n if isinstance(n, nodes.TemplateData) else _wrapped(n, OUTPUT_FILTER)
                    for n in out.nodes
                ]
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _binop_size(operator, left, right)
        return _BINOPS[operator](left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Every call of a letter (macros included) reads the clock; a string method or
        a global that sizes its result by an argument is checked before it runs."""
        b = budget
        if monotonic() > b.wall and thread_time() > b.deadline:
            raise timeout()
        if type(__obj) is Macro:  # a template's own macro: its output is checked inside
            return __context.call(__obj, *args, **kwargs)
        _check_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        size = _sized_length(result)
        if size is not None and size > budget.max_size:
            raise too_big("a call's result")
        return result


def _check_call(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A string method or ``lipsum`` sized by its arguments is judged before it runs."""
    name = getattr(func, "__name__", "")
    wrapped = getattr(func, "__wrapped__", None)  # the sandbox's str.format wrapper
    owner = getattr(wrapped if wrapped is not None else func, "__self__", None)
    if not isinstance(owner, str):
        if name == "generate_lorem_ipsum":  # lipsum(n, html, min, max): n paragraphs of max words
            _check_arguments(args, kwargs, "lipsum")
            n = args[0] if args else kwargs.get("n", 5)
            words = args[3] if len(args) > 3 else kwargs.get("max", 100)
            if isinstance(n, int) and isinstance(words, int) and n * words > MAX_WIDTH:
                raise RenderLimit(
                    _("lipsum: {n} x {words} words is too many").format(n=n, words=words)
                )
        return
    if name in ("format", "format_map"):
        _format_size(owner, args, kwargs if name == "format" else (args[0] if args else {}))
        return
    _check_arguments(args, kwargs, f".{name}")
    if name == "replace" and len(args) >= 2:
        _replace_size(owner, args[0], args[1])
    elif name == "join" and args:
        _join_size(owner, args[0])
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            check_size(len(owner) + owner.count("\t") * size, ".expandtabs")


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
