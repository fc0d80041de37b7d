"""Templates parsed, checked and compiled once per process, keyed by the text they come from.

Why: every open of a campaign loads its letters again (each preview reload, each
`validate`, `run` and `segment`, each render worker), and parsing, checking and
compiling them was about half of a preview's CPU at 400 contacts. What is kept here
is the expensive part only: the syntax trees the checks walk, the checks that passed
and the compiled code. Each open still reads its files, builds its own sandbox and
binds the code to it, so the sandbox, autoescaping and filters are exactly those of
a first open.

Keys are the text itself (the template's name and file and its body after the front
matter), with the environment's settings that shape the code; never a modification
time. An edited template, even one saved twice within the same clock tick with the
same size, is another key: it is parsed, checked and compiled again, and a broken one
is refused again with its file and line. Only successes are kept, so an error is
raised afresh each time, in the language of the command.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Hashable
from types import CodeType
from typing import Any, Generic, TypeVar

import jinja2
from jinja2 import nodes
from jinja2.bccache import Bucket, BytecodeCache

from segmerge.render import check as checks
from segmerge.render.check import Parsed

#: entries of each kind kept (a template file, a front-matter value, a letter's checks)
MAX_ENTRIES = 4096

_V = TypeVar("_V")


class _Lru(Generic[_V]):
    """A bounded map, least recently used out first; safe for the preview's threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> _V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: _V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_trees: _Lru[nodes.Template] = _Lru(MAX_ENTRIES)
_codes: _Lru[CodeType] = _Lru(MAX_ENTRIES)
_passed: _Lru[bool] = _Lru(MAX_ENTRIES)


def settings(env: jinja2.Environment) -> tuple[Any, ...]:
    """What, besides the text, decides a template's tree and code: the sandbox's class
    (it rewrites loops and operators), autoescaping, the syntax and the filter and test
    names (an unknown filter is refused when compiling)."""
    return (
        type(env),
        env.autoescape,
        env.finalize,
        env.optimized,
        frozenset(env.filters),
        frozenset(env.tests),
        tuple(env.extensions),
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
    )


def parse(env: jinja2.Environment, source: str, name: str | None, filename: str) -> nodes.Template:
    """``env.parse``, once per text: the tree is shared, so it is only read (walked by the
    checks), never compiled, since compiling may fold constants into it. A tree holds no
    file name (only errors do, and they are never kept), so the same partial in two
    workspaces is parsed once."""
    key = (settings(env), source)
    tree = _trees.get(key)
    if tree is None:
        tree = env.parse(source, name, filename)
        _trees.put(key, tree)
    return tree


def compile_code(env: jinja2.Environment, source: str, filename: str) -> CodeType:
    """``env.compile`` of a nameless template (a front-matter value), once per text."""
    key = (settings(env), source, None, filename)
    code = _codes.get(key)
    if code is None:
        code = env.compile(source, None, filename)
        _codes.put(key, code)
    return code


def check(
    units: list[Parsed], known_columns: frozenset[str] | None, jinja_globals: Collection[str]
) -> None:
    """:func:`segmerge.render.check.check`, skipped when these very trees (shared by
    :func:`parse`) already passed it with the same columns and globals."""
    key = (tuple(units), known_columns, frozenset(jinja_globals))
    if _passed.get(key):
        return
    checks.check(units, known_columns, jinja_globals)
    _passed.put(key, True)


class _Bucket(Bucket):
    def __init__(self, environment: jinja2.Environment, key: Hashable) -> None:
        super().__init__(environment, "", "")
        self.cache_key = key


class MemoryCodeCache(BytecodeCache):
    """Jinja's bytecode-cache hook, holding code objects in memory, keyed as :func:`parse`.

    Jinja asks it each time a loader loads a file; a miss compiles and hands the code
    back through :meth:`set_bucket`.
    """

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        bucket = _Bucket(environment, (settings(environment), source, name, filename))
        bucket.code = _codes.get(bucket.cache_key)
        return bucket

    def set_bucket(self, bucket: Bucket) -> None:
        if isinstance(bucket, _Bucket) and bucket.code is not None:
            _codes.put(bucket.cache_key, bucket.code)

    def clear(self) -> None:
        """Forget everything compiled (the trees and the passed checks too)."""
        for store in (_trees, _codes, _passed):
            store.clear()


CODE_CACHE = MemoryCodeCache()
