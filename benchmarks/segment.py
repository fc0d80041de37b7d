"""Benchmark: metrics + RFM + a six-segment rule set on generated data, against DuckDB.

Usage: .venv/bin/python benchmarks/segment.py [--contacts 1000000] [--orders 10000000]
       (--contacts 100000 --orders 1000000 is a quick smoke check)

Times (a) ``compute_metrics`` with every call the rule set needs, plus RFM;
(b) the rule set's evaluation on contacts + metrics; (c) the same metrics as one
DuckDB SQL query on the same data (bounds computed by DuckDB's own calendar
arithmetic in the workspace time zone), once on the registered DataFrames and
once on the same columns as Arrow tables; ratios use DuckDB's faster run. Every
metric DuckDB computes is compared with ours on every contact, for both runs,
so the race is honest.

Memory: the resident-set high-water mark (``getrusage``'s ``ru_maxrss``) is reset
before each phase by writing 5 to /proc/self/clear_refs (Linux >= 4.0), so each
phase's peak is its own; "own" is that peak minus the resident set just before
the phase, i.e. what the phase added on top of the data it was given.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segmerge.metrics.catalog import MetricCall  # noqa: E402
from segmerge.metrics.compute import compute_metrics, reference_instant  # noqa: E402
from segmerge.ports.schema import Tables  # noqa: E402

TZ_NAME = "Europe/Paris"
TZ = ZoneInfo(TZ_NAME)
AS_OF = "2026-12-01"
CITIES = [
    "Paris",
    "Lyon",
    "Marseille",
    "Toulouse",
    "Nice",
    "Nantes",
    "Strasbourg",
    "Montpellier",
    "Bordeaux",
    "Lille",
    "Rennes",
    "Reims",
]
CATEGORIES = [
    "jazz",
    "classique",
    "rock",
    "livres",
    "bricolage",
    "jardin",
    "cuisine",
    "high-tech",
    "jeux",
    "mode",
]
RULES = """\
version: 1
name: bench
description: Six segments, the calls and columns a real rule set uses
mode: first
exclude: not subscribed or email is null
segments:
  - name: vip
    when: (revenue(days=365) >= 1500 and orders(days=365) >= 6) or tags contains 'vip'
  - name: fonceurs
    when: orders(days=90) >= 3 and avg_basket > 80
  - name: decouvreurs
    when: distinct(category, days=365) >= 4
  - name: a_risque
    when: orders(days=180) < orders(days=180, offset=180) and orders_count >= 3
  - name: reconquete
    when: days_since_last_order >= 180 and rfm_segment in ['at_risk', 'cannot_lose', 'hibernating']
  - name: lyonnais
    when: city in ['Lyon', 'Villeurbanne'] and age between 25 and 45
"""
#: What the rule set above needs; checked against rs.metric_calls() when the engine is there.
CALLS = [
    MetricCall.bind("revenue", days=365),
    MetricCall.bind("orders", days=365),
    MetricCall.bind("orders", days=90),
    MetricCall.bind("distinct", column="category", days=365),
    MetricCall.bind("orders", days=180),
    MetricCall.bind("orders", days=180, offset=180),
]


def _strings(arr: pa.Array) -> pd.Series:
    return pd.Series(arr.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def generate(n_contacts: int, n_orders: int, seed: int = 20260101) -> Tables:
    """Deterministic shop: skewed order counts, 20% of contacts without orders, 0.2% of
    orders for unknown contacts, orders over two years before as_of plus a few after."""
    rng = np.random.default_rng(seed)
    ids = _ids("C", np.arange(n_contacts), 7)
    tag_draw = rng.random(n_contacts)
    contacts = pd.DataFrame(
        {
            "contact_id": _strings(ids),
            "email": _strings(
                pc.if_else(
                    pa.array(rng.random(n_contacts) < 0.01),
                    None,
                    pc.binary_join_element_wise(ids, "@example.org", ""),
                )
            ),
            "first_name": _strings(pa.array(["Camille"] * n_contacts)),
            "last_name": _strings(pa.array(["Martin"] * n_contacts)),
            "subscribed": rng.random(n_contacts) > 0.07,
            "created_at": pd.Series(pd.Timestamp("2024-01-01", tz="UTC"), index=range(n_contacts)),
            "updated_at": pd.Series(pd.Timestamp("2024-01-01", tz="UTC"), index=range(n_contacts)),
            "tags": [["vip"] if r < 0.02 else ["newsletter"] if r < 0.1 else [] for r in tag_draw],
            "age": rng.integers(18, 86, n_contacts),
            "city": _strings(
                pa.array(CITIES).take(pa.array(rng.integers(0, len(CITIES), n_contacts)))
            ),
        }
    )
    weights = (rng.pareto(1.5, n_contacts) + 0.1) * (rng.random(n_contacts) > 0.2)
    cdf = np.cumsum(weights / weights.sum())
    owner = np.minimum(np.searchsorted(cdf, rng.random(n_orders)), n_contacts - 1)
    owner_ids = ids.take(pa.array(owner))
    unknown = pa.array(rng.random(n_orders) < 0.002)
    owner_ids = pc.if_else(unknown, _ids("X", owner, 7), owner_ids)
    end = reference_instant(AS_OF, TZ).value + 5 * 86_400 * 10**9  # a few orders after as_of
    span = 730 * 86_400  # whole seconds, as exports have them (DuckDB keeps microseconds)
    orders = pd.DataFrame(
        {
            "contact_id": _strings(owner_ids),
            "order_id": _strings(_ids("O", np.arange(n_orders), 9)),
            "ordered_at": pd.Series(
                (end - rng.integers(0, span, n_orders) * 10**9).view("datetime64[ns]")
            ).dt.tz_localize("UTC"),
            "amount": np.round(rng.gamma(2.0, 30.0, n_orders), 2),
            "category": _strings(
                pa.array(CATEGORIES).take(pa.array(rng.integers(0, 10, n_orders)))
            ),
            "rating": np.where(rng.random(n_orders) < 0.4, rng.integers(1, 6, n_orders), np.nan),
        }
    )
    return Tables(contacts, orders)


def duck_sql() -> str:
    """The same metrics as one query; bounds use DuckDB's calendar arithmetic in TimeZone.

    The distinct count is a DISTINCT subquery: 25% faster in DuckDB than
    count(DISTINCT ...) FILTER (...) in the main aggregate, so DuckDB gets its best shot.
    """
    b = {d: f"($as_of - INTERVAL {d} DAY)" for d in (90, 180, 360, 365)}
    return f"""
WITH agg AS (
  SELECT contact_id, count(*) AS orders_count, round(sum(amount), 6) AS revenue,
    avg(amount) AS avg_basket, min(ordered_at) AS first_order_at, max(ordered_at) AS last_order_at,
    round(coalesce(sum(amount) FILTER (WHERE ordered_at > {b[365]}), 0), 6)
      AS "revenue(days=365, offset=0)",
    count(*) FILTER (WHERE ordered_at > {b[365]}) AS "orders(days=365, offset=0)",
    count(*) FILTER (WHERE ordered_at > {b[90]}) AS "orders(days=90, offset=0)",
    count(*) FILTER (WHERE ordered_at > {b[180]}) AS "orders(days=180, offset=0)",
    count(*) FILTER (WHERE ordered_at > {b[360]} AND ordered_at <= {b[180]})
      AS "orders(days=180, offset=180)",
    avg(rating) AS avg_rating, max(rating) AS max_rating
  FROM orders WHERE ordered_at <= $as_of GROUP BY contact_id
), cats AS (
  SELECT contact_id, count(*) AS n FROM (
    SELECT DISTINCT contact_id, category FROM orders
    WHERE ordered_at > {b[365]} AND ordered_at <= $as_of AND category IS NOT NULL
  ) GROUP BY contact_id
), known AS (
  SELECT c.pos, a.*, coalesce(k.n, 0) AS "distinct(column=category, days=365)",
    date_diff('day', CAST(last_order_at AS DATE), CAST($as_of AS DATE)) AS days_since_last_order,
    date_diff('day', CAST(first_order_at AS DATE), CAST($as_of AS DATE)) AS days_since_first_order
  FROM agg a JOIN contacts c USING (contact_id) LEFT JOIN cats k USING (contact_id)
), scored AS (
  SELECT *,
    1 + (5 * (rank() OVER (ORDER BY days_since_last_order DESC) - 1)) // count(*) OVER ()
      AS r_score,
    1 + (5 * (rank() OVER (ORDER BY orders_count) - 1)) // count(*) OVER () AS f_score,
    1 + (5 * (rank() OVER (ORDER BY revenue) - 1)) // count(*) OVER () AS m_score
  FROM known
)
SELECT c.contact_id, s.* EXCLUDE (contact_id, pos)
FROM contacts c LEFT JOIN scored s USING (pos) ORDER BY c.pos
"""


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class Phase:
    """Wall time and memory high-water mark of one phase (see the module docstring)."""

    overall = 0.0

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> Phase:
        gc.collect()
        Phase.overall = max(Phase.overall, peak_mib())
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:  # not Linux, or not allowed: the peak then includes earlier phases
            self.reset = False
        self.before = rss_mib()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.peak = peak_mib()
        Phase.overall = max(Phase.overall, self.peak)
        self.own = self.peak - self.before

    def line(self) -> str:
        exact = "" if self.reset else " (peak not reset: includes earlier phases)"
        return (
            f"{self.name:<34} {self.seconds:7.2f} s   peak RSS {self.peak:6.0f} MiB, "
            f"own {self.own:+6.0f} MiB{exact}"
        )


def compare(ours: pd.DataFrame, duck: pd.DataFrame) -> list[str]:
    """Assert that every column DuckDB computed equals ours on every contact."""
    assert len(ours) == len(duck)
    assert (
        duck["contact_id"].astype(str).to_numpy() == ours["contact_id"].astype(str).to_numpy()
    ).all()
    checked = []
    for col in duck.columns.drop("contact_id"):
        a, b = ours[col], duck[col]
        if isinstance(a.dtype, pd.DatetimeTZDtype):
            a_ns = a.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")
            b_ns = pd.to_datetime(b, utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]")
            assert (pd.isna(a_ns) == pd.isna(b_ns)).all() and (a_ns == b_ns)[
                ~pd.isna(a_ns)
            ].all(), col
        else:
            x = pd.to_numeric(a).to_numpy(dtype=float, na_value=np.nan)
            y = pd.to_numeric(b).to_numpy(dtype=float, na_value=np.nan)
            y = np.where(np.isnan(y) & (x == 0), 0, y)  # SQL: no orders -> NULL count; ours: 0
            assert np.allclose(x, y, rtol=1e-12, atol=1e-9, equal_nan=True), f"{col} differs"
        checked.append(col)
    return checked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=10_000_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    tables = generate(args.contacts, args.orders)
    print(
        f"generated {args.contacts:,} contacts / {args.orders:,} orders in "
        f"{time.perf_counter() - t0:.1f} s; data resident: {rss_mib():.0f} MiB"
    )
    as_of = reference_instant(AS_OF, TZ)

    try:
        from segmerge.rules import kinds_from_frame, load_ruleset
    except ImportError:
        rs = None
        print("segmerge.rules is not importable: timing the metrics only")
        calls = CALLS
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.yaml"
            path.write_text(RULES, encoding="utf-8")
            rs = load_ruleset(path)
        rs.check(kinds_from_frame(tables.contacts), set(tables.orders.columns))
        calls = sorted(rs.metric_calls(), key=lambda c: c.key)
        assert set(calls) == set(CALLS), rs.metric_calls()

    with Phase("(a) ours: metrics + RFM") as pa_:
        metrics = compute_metrics(tables, as_of, TZ, calls)
    phases = [pa_]
    if rs is not None:
        frame = pd.concat([tables.contacts, metrics], axis=1)
        with Phase("(b) ours: six-segment rule set") as pb:
            assignment = rs.assign(frame, as_of, TZ)
        phases.append(pb)
        del frame

    import duckdb

    # DuckDB gets its best shot: the DataFrames as registered (what the brief asks), and
    # the same columns handed over as Arrow tables (zero-copy for Arrow-backed strings).
    contacts_pos = pd.DataFrame(
        {"contact_id": tables.contacts["contact_id"], "pos": np.arange(len(tables.contacts))}
    )
    results = []
    for how, wrap in (
        ("DataFrames", lambda df: df),
        ("Arrow", lambda df: pa.Table.from_pandas(df, preserve_index=False)),
    ):
        con = duckdb.connect()
        con.execute(f"SET TimeZone = '{TZ_NAME}'")
        con.register("orders", wrap(tables.orders))
        con.register("contacts", wrap(contacts_pos))
        with Phase(f"(c) DuckDB on {how}: one query") as p:
            result = con.execute(duck_sql(), {"as_of": as_of.to_pydatetime()}).df()
        phases.append(p)
        results.append(result)
        threads = con.execute("SELECT current_setting('threads')").fetchone()
        con.close()
        del result
    best = min(phases[-2:], key=lambda p: p.seconds)

    ours = pd.concat([tables.contacts[["contact_id"]], metrics], axis=1)
    checked = [compare(ours, duck) for duck in results][0]
    for p in phases:
        print(p.line())
    if rs is not None:
        print(f"segments: {assignment.sizes()}")
        total = pa_.seconds + pb.seconds
        print(
            f"ratio ours/DuckDB (its faster run): metrics {pa_.seconds / best.seconds:.2f}x, "
            f"metrics + rules {total / best.seconds:.2f}x (target <= 1.5x)"
        )
    else:
        print(
            f"ratio ours/DuckDB (its faster run): metrics {pa_.seconds / best.seconds:.2f}x "
            "(target <= 1.5x)"
        )
    print(f"DuckDB threads: {threads[0] if threads else '?'}; ours: one thread (numpy)")
    print(
        f"process peak RSS: {pa_.peak:.0f} MiB during ours, data included (target <= 1536 MiB); "
        f"{Phase.overall:.0f} MiB over the whole run"
    )
    print(
        f"agree with both DuckDB runs on all {len(metrics):,} contacts, {len(checked)} columns: "
        f"{', '.join(checked)}"
    )


if __name__ == "__main__":
    main()
