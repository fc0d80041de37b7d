"""Rule-set files: loading, errors located in the YAML file, checks, modes, explain."""

from __future__ import annotations

import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from segmerge.errors import DataError, RuleError
from segmerge.metrics.catalog import Kind, MetricCall
from segmerge.rules import RuleSet, explain, kinds_from_frame, load_ruleset

PARIS = ZoneInfo("Europe/Paris")
AS_OF = pd.Timestamp("2026-01-31T09:00Z")

DEMO = """\
version: 1
name: profils-vpc
description: Les quatre profils de la vente par correspondance
mode: first            # first: a contact joins the first segment it matches
exclude: not subscribed or email is null
segments:
  - name: fonceurs
    label: Les fonceurs
    when: orders(days=90) >= 3 and avg_basket > 80
  - name: decouvreurs
    label: Les découvreurs
    when: distinct(category, days=365) >= 4
  - name: prudents
    when: orders_count >= 1 and avg_basket < 40
  - name: zens
    when: true
"""

COLUMNS = {
    "contact_id": Kind.STRING,
    "email": Kind.STRING,
    "subscribed": Kind.BOOL,
    "age": Kind.NUMBER,
    "city": Kind.STRING,
    "tags": Kind.LIST,
    "created_at": Kind.DATETIME,
}
ORDERS = {"contact_id", "order_id", "ordered_at", "amount", "category", "rating"}


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def one_segment(tmp_path: Path, when: str) -> Path:
    return write(tmp_path, f"version: 1\nsegments:\n  - name: s\n    when: {when}\n")


def load_error(path: Path) -> RuleError:
    with pytest.raises(RuleError) as info:
        load_ruleset(path)
    return info.value


def check_error(path: Path, columns: dict[str, Kind] = COLUMNS) -> RuleError:
    rs = load_ruleset(path)
    with pytest.raises(RuleError) as info:
        rs.check(columns, ORDERS)
    return info.value


def frame() -> pd.DataFrame:
    """Five contacts and their metrics, as the pipeline hands them over."""
    return pd.DataFrame(
        {
            "contact_id": ["c1", "c2", "c3", "c4", "c5"],
            "email": pd.Series(["a@x.fr", "b@x.fr", None, "d@x.fr", "e@x.fr"], dtype="string"),
            "subscribed": [True, True, True, False, True],
            "orders_count": [6.0, 2.0, 4.0, 5.0, 0.0],
            "avg_basket": [95.0, 30.0, 120.0, 90.0, np.nan],
            "orders(days=90, offset=0)": [3.0, 0.0, 3.0, 4.0, 0.0],
            "distinct(column=category, days=365)": [5.0, 1.0, 0.0, 4.0, 0.0],
        }
    )


# --- loading ----------------------------------------------------------------------------------


def test_loads_the_demo_rule_set(tmp_path: Path) -> None:
    rs = load_ruleset(write(tmp_path, DEMO))
    assert rs.name == "profils-vpc"
    assert rs.description == "Les quatre profils de la vente par correspondance"
    assert rs.mode == "first"
    assert [s.name for s in rs.segments] == ["fonceurs", "decouvreurs", "prudents", "zens"]
    assert [s.label for s in rs.segments] == ["Les fonceurs", "Les découvreurs", "prudents", "zens"]
    assert [s.line for s in rs.segments] == [7, 10, 13, 15]
    assert rs.segments[2].when_text == "orders_count >= 1 and avg_basket < 40"
    assert rs.exclude is not None and rs.exclude.to_text() == "not subscribed or email is null"
    assert rs.path == tmp_path / "rules.yaml"
    rs.check(COLUMNS, ORDERS)


def test_defaults_name_from_the_file_mode_first_label_from_name(tmp_path: Path) -> None:
    rs = load_ruleset(
        write(
            tmp_path, "version: 1\nsegments:\n  - name: tous\n    when: true\n", name="relance.yaml"
        )
    )
    assert (rs.name, rs.mode, rs.description, rs.exclude) == ("relance", "first", "", None)
    assert rs.segments[0].label == "tous"


def test_metric_calls_are_bound_with_defaults(tmp_path: Path) -> None:
    rs = load_ruleset(write(tmp_path, DEMO))
    assert rs.metric_calls() == {
        MetricCall("orders", (("days", 90), ("offset", 0))),
        MetricCall("distinct", (("column", "category"), ("days", 365))),
    }
    path = one_segment(tmp_path, "orders(90, 30) > orders(days=90) or revenue(days=7) > 0")
    keys = {c.key for c in load_ruleset(path).metric_calls()}
    assert keys == {
        "orders(days=90, offset=30)",
        "orders(days=90, offset=0)",
        "revenue(days=7, offset=0)",
    }


# --- YAML errors --------------------------------------------------------------------------------


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "version: 1\nsegments:\n  - name: a\n    when: x: 1\n"))
    assert (err.line, err.column) == (4, 12)
    assert "invalid YAML" in err.message and err.file == str(tmp_path / "rules.yaml")


def test_empty_file(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "# nothing yet\n"))
    assert err.message == "the rule set is empty"


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("segments:\n  - name: a\n    when: true\n", 1, 1, "missing `version: 1`"),
        ("version: 2\nsegments:\n  - name: a\n    when: true\n", 1, 10, "expected 1"),
        ("version: 1\n", 1, 1, "missing `segments:`"),
        ("version: 1\nsegments: []\n", 2, 11, "non-empty list of segments"),
        (
            "version: 1\nsegment:\n  - name: a\n",
            2,
            1,
            "unknown key 'segment' in a rule set; did you mean 'segments'?",
        ),
        (
            "version: 1\nmode: some\nsegments:\n  - name: a\n    when: true\n",
            2,
            7,
            "expected first or all",
        ),
        (
            "version: 1\nname: Mes Profils\nsegments:\n  - name: a\n    when: true\n",
            2,
            7,
            "invalid name",
        ),
        (
            "version: 1\nsegments:\n  - name: a\n    when: true\n  - name: a\n    when: false\n",
            5,
            11,
            "duplicate segment name 'a' (first at line 3)",
        ),
        ("version: 1\nsegments:\n  - name: a\n    wehn: true\n", 4, 5, "did you mean 'when'?"),
        ("version: 1\nsegments:\n  - name: a\n", 3, 5, "segment 'a' needs a condition `when:`"),
        ("version: 1\nsegments:\n  - name: a\n    when:\n", 4, 10, "needs a condition"),
        ("version: 1\nsegments:\n  - name: Big Ones\n    when: true\n", 3, 11, "invalid name"),
        ("version: 1\nsegments:\n  - when: true\n", 3, 5, "a segment needs a name"),
        ("version: 1\nsegments:\n  - name: a\n    when: [1, 2]\n", 4, 11, "expected a condition"),
        ("version: 1\nversion: 1\nsegments:\n  - name: a\n    when: true\n", 2, 1, "duplicate key"),
    ],
)
def test_structure_errors_point_at_the_line(
    tmp_path: Path, text: str, line: int, column: int, fragment: str
) -> None:
    err = load_error(write(tmp_path, text))
    assert (err.line, err.column) == (line, column), str(err)
    assert fragment in err.message, str(err)


def test_a_condition_starting_with_a_quote_gets_a_yaml_hint(tmp_path: Path) -> None:
    err = load_error(one_segment(tmp_path, "'vip' == city"))
    assert err.hint is not None and "when: >-" in err.hint


# --- condition errors, located in the file --------------------------------------------------------


def test_syntax_error_in_a_plain_condition(tmp_path: Path) -> None:
    err = load_error(one_segment(tmp_path, "age > 3 and and x"))
    assert (err.line, err.column) == (4, 23)  # "    when: " is 10 characters
    assert "unexpected 'and'; expected a value" in err.message
    assert err.field == "segment 's', when"


def test_syntax_error_in_a_quoted_condition(tmp_path: Path) -> None:
    err = load_error(one_segment(tmp_path, "\"city == 'Paris' and\""))
    assert (err.line, err.column) == (4, 31)
    assert "unexpected end of the condition" in err.message
    err = load_error(one_segment(tmp_path, "'city == ''Paris'' or or'"))
    assert (err.line, err.column) == (4, 33)


def test_syntax_error_in_a_block_condition(tmp_path: Path) -> None:
    text = """\
    version: 1
    segments:
      - name: s
        when: |
          orders_count >= 1   # au moins une commande
          and avg_basket <> 40
    """
    err = load_error(write(tmp_path, text))
    assert (err.line, err.column) == (6, 23)  # "<>" is "<" then an unexpected ">"
    assert "unexpected '>'" in err.message


def test_syntax_error_in_the_exclude_condition(tmp_path: Path) -> None:
    err = load_error(
        write(tmp_path, "version: 1\nexclude: not\nsegments:\n  - name: a\n    when: true\n")
    )
    assert (err.line, err.column, err.field) == (2, 13, "exclude")


def test_unknown_column_names_the_nearest_known_names(tmp_path: Path) -> None:
    err = check_error(one_segment(tmp_path, "orders_count >= 1 and avg_bsket > 80"))
    assert (err.line, err.column) == (4, 33)
    assert err.message == "unknown name 'avg_bsket'; did you mean 'avg_basket'?"
    err = check_error(one_segment(tmp_path, "cty == 'Paris'"))
    assert "did you mean 'city'?" in err.message
    assert str(err).startswith(f"{tmp_path / 'rules.yaml'}:4:11: segment 's', when: unknown name")


def test_scalar_metrics_are_always_known(tmp_path: Path) -> None:
    rs = load_ruleset(one_segment(tmp_path, "rfm_segment == 'champions' and r_score >= 4"))
    rs.check({}, None)


@pytest.mark.parametrize(
    ("when", "column", "fragment"),
    [
        ("city > 3", 18, "expected a string, got a number"),
        ("age == 'trente'", 18, "expected a number, got a string"),
        ("created_at > '2026-01-01'", 24, "expected a date, got a string"),
        ("age + city > 3", 17, "expected a number or a date, got a string"),
        ("created_at * 2 > 3", 11, "expected a number, got a date"),
        ("3 - created_at > 3", 15, "expected a number, got a date"),
        ("not age", 15, "expected a condition (true/false), got a number"),
        ("age", 11, "expected a condition (true/false), got a number"),
        ("subscribed > true", 11, "can only be compared with == or !="),
        ("tags == 'vip'", 11, "a list cannot be compared"),
        ("tags in ['vip']", 11, "a list cannot be compared"),
        ("tags startswith 'v'", 11, "startswith expected a string on its left, got a list"),
        ("age contains 'x'", 11, "contains expected a list or a string on its left"),
        ("city contains 3", 25, "expected a quoted string after 'contains', got a number"),
        ("city == null", 19, "a comparison with null is never true"),
        ("age between 1 and 'x'", 29, "expected a number, got a string"),
        ("city in ['Paris', 3]", 29, "expected a string, got a number"),
        ("-city > 0", 12, "expected a number, got a string"),
    ],
)
def test_type_errors(tmp_path: Path, when: str, column: int, fragment: str) -> None:
    err = check_error(one_segment(tmp_path, when))
    assert (err.line, err.column) == (4, column), str(err)
    assert fragment in err.message, str(err)


@pytest.mark.parametrize(
    ("when", "column", "fragment"),
    [
        ("orders(dayz=3) > 1", 18, "orders() has no argument 'dayz'; did you mean 'days'?"),
        ("orders() > 1", 11, "orders() needs its argument days"),
        ("orders(days=-3) > 1", 23, "days must be a whole number of days, 0 or more; got -3"),
        ("orders(days=1.5) > 1", 23, "whole number of days"),
        ("orders(days=age) > 1", 23, "whole number of days"),
        ("orders(1, 2, 3) > 1", 24, "too many arguments"),
        ("distinct(nonexistent) > 1", 20, "the orders have no column 'nonexistent'"),
        ("distinct(categroy) > 1", 20, "did you mean 'category'?"),
        ("order(days=3) > 1", 11, "unknown function 'order'; did you mean 'orders'?"),
        ("orders >= 3", 11, "orders is a metric function and needs arguments"),
    ],
)
def test_metric_argument_errors(tmp_path: Path, when: str, column: int, fragment: str) -> None:
    err = check_error(one_segment(tmp_path, when))
    assert (err.line, err.column) == (4, column), str(err)
    assert fragment in err.message, str(err)


def test_metric_calls_reports_a_bad_call_with_its_position(tmp_path: Path) -> None:
    rs = load_ruleset(one_segment(tmp_path, "clicks() > 1"))
    with pytest.raises(RuleError, match="clicks\\(\\) needs its argument days") as info:
        rs.metric_calls()
    assert (info.value.line, info.value.column) == (4, 11)


# --- warnings ---------------------------------------------------------------------------------


def test_warnings(tmp_path: Path) -> None:
    assert load_ruleset(write(tmp_path, DEMO)).warnings() == []
    text = """\
    version: 1
    segments:
      - name: a
        when: age > 30
      - name: b
        when: age > 30 or true
      - name: c
        when: age < 20
    """
    assert load_ruleset(write(tmp_path, text)).warnings() == [
        "segment 'c' can never match: 'b' before it is always true (mode: first)"
    ]
    many = (
        "version: 1\nmode: all\nsegments:\n"
        + "".join(f"  - name: s{i}\n    when: age > {i}\n" for i in range(5))
        + "  - name: twin\n    when: age > 1\n  - name: never\n    when: false and age > 1\n"
    )
    assert load_ruleset(write(tmp_path, many)).warnings() == [
        "7 segments: good segmentations usually have 2 to 4 segments, homogeneous inside and "
        "distinct from each other",
        "segment 'twin' has the same condition as 's1'",
        "segment 'never' can never match: its condition is always false",
    ]
    single = load_ruleset(one_segment(tmp_path, "true")).warnings()
    assert single[0].startswith("1 segment: good segmentations")


# --- assignment -------------------------------------------------------------------------------


def test_mode_first_exclude_and_primary(tmp_path: Path) -> None:
    rs = load_ruleset(write(tmp_path, DEMO))
    a = rs.assign(frame(), AS_OF, PARIS)
    # c1: fonceur (3 orders in 90 days, basket 95) and also a découvreur -> first wins
    # c2: prudent; c3: no e-mail -> excluded; c4: unsubscribed -> excluded
    # c5: no orders: avg_basket is null, so prudents is null -> falls through to zens
    assert list(a.matrix.columns) == ["fonceurs", "decouvreurs", "prudents", "zens"]
    assert a.matrix.to_numpy().tolist() == [
        [True, False, False, False],
        [False, False, True, False],
        [False, False, False, False],
        [False, False, False, False],
        [False, False, False, True],
    ]
    assert a.excluded.tolist() == [False, False, True, True, False]
    assert a.primary.tolist() == ["fonceurs", "prudents", pd.NA, pd.NA, "zens"]
    assert str(a.primary.dtype) == "string"
    assert a.sizes() == {"fonceurs": 1, "decouvreurs": 0, "prudents": 1, "zens": 1}
    assert a.matrix.index.equals(frame().index)


def test_mode_all_puts_contacts_in_every_matching_segment(tmp_path: Path) -> None:
    rs = load_ruleset(write(tmp_path, DEMO.replace("mode: first ", "mode: all ")))
    assert rs.mode == "all"
    a = rs.assign(frame(), AS_OF, PARIS)
    assert a.matrix.to_numpy().tolist() == [
        [True, True, False, True],
        [False, False, True, True],
        [False, False, False, False],
        [False, False, False, False],
        [False, False, False, True],
    ]
    assert a.primary.tolist() == ["fonceurs", "prudents", pd.NA, pd.NA, "zens"]
    assert a.sizes() == {"fonceurs": 1, "decouvreurs": 1, "prudents": 1, "zens": 3}


def test_assign_rejects_a_column_the_frame_does_not_have(tmp_path: Path) -> None:
    rs = load_ruleset(one_segment(tmp_path, "age > 30"))
    with pytest.raises(RuleError, match="unknown name 'age'"):
        rs.assign(frame(), AS_OF, PARIS)


def test_kinds_from_frame_feed_the_check(tmp_path: Path) -> None:
    rs = load_ruleset(one_segment(tmp_path, "email == 3"))
    with pytest.raises(RuleError, match="expected a string, got a number"):
        rs.check(kinds_from_frame(frame()), ORDERS)


# --- explain ----------------------------------------------------------------------------------


def test_explain_shows_each_sub_condition_and_what_decided(tmp_path: Path) -> None:
    rs: RuleSet = load_ruleset(write(tmp_path, DEMO))
    out = explain(rs, frame(), "c1", AS_OF, PARIS)
    assert [(e.name, e.matched, e.decided_by) for e in out] == [
        ("exclude", False, "the exclude condition is false"),
        ("fonceurs", True, "its condition is true"),
        ("decouvreurs", False, "an earlier segment 'fonceurs' matched (mode: first)"),
        ("prudents", False, "an earlier segment 'fonceurs' matched (mode: first)"),
        ("zens", False, "an earlier segment 'fonceurs' matched (mode: first)"),
    ]
    tree = out[1].condition
    assert tree is not None
    assert (tree.text, tree.value) == ("orders(days=90) >= 3 and avg_basket > 80", True)
    assert [(c.text, c.value) for c in tree.children] == [
        ("orders(days=90) >= 3", True),
        ("avg_basket > 80", True),
    ]
    assert [(g.text, g.value) for g in tree.children[0].children] == [("orders(days=90)", 3)]
    assert out[2].condition is not None and out[2].condition.value is True


def test_explain_null_and_exclusion(tmp_path: Path) -> None:
    rs = load_ruleset(write(tmp_path, DEMO))
    c5 = explain(rs, frame(), "c5", AS_OF, PARIS)
    prudents = c5[3]
    assert prudents.decided_by == "its condition is false"
    assert prudents.condition is not None
    assert [(c.text, c.value) for c in prudents.condition.children] == [
        ("orders_count >= 1", False),
        ("avg_basket < 40", None),
    ]
    assert prudents.condition.value is False  # false and null is false
    c3 = explain(rs, frame(), "c3", AS_OF, PARIS)
    assert (c3[0].matched, c3[0].decided_by) == (True, "the exclude condition is true")
    assert {e.decided_by for e in c3[1:]} == {"excluded"}
    email = c3[0].condition.children[1].children[0]  # type: ignore[union-attr]
    assert (email.text, email.value) == ("email", None)
    cheap = load_ruleset(one_segment(tmp_path, "avg_basket < 40"))
    only = explain(cheap, frame(), "c5", AS_OF, PARIS)
    assert len(only) == 1 and only[0].matched is False
    assert only[0].decided_by == "its condition is null (unknown), which is not a match"


def test_explain_an_unknown_contact(tmp_path: Path) -> None:
    rs = load_ruleset(write(tmp_path, DEMO))
    with pytest.raises(DataError, match="no contact with contact_id 'c11'") as info:
        explain(rs, frame(), "c11", AS_OF, PARIS)
    assert info.value.hint is not None and "c1" in info.value.hint


def test_the_sql_engine_assigns_the_same_segments(tmp_path: Path) -> None:
    from segmerge.rules.sql import DuckDBEvaluator

    rs = load_ruleset(write(tmp_path, DEMO))
    contacts = frame()
    kinds = rs.kinds_for(contacts)
    rs.check(kinds, ORDERS)
    by_sql = rs.assign_with(DuckDBEvaluator(contacts, kinds, AS_OF, PARIS), contacts.index)
    by_pandas = rs.assign(contacts, AS_OF, PARIS)
    assert by_sql.matrix.equals(by_pandas.matrix)
    assert by_sql.excluded.equals(by_pandas.excluded)
