"""Benchmark: metrics + RFM + a six-segment rule set on generated data, against DuckDB.

Usage: .venv/bin/python benchmarks/segment.py [--contacts 1000000] [--orders 10000000]

Prints the time of Segmerge's metrics (every metric the rule set needs, and
RFM), of the rule evaluation, and of the same metrics as one DuckDB SQL query
on the same DataFrames, the ratio ours / DuckDB, and peak resident memory.
The two results are compared on every contact so the race is honest.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segmerge.metrics import compute_metrics, reference_instant  # noqa: E402
from segmerge.rules import kinds_from_frame, load_ruleset  # noqa: E402
from segmerge.schema import Tables  # noqa: E402

TZ = ZoneInfo("Europe/Paris")
RULES = """\
version: 1
name: bench
mode: first
exclude: not subscribed or email is null
segments:
  - {name: vip, when: "revenue(days=365) >= 1500 and orders(days=365) >= 6"}
  - {name: fonceurs, when: "orders(days=90) >= 3 and avg_basket > 80"}
  - {name: decouvreurs, when: "distinct(category, days=365) >= 4"}
  - {name: a_risque, when: "orders(days=180) < orders(days=180, offset=180) and orders_count >= 3"}
  - {name: champions, when: "rfm_segment == 'champions' or tags contains 'vip'"}
  - {name: reste, when: "true"}
"""


def generate(n_contacts: int, n_orders: int, seed: int = 7) -> Tables:
    rng = np.random.default_rng(seed)
    ids = pd.array([f"C{i:07d}" for i in range(n_contacts)], dtype="string")
    contacts = pd.DataFrame({
        "contact_id": ids,
        "email": pd.array([f"c{i}@example.org" for i in range(n_contacts)], dtype="string"),
        "first_name": pd.array(["Camille"] * n_contacts, dtype="string"),
        "last_name": pd.array(["Martin"] * n_contacts, dtype="string"),
        "subscribed": rng.random(n_contacts) > 0.07,
        "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
        "updated_at": pd.Timestamp("2024-01-01", tz="UTC"),
        "tags": [["vip"] if r < 0.02 else [] for r in rng.random(n_contacts)],
        "age": rng.integers(18, 85, n_contacts),
    })  # fmt: skip
    weights = rng.pareto(1.5, n_contacts) + 0.1
    owner = rng.choice(n_contacts, size=n_orders, p=weights / weights.sum())
    start = pd.Timestamp("2024-12-01", tz="UTC").value
    span = pd.Timedelta(days=730).value
    orders = pd.DataFrame({
        "contact_id": ids[owner],
        "order_id": pd.array(np.arange(n_orders).astype(str), dtype="string"),
        "ordered_at": pd.to_datetime(start + rng.integers(0, span, n_orders), utc=True),
        "amount": np.round(rng.gamma(2.0, 30.0, n_orders), 2),
        "category": pd.Categorical.from_codes(rng.integers(0, 10, n_orders), [
            "jazz", "classique", "rock", "livres", "bricolage", "jardin", "cuisine",
            "high-tech", "jeux", "mode"]).astype("string"),
        "rating": np.where(rng.random(n_orders) < 0.4, rng.integers(1, 6, n_orders), np.nan),
    })  # fmt: skip
    return Tables(contacts, orders)


DUCK_SQL = """
WITH o AS (
  SELECT contact_id, ordered_at, amount, category,
         CAST(timezone('Europe/Paris', ordered_at) AS DATE) AS local_day
  FROM orders WHERE ordered_at <= $as_of
), agg AS (
  SELECT contact_id, COUNT(*) AS orders_count, SUM(amount) AS revenue, AVG(amount) AS avg_basket,
    MIN(ordered_at) AS first_order_at, MAX(ordered_at) AS last_order_at,
    date_diff('day', MAX(local_day), CAST($as_of_local AS DATE)) AS days_since_last_order,
    date_diff('day', MIN(local_day), CAST($as_of_local AS DATE)) AS days_since_first_order,
    COUNT(*) FILTER (WHERE ordered_at > $d90) AS o90,
    COUNT(*) FILTER (WHERE ordered_at > $d180) AS o180,
    COUNT(*) FILTER (WHERE ordered_at > $d360 AND ordered_at <= $d180) AS o180_180,
    COUNT(*) FILTER (WHERE ordered_at > $d365) AS o365,
    COALESCE(SUM(amount) FILTER (WHERE ordered_at > $d365), 0) AS r365,
    COUNT(DISTINCT category) FILTER (WHERE ordered_at > $d365) AS cat365
  FROM o GROUP BY contact_id
), scored AS (
  SELECT *, COUNT(*) OVER () AS n,
    1 + (5 * (COUNT(*) OVER (ORDER BY days_since_last_order DESC
         RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
         - COUNT(*) OVER (PARTITION BY days_since_last_order))) // COUNT(*) OVER () AS r_score,
    1 + (5 * (COUNT(*) OVER (ORDER BY orders_count RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
         - COUNT(*) OVER (PARTITION BY orders_count))) // COUNT(*) OVER () AS f_score,
    1 + (5 * (COUNT(*) OVER (ORDER BY ROUND(revenue, 2) RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
         - COUNT(*) OVER (PARTITION BY ROUND(revenue, 2)))) // COUNT(*) OVER () AS m_score
  FROM agg
)
SELECT c.contact_id, s.* EXCLUDE (contact_id, n) FROM contacts c LEFT JOIN scored s USING (contact_id)
"""


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=10_000_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    tables = generate(args.contacts, args.orders)
    print(f"generated {args.contacts:,} contacts / {args.orders:,} orders "
          f"in {time.perf_counter() - t0:.1f}s; RSS peak so far {peak_mib():.0f} MiB")  # fmt: skip
    base_rss = peak_mib()
    as_of = reference_instant("2026-12-01", TZ)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(RULES, encoding="utf-8")
        rs = load_ruleset(path)
    rs.check(kinds_from_frame(tables.contacts), set(tables.orders.columns))

    t0 = time.perf_counter()
    metrics = compute_metrics(tables, as_of, TZ, rs.metric_calls())
    t_metrics = time.perf_counter() - t0
    frame = pd.concat([tables.contacts, metrics], axis=1)
    t0 = time.perf_counter()
    assignment = rs.assign(frame, as_of, TZ)
    t_rules = time.perf_counter() - t0
    ours_peak = peak_mib()

    import duckdb

    con = duckdb.connect()
    con.register("orders", tables.orders[["contact_id", "ordered_at", "amount", "category"]])
    con.register("contacts", tables.contacts[["contact_id"]])

    def shift(days: int) -> pd.Timestamp:
        local = as_of.tz_convert(TZ).tz_localize(None) - pd.Timedelta(days=days)
        return local.tz_localize(TZ).tz_convert("UTC")

    params = {"as_of": as_of, "as_of_local": as_of.tz_convert(TZ).date(),
              "d90": shift(90), "d180": shift(180), "d360": shift(360), "d365": shift(365)}
    t0 = time.perf_counter()
    duck = con.execute(DUCK_SQL, params).df()
    t_duck = time.perf_counter() - t0

    print(f"segments: {assignment.sizes()}")
    print(f"ours:   metrics+RFM {t_metrics:.2f}s, rules {t_rules:.2f}s, "
          f"total {t_metrics + t_rules:.2f}s")  # fmt: skip
    print(f"duckdb: same metrics in one SQL query {t_duck:.2f}s")
    print(f"ratio ours/duckdb (metrics+rules vs query): {(t_metrics + t_rules) / t_duck:.2f}x "
          f"(target <= 1.5x)")  # fmt: skip
    print(f"peak RSS: {ours_peak:.0f} MiB after ours ({ours_peak - base_rss:.0f} MiB above the "
          f"generated data), {peak_mib():.0f} MiB at the end (target <= 1536 MiB)")  # fmt: skip
    check = duck.set_index("contact_id").reindex(tables.contacts["contact_id"].astype(str))
    ours = metrics.set_index(tables.contacts["contact_id"].astype(str))
    for col, dcol in [("orders_count", "orders_count"), ("days_since_last_order",
                      "days_since_last_order"), ("orders(days=90, offset=0)", "o90"),
                      ("distinct(column=category, days=365)", "cat365"), ("f_score", "f_score"), ("r_score", "r_score"),
                      ("m_score", "m_score")]:  # fmt: skip
        a = pd.to_numeric(ours[col], errors="coerce").fillna(0).to_numpy(float)
        b = pd.to_numeric(check[dcol], errors="coerce").fillna(0).to_numpy(float)
        assert np.allclose(a, b), f"{col} differs from DuckDB"
    print("results agree with DuckDB on every contact (counts, days, windows, distinct, R, F, M)")


if __name__ == "__main__":
    main()
