"""Hostile or clumsy rule sets: an error with its file and line, or the right segments.

Each attack is a rule-set file a user could be handed (a generated 5,000-term
`or`, 5,000 nested `not`s, a 10 MB dump, a YAML bomb, a file saved in Latin-1)
put in a real `segmerge init` workspace. What matters to the shop: the command
stops with exit 2 and says where, or segments exactly as the plain condition
would; it never crashes mid-way with a RecursionError, and no letter goes out.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cli import segmerge
from workspaces import two_segment_workspace

from segmerge.errors import RuleError
from segmerge.rules import explain, load_ruleset
from segmerge.rules.parser import MAX_DEPTH
from segmerge.rules.sql import DuckDBEvaluator, compile_condition
from segmerge.run.campaign import open_campaign, validate_templates
from segmerge.run.pipeline import RunOptions, run
from segmerge.segment.segmentation import segment
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"
RULES = "segrules/club.yaml"
CAMPAIGN = """
    [campaigns.club]
    source = "demo"
    rules = "segrules/club.yaml"
    templates = "templates/club"
    destination = "outbox"
    """


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rules") / "ws"
    two_segment_workspace(root, {}, "club", "orders_count >= 5", CAMPAIGN)
    return root


@pytest.fixture
def root(pristine, tmp_path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(pristine, target)
    return target


def rules_with(root: Path, vip_when: str, *, exclude: str = "email is null") -> Path:
    """The club rule set with ``vip_when`` as the condition of its first segment (line 5)."""
    path = root / RULES
    path.write_text(
        f"version: 1\nexclude: {exclude}\nsegments:\n  - name: vip\n    when: {vip_when}\n"
        "  - name: autres\n    when: true\n",
        encoding="utf-8",
    )
    return path


def state(root: Path) -> dict[str, bytes]:
    """Every file a run could write: the outbox and the ledger folder."""
    return {
        str(p): p.read_bytes()
        for d in ("outbox", ".segmerge")
        for p in (root / d).rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    }


def sizes(root: Path, path: Path) -> dict[str, int]:
    seg = segment(wsmod.load(root), path, as_of=AS_OF)
    return seg.assignment.sizes()


# -- deep nesting ------------------------------------------------------------------------------


def _segment(ws: Any, path: Path) -> None:
    segment(ws, path, as_of=AS_OF)


def _validate(ws: Any, path: Path) -> None:
    camp = open_campaign(ws, "club", as_of=AS_OF)
    try:
        validate_templates(camp)
    finally:
        camp.close()


def _run(ws: Any, path: Path) -> None:
    run(ws, "club", RunOptions(as_of=AS_OF))


def _explain(ws: Any, path: Path) -> None:
    seg = segment(ws, path, as_of=AS_OF)
    explain(seg.ruleset, seg.frame, str(seg.frame["contact_id"].iloc[0]), seg.as_of, ws.tz)


@pytest.mark.parametrize("entry", [_segment, _validate, _run, _explain])
def test_5000_nested_nots_stop_every_command_at_their_line(root, entry):
    path = rules_with(root, "not " * 5000 + "orders_count >= 5")
    before = state(root)
    with pytest.raises(RuleError) as err:
        entry(wsmod.load(root), path)
    e = err.value
    assert e.file == str(path) and e.line == 5
    # the first `not` too many: after "    when: " and MAX_DEPTH of them
    assert e.column == len("    when: ") + 4 * MAX_DEPTH + 1
    assert "too deeply nested" in e.message and str(MAX_DEPTH) in e.message
    assert state(root) == before


def test_run_of_a_too_deep_rule_set_is_exit_2_and_mails_nobody(root):
    rules_with(root, "not " * 5000 + "orders_count >= 5")
    before = state(root)
    proc = segmerge("run", "club", "--as-of", AS_OF, "-w", str(root))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{root / RULES}:5:" in proc.stderr and "too deeply nested" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in proc.stderr
    assert state(root) == before and not list((root / "outbox").rglob("*.eml"))


def test_5000_nested_parentheses_segment_and_explain_like_the_bare_condition(root):
    plain = sizes(root, rules_with(root, "orders_count >= 5"))
    path = rules_with(root, "(" * 5000 + "orders_count >= 5" + ")" * 5000)
    ws = wsmod.load(root)
    seg = segment(ws, path, as_of=AS_OF)
    assert seg.assignment.sizes() == plain and plain["vip"] > 0
    member = seg.frame.loc[seg.assignment.matrix["vip"].to_numpy(), "contact_id"].iloc[0]
    why = explain(seg.ruleset, seg.frame, str(member), seg.as_of, ws.tz)
    assert [(e.name, e.matched) for e in why] == [
        ("exclude", False),
        ("vip", True),
        ("autres", False),
    ]


def test_a_5000_term_or_is_evaluated_and_compiled_to_sql(root):
    """A generated rule (one `or` per flag column, say) is legal: it must just work (5,000
    terms, five times Python's recursion limit: nothing may recurse once per term)."""
    flags = pd.DataFrame({f"f{i}": [i == n for n in range(60)] for i in range(50)})
    frame = pd.concat([pd.DataFrame({"contact_id": [str(n) for n in range(60)]}), flags], axis=1)
    columns = [c for c in range(50) if c % 3]  # two columns in three
    picked = [columns[(i * 7) % len(columns)] for i in range(5_000)]
    path = rules_with(root, " or ".join(f"f{i}" for i in picked), exclude="false")
    rs = load_ruleset(path)
    kinds = rs.kinds_for(frame)
    got = rs.assign(frame, pd.Timestamp(AS_OF, tz="UTC"), UTC).matrix["vip"].to_numpy()
    assert got.tolist() == [n < 50 and n % 3 != 0 for n in range(60)]
    sql = compile_condition(rs.segments[0].expr, kinds, pd.Timestamp(AS_OF, tz="UTC"), UTC)
    assert sql.count(" OR ") == 5_000 - 1


def test_a_mistake_at_the_end_of_a_5000_term_or_is_refused_at_its_column(root):
    """Positions come from the tokens (not lark's bookkeeping): the last term's is exact."""
    head = " or ".join(f"f{i % 50}" for i in range(4_999)) + " or date("
    path = rules_with(root, head + "'2026-02-30') < today()", exclude="false")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert (err.value.line, err.value.column) == (5, len("    when: ") + len(head) + 1)
    assert "2026-02-30" in err.value.message


def test_a_condition_at_the_depth_limit_runs_on_every_engine(root):
    """One level under the limit: pandas, explain and DuckDB all evaluate it."""
    frame = pd.DataFrame({"contact_id": ["a", "b"], "orders_count": [1, 9]})
    path = rules_with(root, "not " * (MAX_DEPTH - 3) + "(orders_count >= 5)", exclude="false")
    rs = load_ruleset(path)
    as_of = pd.Timestamp(AS_OF, tz="UTC")
    assert rs.assign(frame, as_of, UTC).matrix["vip"].tolist() == [True, False]
    assert [e.matched for e in explain(rs, frame, "a", as_of, UTC)][1] is True
    duck = DuckDBEvaluator(frame, rs.kinds_for(frame), as_of, UTC)
    assert duck.truth(rs.segments[0].expr).tolist() == [True, False]


def test_a_1000_term_sum_is_refused_not_a_recursion_error(root):
    path = rules_with(root, " + ".join(["orders_count"] * 1_000) + " > 5")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.line == 5 and "too deeply nested" in err.value.message


def test_a_deeply_nested_yaml_value_is_refused_at_its_line(root):
    path = rules_with(root, "true")
    # 700 levels: past Python's recursion limit of 1,000 frames (PyYAML takes two a level)
    path.write_text(path.read_text() + "    description: " + "[" * 700 + "]" * 700 + "\n")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.line == 8 and "nested too deeply" in err.value.message


# -- size and YAML bombs -----------------------------------------------------------------------


def test_a_10_mb_rule_file_is_refused_with_its_size_limit(root):
    path = rules_with(root, "true")
    with path.open("a") as fh:
        fh.write(("# " + "x" * 98 + "\n") * 100_000)
    start = time.monotonic()
    proc = segmerge("segment", str(path), "--as-of", AS_OF, "-w", str(root))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(path) in proc.stderr and "1 MB" in proc.stderr and "1,000,000 bytes" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert time.monotonic() - start < 30  # refused before parsing, not after minutes of it


@pytest.mark.parametrize("where", ["description", "segments"])
def test_a_billion_laughs_rule_file_is_refused_quickly(root, where):
    """Nine levels of nine aliases: 9**9 `lol`s if anything expanded them."""
    anchors = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    anchors += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    head = "version: 1\n"
    if where == "description":
        body = (
            head + f"description: [{', '.join(anchors)}]\nsegments:\n  - {{name: a, when: true}}\n"
        )
        line = 2
    else:
        body = (
            head
            + "segments:\n  - {name: a, when: true}\n"
            + "".join(f"  - {a}\n" for a in anchors)
            + "  - *a9\n"
        )
        line = 4
    path = root / RULES
    path.write_text(body, encoding="utf-8")
    start = time.monotonic()
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.file == str(path) and err.value.line == line
    assert time.monotonic() - start < 5


# -- encodings ---------------------------------------------------------------------------------


def test_a_latin1_rule_file_names_the_first_bad_byte(root):
    path = root / RULES
    text = "version: 1\nsegments:\n  - name: vip\n    when: first_name == 'Hélène'\n"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert (err.value.line, err.value.column) == (4, len("    when: first_name == 'H") + 1)
    assert "0xE9" in err.value.message and "UTF-8" in (err.value.hint or "")


def test_a_rule_file_with_a_nul_byte_names_its_place(root):
    path = root / RULES
    path.write_bytes(b"version: 1\nsegments:\n  - name: vip\n    when: true\x00\n")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert (err.value.line, err.value.column) == (4, 15) and "NUL" in err.value.message


def test_a_utf16_rule_file_is_refused_with_the_fix(root):
    path = root / RULES
    path.write_bytes("version: 1\nsegments:\n  - name: vip\n    when: true\n".encode("utf-16"))
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.line == 1 and "UTF-16" in err.value.message


def test_a_utf8_rule_file_with_a_bom_still_loads(root):
    path = rules_with(root, "first_name == 'Hélène'")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_ruleset(path).segments[0].expr.to_text() == "first_name == 'Hélène'"


# -- values past what the engine can hold ------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "at", "words"),
    [
        ("created_at < date('9999-12-31')", "'9999", "out of range"),
        ("created_at > date('0001-01-01') - 1", "'0001", "out of range"),
        ("orders(days=100000000) > 0", "100000000", "at most 36,500 days"),
        ("orders(days=30, offset=99999999999) > 0", "99999999999", "at most 36,500 days"),
    ],
)
def test_dates_and_windows_beyond_the_engine_are_refused_at_their_column(root, when, at, words):
    """pandas holds instants from 1677 to 2262: past that, an error where the value is written."""
    path = rules_with(root, when)
    with pytest.raises(RuleError) as err:
        segment(wsmod.load(root), path, as_of=AS_OF)
    column = len("    when: ") + when.index(at) + 1
    assert (err.value.line, err.value.column) == (5, column) and words in err.value.message


def test_a_5000_digit_number_is_refused_at_its_column(root):
    """Python refuses to read integers past 4,300 digits: that was an internal error."""
    path = rules_with(root, "orders_count > " + "9" * 5000)
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert (err.value.line, err.value.column) == (5, len("    when: orders_count > ") + 1)
    assert "too large" in err.value.message and len(str(err.value)) < 300
    path.write_text("version: " + "9" * 5000 + "\n" + path.read_text().split("\n", 1)[1])
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert (err.value.line, err.value.field) == (1, "version")
