"""RFM quintile scores and the RFM grid, as metrics/rfm.py defines them.

Among the contacts with at least one order, a value scores ``1 + floor(5 * w / n)``
where ``w`` counts the contacts strictly worse and ``n`` those with orders (equal
values share a score). Contacts without orders get NULL. The division is done in
floating point then floored: exact for any base below 2**26 contacts per score, as
5w/n is either an integer (represented exactly) or at least 1/n away from the next one.

Why scores per distinct value rather than ``RANK()`` per contact: a rank over the
per-contact table sorts every contact row, with all its columns, three times (that
was most of the plan's time on a million contacts). Here each score is computed on a
narrow relation: the measure's distinct values with their number of contacts
(``GROUP BY``), where ``w`` is a running sum in value order minus the value's own
count; the contacts then look their score up by value (a hash join on a small
table). Same ``w``, same ``n``, same floating-point division: the same scores.
"""

from __future__ import annotations

from sqlglot import exp

from segmerge.metrics.rfm import GRID

#: the narrow relation of contacts with orders: (f, mv, r) = orders, revenue, days
HAVING_ORDERS = "rfm_h"
#: the score table of each measure: (v, q) = value, score
SCORES = {"r": "rfm_r", "f": "rfm_f", "m": "rfm_m"}


def _num(value: int) -> exp.Expression:
    return exp.Literal.number(value)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _alias(expression: exp.Expression, name: str) -> exp.Expression:
    return exp.Alias(this=expression, alias=exp.to_identifier(name))


def having_orders(
    orders_count: exp.Expression,
    revenue: exp.Expression,
    days_since_last: exp.Expression,
    known: exp.Expression,
) -> exp.Select:
    """The three measures of the contacts with at least one order, nothing else: read
    from the per-contact order aggregates ``o`` (the measures are expressions over
    them), each of a contact ``known`` (a query of the contacts' ids) names.

    Why not from ``m``, the contacts joined to their metrics: read twice (here and by
    the scores' join), ``m`` is kept whole in memory by DuckDB, every contact with
    every column it carries (an e-mail, a tags list): 55 MiB of the plan's peak on a
    million contacts. ``o`` is narrower, and the contacts' ids are one column."""
    return (
        exp.select(
            _alias(orders_count.copy(), "f"),
            _alias(revenue, "mv"),
            _alias(days_since_last, "r"),
            copy=False,
        )
        .from_("o", copy=False)
        .where(
            exp.And(
                this=exp.GT(this=orders_count, expression=_num(0)),
                expression=exp.In(this=_col("cid", "o"), query=exp.Subquery(this=known)),
            ),
            copy=False,
        )
    )


def _worst_first(desc: bool) -> exp.Ordered:
    """NULL as the smallest value, said explicitly so every dialect sorts alike (no NULL
    reaches the counts: a contact with orders has all three measures)."""
    return exp.Ordered(this=_col("v"), desc=desc, nulls_first=not desc)


def score_table(measure: str, worst_first_desc: bool) -> exp.Select:
    """(value, score) for each distinct value of ``measure`` among contacts with orders."""
    counts = (
        exp.select(_alias(_col(measure), "v"), _alias(exp.Count(this=exp.Star()), "k"), copy=False)
        .from_(HAVING_ORDERS, copy=False)
        .group_by(_col(measure), copy=False)
    )
    running = exp.Window(
        this=exp.Sum(this=_col("k")),
        order=exp.Order(expressions=[_worst_first(worst_first_desc)]),
        spec=exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
        ),
    )
    total = exp.Window(this=exp.Sum(this=_col("k")))
    worse = exp.Paren(this=exp.Sub(this=running, expression=_col("k")))
    ratio = exp.Div(
        this=exp.cast(exp.Mul(this=_num(5), expression=worse), "double"),
        expression=exp.cast(total, "double"),
    )
    score = exp.Add(this=exp.cast(exp.Floor(this=ratio), "bigint"), expression=_num(1))
    return exp.select(_col("v"), _alias(score, "q"), copy=False).from_(
        counts.subquery("t", copy=False), copy=False
    )


def rfm_tables() -> list[tuple[str, exp.Expression]]:
    """The score tables of R (fewer days is better), F and M (more is better)."""
    return [
        (SCORES["r"], score_table("r", worst_first_desc=True)),
        (SCORES["f"], score_table("f", worst_first_desc=False)),
        (SCORES["m"], score_table("mv", worst_first_desc=False)),
    ]


def rfm_scores(
    orders_count: exp.Expression, revenue: exp.Expression, days_since_last: exp.Expression
) -> tuple[exp.Expression, exp.Expression, exp.Expression]:
    """R, F and M looked up in their score tables (joined by value): NULL without orders."""
    has = exp.Paren(this=exp.GT(this=orders_count, expression=_num(0)))
    return tuple(  # type: ignore[return-value]
        exp.Case(ifs=[exp.If(this=has.copy(), true=_col("q", SCORES[k]))]) for k in "rfm"
    )


def score_joins(
    select: exp.Select,
    orders_count: exp.Expression,
    revenue: exp.Expression,
    days_since_last: exp.Expression,
) -> exp.Select:
    """``select`` (over ``m``) left-joined to the three score tables by value."""
    for key, value in (("r", days_since_last), ("f", orders_count), ("m", revenue)):
        table = SCORES[key]
        select = select.join(
            table,
            on=exp.EQ(this=_col("v", table), expression=value.copy()),
            join_type="left",
            copy=False,
        )
    return select


def rfm_codes(
    orders_count: exp.Expression, r: exp.Expression, f: exp.Expression, m: exp.Expression
) -> tuple[exp.Expression, exp.Expression]:
    """``rfm`` ('435') and ``rfm_segment`` (GRID[r - 1][fm - 1], fm = (f + m + 1) div 2)."""
    has = exp.GT(this=orders_count, expression=_num(0))
    digits = exp.Add(
        this=exp.Add(
            this=exp.Mul(this=r, expression=_num(100)),
            expression=exp.Mul(this=f, expression=_num(10)),
        ),
        expression=m,
    )
    code = exp.Case(ifs=[exp.If(this=has, true=exp.cast(digits, "varchar"))])
    half = exp.Div(
        this=exp.cast(
            exp.Add(this=exp.Add(this=f.copy(), expression=m.copy()), expression=_num(1)), "double"
        ),
        expression=_num(2),
    )
    fm = exp.cast(exp.Floor(this=half), "bigint")
    key = exp.Add(this=exp.Mul(this=r.copy(), expression=_num(10)), expression=fm)
    cells = [
        exp.If(this=_num(10 * (ri + 1) + fi + 1), true=exp.Literal.string(str(GRID[ri, fi])))
        for ri in range(5)
        for fi in range(5)
    ]
    return code, exp.Case(this=key, ifs=cells)
