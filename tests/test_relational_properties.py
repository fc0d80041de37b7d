"""The relational plan against the pandas engine on real purchases and generated shops.

CDNOW (Fader & Hardie's CD retailer, shipped in the `lifetimes` test extra, see
tests/shop_exports.py) gives 2,357 real customers with skewed histories and many
quintile ties; every 13th order is cancelled in the shop's own words, which the
pandas side leaves out with the engine's status rules and the plan with
``left_out_statuses``. Hypothesis then builds small shops around the edges that
matter: contacts without orders, orders exactly on a window's bounds and a second
either side, the daylight-saving days of Europe/Paris (a reference day and orders
on them), missing amounts, ratings and instants, unknown contacts, equal figures
(quintile ties), and events of every kind with and without a campaign.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_relational import CALLS, RULE_SETS, SEGRULES, compare

from segmerge.metrics.compute import days_before, reference_instant
from segmerge.ports.schema import EVENT_KINDS, Tables, conform, empty_orders
from segmerge.relational import Plan, build_plan, duckdb_exec
from segmerge.relational.duckdb_exec import connect
from segmerge.rules import load_ruleset
from segmerge.segment.order_status import StatusRules, counted_mask

PARIS = ZoneInfo("Europe/Paris")

#: a rule set reading what the repository's do not: engagement, trends, a date moved by
#: days, tags, a number column, `mode: all`
ENGAGED = """\
version: 1
mode: all
exclude: tags contains 'blocked' or email is null
segments:
  - name: fans
    when: opened(campaign='last') or clicks(days=30) >= 2
  - name: rising
    when: trend(revenue, 30) > 1 or trend(opens, 7) >= 1
  - name: recent
    when: last_order_at + 30 > today() and orders(days=90, offset=30) == 0
  - name: faithful
    when: first_order_at - created_at >= 0 and f_score >= 4 and age between 18 and 65
  - name: quiet
    when: last_open_days is null or last_click_days > 60 or distinct(category, days=60) == 1
"""


def rule_sets(tmp: Path) -> list:
    engaged = tmp / "engaged.yaml"
    engaged.write_text(ENGAGED)
    return [load_ruleset(SEGRULES / f"{n}.yaml") for n in RULE_SETS] + [load_ruleset(engaged)]


_RULE_SETS: list = []


@pytest.fixture(scope="module")
def all_rule_sets(tmp_path_factory) -> list:
    if not _RULE_SETS:
        _RULE_SETS.extend(rule_sets(tmp_path_factory.mktemp("rules")))
    return _RULE_SETS


@pytest.fixture(scope="module")
def duck() -> Iterator[Any]:
    """One DuckDB connection, and each plan compiled once, for every generated shop.

    Why: compiling and printing a plan cost as much as running it on a small shop, and
    a plan depends on the rule set, the reference day, the columns asked for and the
    relations' column types, never on the rows, so each example reuses the plan of an
    earlier one with the same of those (5 reference days, 4 rule sets). What the
    examples check is unchanged: segment_relational still registers each shop's tables
    and runs the plan on them."""
    plans: dict[tuple, Plan] = {}

    def build(ruleset, as_of, tz, contact_types, columns=(), **options) -> Plan:
        key = (
            id(ruleset),
            as_of,
            tz,
            tuple(contact_types.items()),
            tuple(columns),
            *(
                (name, value if isinstance(value, bool) else tuple(value))
                for name, value in sorted(options.items())
            ),
        )
        if key not in plans:
            plans[key] = _printed_once(
                build_plan(ruleset, as_of, tz, contact_types, columns, **options)
            )
        return plans[key]

    con = connect(threads=1)  # a shop of a few rows gains nothing from a second thread
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duckdb_exec, "build_plan", build)
        yield con
    con.close()


def _printed_once(plan: Plan) -> Plan:
    """``plan``, its SQL printed once per dialect."""
    texts: dict[tuple, str] = {}
    print_sql = plan.sql

    def sql(dialect: str = "duckdb", relations=None, pretty: bool = True) -> str:
        if relations is not None:
            return print_sql(dialect, relations, pretty)
        if (dialect, pretty) not in texts:
            texts[dialect, pretty] = print_sql(dialect, None, pretty)
        return texts[dialect, pretty]

    plan.sql = sql  # type: ignore[method-assign]
    return plan


# --- CDNOW ------------------------------------------------------------------------------------


def test_cdnow_purchases_segment_identically(all_rule_sets: list, duck: Any) -> None:
    # the data file is found through the lifetimes wheel's metadata, never imported:
    # importing lifetimes (scipy, autograd) cost more CPU than the whole test
    from tests.shop_exports import cdnow, orders_of, recent

    orders = orders_of(recent(cdnow()))
    customers = sorted(orders["customer"].unique())
    contacts = pd.DataFrame(
        {
            "contact_id": [f"{c:05d}" for c in customers],
            "email": [f"client{c}@example.fr" for c in customers],
            "subscribed": [c % 7 != 0 for c in customers],
            "tags": [["blocked"] if c % 11 == 0 else [] for c in customers],
            "age": [float(18 + c % 60) for c in customers],
        }
    )
    days = pd.to_datetime(orders["date"], format="%Y%m%d")
    raw = pd.DataFrame(
        {
            "contact_id": [f"{c:05d}" for c in orders["customer"]],
            "order_id": orders["order"].astype(str),
            "ordered_at": (days + pd.Timedelta(hours=12)).dt.tz_localize(PARIS),
            "amount": orders["total"],
            "category": ["cd" if n % 3 else "dvd" for n in orders["order"]],
            "status": ["Annulé" if c else "Livré" for c in orders["cancelled"]],
        }
    )
    tables = conform(Tables(contacts, raw), source="cdnow")
    keep, _report = counted_mask(tables.orders["status"], StatusRules.for_source())
    counted = Tables(tables.contacts, tables.orders[keep.to_numpy()].reset_index(drop=True))
    as_of = reference_instant("2026-07-01", PARIS)
    *others, engaged = all_rule_sets  # the whole catalog once, as for the generated shops
    for ruleset in [engaged, *others]:
        got = compare(
            counted,
            ruleset,
            as_of,
            PARIS,
            CALLS if ruleset is engaged else (),
            ["Annulé"],
            scalars=ruleset is engaged,
            connection=duck,
            orders=tables.orders,
        )
        assert got.num_rows == len(customers)
    assert counted.orders.shape[0] < tables.orders.shape[0]  # the plan saw cancelled orders


# --- generated shops --------------------------------------------------------------------------

#: reference days: ordinary, the spring-forward and fall-back days in Paris and the day after
AS_OF_DAYS = ["2026-01-31", "2025-03-30", "2025-03-31", "2025-10-26", "2025-10-27"]
WINDOWS = (1, 2, 7, 30, 60, 90, 120, 180, 365)


def _edges(as_of: pd.Timestamp) -> list[datetime]:
    """Instants where a metric can tip: window bounds and a second either side."""
    out = [as_of.to_pydatetime()]
    for days in WINDOWS:
        bound = pd.Timestamp(days_before(as_of, days, PARIS), tz="UTC").to_pydatetime()
        out += [bound, bound - timedelta(seconds=1), bound + timedelta(seconds=1)]
    out.append(as_of.to_pydatetime() + timedelta(seconds=1))  # after as_of: never counted
    # local midnights and the DST change hours themselves
    out += [datetime(2025, 3, 30, 1, 0, tzinfo=UTC), datetime(2025, 10, 26, 0, 59, tzinfo=UTC)]
    out += [datetime(2025, 10, 26, 1, 0, tzinfo=UTC), datetime(2025, 10, 25, 22, 0, tzinfo=UTC)]
    return out


@st.composite
def shops(draw: st.DrawFn) -> tuple[Tables, pd.Timestamp]:
    as_of = reference_instant(draw(st.sampled_from(AS_OF_DAYS)), PARIS)
    edges = _edges(as_of)
    instant = st.one_of(
        st.sampled_from(edges),
        st.integers(0, 400 * 24).map(lambda h: as_of.to_pydatetime() - timedelta(hours=h)),
        st.none(),
    )
    n = draw(st.integers(1, 7))  # no contacts at all: test_an_empty_base_gives_no_rows
    ids = [f"k{i}" for i in range(n)]
    contacts = pd.DataFrame(
        {
            "contact_id": ids,
            "email": [draw(st.sampled_from([None, f"{i}@x.fr"])) for i in ids],
            "subscribed": [draw(st.booleans()) for _ in ids],
            "created_at": [draw(st.sampled_from(edges)) for _ in ids],
            "tags": [draw(st.sampled_from([[], ["blocked"], ["vip"]])) for _ in ids],
            "age": [draw(st.sampled_from([None, 17.0, 30.0, 65.0])) for _ in ids],
        }
    )
    who = st.sampled_from([*ids, "nobody"]) if ids else st.just("nobody")
    order = st.tuples(
        who,
        instant,
        st.sampled_from([None, 0.0, 9.99, 10.0, 25.5, 100.0, 1500.0]),
        st.sampled_from([None, "", "books", "music", "games"]),
        st.sampled_from([None, 1.0, 4.5, 5.0]),
    )
    rows = draw(st.lists(order, max_size=25))
    orders = pd.DataFrame(
        {
            "contact_id": [r[0] for r in rows],
            "order_id": [f"o{i}" for i in range(len(rows))],
            "ordered_at": pd.to_datetime([r[1] for r in rows], utc=True),
            "amount": pd.Series([r[2] for r in rows], dtype="float64"),
            "category": pd.Series([r[3] for r in rows], dtype="string"),
            "rating": pd.Series([r[4] for r in rows], dtype="float64"),
        }
    )
    event = st.tuples(
        who,
        st.sampled_from([None, "c1", "c2", "c3"]),
        st.sampled_from(EVENT_KINDS),
        instant,
    )
    erows = draw(st.lists(event, max_size=20))
    events = pd.DataFrame(
        {
            "contact_id": [r[0] for r in erows],
            "campaign_id": [r[1] for r in erows],
            "event": [r[2] for r in erows],
            "at": pd.to_datetime([r[3] for r in erows], utc=True),
        }
    )
    return conform(Tables(contacts, orders, events), source="generated"), as_of


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shop=shops(), other=st.integers(0, len(RULE_SETS) - 1))
def test_generated_shops_segment_identically(
    all_rule_sets: list, duck: Any, shop, other: int
) -> None:
    """Every metric of the catalog on each shop (with the rule set reading the most of
    them), then one other rule set's assignment and the metrics it reads.

    The other rule sets are not asked for the whole catalog again: a metric's SQL and
    its pandas value do not depend on the rule set, so the same comparison on the same
    shop three more times proved nothing more (the demo shop in test_relational.py
    still compares the whole catalog under each rule set). Which other rule set is
    drawn with the shop, so Hypothesis varies (and shrinks) it like the shop's rows:
    each meets about seven of the twenty shops of a run, other shops every run, for
    half the cost of all three on every shop."""
    tables, as_of = shop
    *others, engaged = all_rule_sets
    compare(tables, engaged, as_of, PARIS, connection=duck)
    compare(tables, others[other], as_of, PARIS, calls=(), scalars=False, connection=duck)


def test_an_empty_base_gives_no_rows(duck: Any) -> None:
    orders = empty_orders().assign(category=pd.Series([], dtype="string"))
    contacts = pd.DataFrame({"contact_id": pd.Series([], dtype="string")})
    tables = conform(Tables(contacts, orders), "empty")
    as_of = reference_instant("2026-01-31", PARIS)
    for name in RULE_SETS:
        ruleset = load_ruleset(SEGRULES / f"{name}.yaml")
        got = compare(tables, ruleset, as_of, PARIS, connection=duck)
        assert got.num_rows == 0 and "segment" in got.column_names
