"""The rule language's syntax: every construct, precedence, positions, syntax errors."""

from __future__ import annotations

import datetime as dt

import pytest

from segmerge.errors import RuleError
from segmerge.rules import parse_expression
from segmerge.rules.ast import (
    And,
    Arith,
    Between,
    Bool,
    Compare,
    Contains,
    DateLit,
    Func,
    In,
    IsNull,
    Name,
    Neg,
    Not,
    Null,
    Number,
    Or,
    StartsWith,
    String,
    Today,
)

a, b, c = Name("a"), Name("b"), Name("c")


def p(text: str):  # noqa: ANN201 - test helper
    return parse_expression(text)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("age >= 30", Compare(">=", Name("age"), Number(30))),
        ("x == 1.5", Compare("==", Name("x"), Number(1.5))),
        ("x != .5e1", Compare("!=", Name("x"), Number(5.0))),
        ("x < -3", Compare("<", Name("x"), Number(-3))),
        ("city == 'Paris'", Compare("==", Name("city"), String("Paris"))),
        ('city == "L\'Haÿ"', Compare("==", Name("city"), String("L'Haÿ"))),
        ("city == 'l\\'été'", Compare("==", Name("city"), String("l'été"))),
        ("subscribed == true", Compare("==", Name("subscribed"), Bool(True))),
        ("flag != FALSE", Compare("!=", Name("flag"), Bool(False))),
        ("x in [1, 2, 3]", In(Name("x"), (Number(1), Number(2), Number(3)))),
        ("x not in ['a']", In(Name("x"), (String("a"),), negated=True)),
        ("x in []", In(Name("x"), ())),
        ("age between 35 and 40", Between(Name("age"), Number(35), Number(40))),
        ("email is null", IsNull(Name("email"))),
        ("email is not null", IsNull(Name("email"), negated=True)),
        ("tags contains 'vip'", Contains(Name("tags"), String("vip"))),
        ("city startswith 'Par'", StartsWith(Name("city"), String("Par"))),
        ("null", Null()),
        ("true", Bool(True)),
        (
            "created_at < date('2026-01-31')",
            Compare("<", Name("created_at"), DateLit(dt.date(2026, 1, 31))),
        ),
        ("today() - 30", Arith("-", Today(), Number(30))),
        (
            "orders(days=90) >= 3",
            Compare(">=", Func("orders", (), (("days", Number(90)),)), Number(3)),
        ),
        ("orders(90, 30) > 0", Compare(">", Func("orders", (Number(90), Number(30))), Number(0))),
        (
            "distinct(category, days=365) >= 4",
            Compare(
                ">=",
                Func("distinct", (Name("category"),), (("days", Number(365)),)),
                Number(4),
            ),
        ),
        ("`in` == 1", Compare("==", Name("in"), Number(1))),
        ("-(3) < x", Compare("<", Neg(Number(3)), Name("x"))),
        ("-x < 3", Compare("<", Neg(Name("x")), Number(3))),
        ("android and notable", And(Name("android"), Name("notable"))),
    ],
)
def test_every_construct_parses_to_its_tree(text: str, tree: object) -> None:
    assert p(text) == tree


def test_keywords_are_case_insensitive() -> None:
    assert p("NOT a AND b Or c IS NOT NULL") == p("not a and b or c is not null")
    assert p("x NOT IN [1] and y BETWEEN 1 AND 2") == And(
        In(Name("x"), (Number(1),), negated=True), Between(Name("y"), Number(1), Number(2))
    )
    assert p("Today() > Date('2026-01-01')") == Compare(">", Today(), DateLit(dt.date(2026, 1, 1)))


def test_comments_and_line_breaks_are_ignored() -> None:
    text = "a  # first\n  and b   # second\n"
    assert p(text) == And(a, b)


def test_not_binds_tighter_than_and() -> None:
    assert p("not a and b") == And(Not(a), b)


def test_not_applies_to_a_whole_comparison() -> None:
    assert p("not x == 1") == Not(Compare("==", Name("x"), Number(1)))


def test_and_binds_tighter_than_or() -> None:
    assert p("a or b and c") == Or(a, And(b, c))
    assert p("a and b or c") == Or(And(a, b), c)


def test_parentheses_override_precedence() -> None:
    assert p("(a or b) and c") == And(Or(a, b), c)


def test_and_or_are_left_associative() -> None:
    assert p("a and b and c") == And(And(a, b), c)
    assert p("a or b or c") == Or(Or(a, b), c)


def test_arithmetic_precedence_and_associativity() -> None:
    one, two, three = Number(1), Number(2), Number(3)
    assert p("1 + 2 * 3 > 0").left == Arith("+", one, Arith("*", two, three))
    assert p("(1 + 2) * 3 > 0").left == Arith("*", Arith("+", one, two), three)
    assert p("1 - 2 - 3 > 0").left == Arith("-", Arith("-", one, two), three)
    assert p("1 / 2 * 3 > 0").left == Arith("*", Arith("/", one, two), three)
    assert p("-a * 2 > 0").left == Arith("*", Neg(a), two)
    assert p("a - -2 > 0").left == Arith("-", a, Number(-2))


def test_arithmetic_binds_tighter_than_comparison() -> None:
    assert p("a + 1 > b * 2") == Compare(">", Arith("+", a, Number(1)), Arith("*", b, Number(2)))
    assert p("a between b - 1 and b + 1") == Between(
        a, Arith("-", b, Number(1)), Arith("+", b, Number(1))
    )


def test_nodes_know_their_line_and_column() -> None:
    tree = p("orders(days=90) >= 3\n  and avg_basket > 80")
    assert isinstance(tree, And)
    assert tree.pos is not None and (tree.pos.line, tree.pos.column) == (1, 1)
    right = tree.right
    assert right.pos is not None and (right.pos.line, right.pos.column) == (2, 7)
    assert isinstance(right, Compare) and right.left.pos is not None
    assert right.left.pos.start == len("orders(days=90) >= 3\n  and ")


def test_parenthesised_text_includes_the_parentheses() -> None:
    text = "(a or b) and c"
    tree = p(text)
    assert isinstance(tree, And) and tree.left.pos is not None
    assert text[tree.left.pos.start : tree.left.pos.end] == "(a or b)"


def test_positions_do_not_take_part_in_equality() -> None:
    assert p("a   and b") == p("a and b")
    assert hash(p("x > 1")) == hash(p("  x>1"))


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("age >", 1, 6, "unexpected end of the condition; expected a value"),
        ("age = 3", 1, 5, "unexpected '='; expected a comparison"),
        ("a < b < c", 1, 7, "unexpected '<'; expected an operator (+ - * /)"),
        ("x in 3", 1, 6, "unexpected number 3; expected '['"),
        (
            "(a or b",
            1,
            8,
            "expected a comparison (== != < <= > >= in between is contains startswith)",
        ),
        ("age > 3\n  and and x", 2, 7, "unexpected 'and'; expected a value"),
        ("city == 'Paris", 1, 9, 'unexpected character "\'"'),
        ("a && b", 1, 3, "unexpected character '&'"),
        ("a b", 1, 3, "unexpected name b"),
        ("", 1, 1, "unexpected end of the condition"),
        (
            "date('2026-02-30') < x",
            1,
            6,
            "invalid date '2026-02-30'; expected a real day as YYYY-MM-DD",
        ),
        ("date(2026) < x", 1, 1, "date() takes one quoted day"),
        ("today(3) < x", 1, 1, "today() takes no argument"),
        ("orders(days=3, 4) > 1", 1, 16, "a positional argument cannot follow a keyword argument"),
        ("orders(days=3, days=4) > 1", 1, 16, "argument days= is given twice"),
        ("x > 1e999", 1, 5, "number 1e999 is too large"),
    ],
)
def test_syntax_errors_say_where_and_what_was_expected(
    text: str, line: int, column: int, fragment: str
) -> None:
    with pytest.raises(RuleError) as info:
        p(text)
    err = info.value
    assert (err.line, err.column) == (line, column)
    assert fragment in err.message


def test_an_error_offers_the_usual_fix_as_a_hint() -> None:
    with pytest.raises(RuleError) as info:
        p("age = 3")
    assert info.value.hint == "to compare, write =="
    with pytest.raises(RuleError) as info:
        p("x == in")
    assert info.value.hint is not None and "`in`" in info.value.hint


def test_and_alone_is_a_syntax_error_listing_not() -> None:
    with pytest.raises(RuleError) as info:
        p("and")
    assert info.value.message.endswith("or 'not'")


@pytest.mark.parametrize(
    "text",
    [
        "not a and b",
        "a or b and c",
        "(a or b) and c",
        "a and (b and c)",
        "not (a and b)",
        "1 - (2 - 3) > 0",
        "(1 + 2) * 3 > -4.5",
        "-(a + b) >= 0",
        "x not in [1, -2, 3]",
        "city == 'l\\'été'",
        "`in` == 'x'",
        "(a == b) == true",
        "distinct(category, days=365) >= 4 and orders(90, 30) < 2",
        "created_at between date('2026-01-01') and today() - 1",
    ],
)
def test_to_text_prints_text_that_parses_back_to_the_same_tree(text: str) -> None:
    tree = p(text)
    printed = tree.to_text()
    assert p(printed) == tree
    assert printed.replace(" ", "") == text.replace(" ", "")  # already minimal here
