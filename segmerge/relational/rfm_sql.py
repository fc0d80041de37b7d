"""RFM quintile scores and the RFM grid as window functions, as metrics/rfm.py defines them.

Among the contacts with at least one order, a value scores ``1 + floor(5 * w / n)``
where ``w`` counts the contacts strictly worse: that is ``RANK() - 1`` ordered from
worst to best (equal values share a rank, so ties share a score), and ``n`` is a
``COUNT(*)`` over the same partition. Contacts without orders are their own
partition and get NULL. The division is done in floating point then floored:
exact for any base below 2**26 contacts per score, as 5w/n is either an integer
(represented exactly) or at least 1/n away from the next one.
"""

from __future__ import annotations

from sqlglot import exp

from segmerge.metrics.rfm import GRID


def _num(value: int) -> exp.Expression:
    return exp.Literal.number(value)


def _score(has: exp.Expression, value: exp.Expression, worst_first_desc: bool) -> exp.Expression:
    partition = [has.copy()]
    order = exp.Order(expressions=[exp.Ordered(this=value, desc=worst_first_desc)])
    rank = exp.Window(this=exp.Rank(), partition_by=partition, order=order)
    size = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[has.copy()])
    worse = exp.Paren(this=exp.Sub(this=rank, expression=_num(1)))
    ratio = exp.Div(
        this=exp.cast(exp.Mul(this=_num(5), expression=worse), "double"), expression=size
    )
    score = exp.Add(this=exp.cast(exp.Floor(this=ratio), "bigint"), expression=_num(1))
    return exp.Case(ifs=[exp.If(this=has.copy(), true=score)])


def rfm_scores(
    orders_count: exp.Expression, revenue: exp.Expression, days_since_last: exp.Expression
) -> tuple[exp.Expression, exp.Expression, exp.Expression]:
    """R (fewer days is better), F and M (more is better): NULL without orders."""
    has = exp.Paren(this=exp.GT(this=orders_count, expression=_num(0)))
    return (
        _score(has, days_since_last, worst_first_desc=True),
        _score(has, orders_count.copy(), worst_first_desc=False),
        _score(has, revenue, worst_first_desc=False),
    )


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
