"""The rule grammar's parser tables are kept in the user's cache: a later start loads them
instead of rebuilding, and a damaged, foreign or unwritable cache never breaks parsing."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest
from lark import Lark

from segmerge.rules import grammar_cache

GRAMMAR = resources.files("segmerge.rules").joinpath("grammar.lark").read_text(encoding="utf-8")
OPTIONS = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True}
CONDITION = "orders(days=90) >= 2 and city startswith 'Par'"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "segmerge"


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the grammar was rebuilt instead of loaded")

    monkeypatch.setattr(Lark, "__init__", refuse)


def _cached_file(cache_home: Path) -> Path:
    (path,) = cache_home.glob("rules-grammar-*.lark")
    return path


def test_a_second_start_loads_the_tables_and_parses_the_same(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = grammar_cache.cached_parser(GRAMMAR, **OPTIONS).parse(CONDITION)
    assert oct(_cached_file(cache_home).stat().st_mode & 0o777) == "0o600"
    _no_build(monkeypatch)
    loaded = grammar_cache.cached_parser(GRAMMAR, **OPTIONS)
    assert loaded.parse(CONDITION) == built
    assert loaded.options.propagate_positions  # error offsets still point into the condition


def test_a_changed_grammar_never_loads_the_old_tables(cache_home: Path) -> None:
    grammar_cache.cached_parser(GRAMMAR, **OPTIONS)
    other = grammar_cache.cached_parser('start: "x"\n', parser="lalr")
    assert other.parse("x").data == "start"
    assert len(list(cache_home.glob("rules-grammar-*.lark"))) == 2


def test_a_truncated_copy_is_rebuilt_and_replaced(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = grammar_cache.cached_parser(GRAMMAR, **OPTIONS).parse(CONDITION)
    path = _cached_file(cache_home)
    path.write_bytes(path.read_bytes()[:-100])
    assert grammar_cache.cached_parser(GRAMMAR, **OPTIONS).parse(CONDITION) == built
    _no_build(monkeypatch)
    assert grammar_cache.cached_parser(GRAMMAR, **OPTIONS).parse(CONDITION) == built


def test_a_copy_others_may_write_is_not_trusted(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grammar_cache.cached_parser(GRAMMAR, **OPTIONS)
    os.chmod(_cached_file(cache_home), 0o666)
    _no_build(monkeypatch)
    with pytest.raises(AssertionError, match="rebuilt"):
        grammar_cache.cached_parser(GRAMMAR, **OPTIONS)


def test_an_unwritable_cache_only_costs_the_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    parser = grammar_cache.cached_parser(GRAMMAR, **OPTIONS)
    assert parser.parse(CONDITION).data == "and_"
    assert blocker.read_text() == ""


def test_without_a_known_home_nothing_is_written_where_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no HOME, no passwd entry
    monkeypatch.chdir(tmp_path)
    assert grammar_cache.cached_parser(GRAMMAR, **OPTIONS).parse(CONDITION).data == "and_"
    assert list(tmp_path.iterdir()) == []
