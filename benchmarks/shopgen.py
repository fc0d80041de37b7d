"""A generated shop for the segmentation benchmark: Parquet exports and a workspace reading them.

Why generated: the targets are set at 1 M / 10 M and 10 M / 100 M rows, which no
public data set of a shop has, and the same seed must give the same files on every
machine. The columns are those of a real export (string ids, e-mails, first names,
a tags cell, attributes a rule reads, order ids, shop statuses with some
cancellations and refunds, dates over three years), so the reader does the work a
user's files cost it, unused columns included.

Orders are written in chunks with pyarrow, so generating 100 M orders stays within
a few GiB; every draw depends on the seed and the chunk's position only.

The shop's rule set lives here with its twin, :func:`peer_query`, the same job written
by hand in DuckDB SQL, so that a change to one is made next to the other.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TZ_NAME = "Europe/Paris"
AS_OF = "2026-12-01"
SEED = 20260101
CHUNK = 2_000_000  # rows per generated chunk (and Parquet row group)

FIRST_NAMES = ["Camille", "Léa", "Hugo", "Inès", "Louis", "Zoé", "Jules", "Chloé", "Marc", "Anne"]
CITIES = ["Paris", "Lyon", "Marseille", "Toulouse", "Nice", "Nantes", "Villeurbanne", "Lille"]
CATEGORIES = ["jazz", "classique", "rock", "livres", "jardin", "cuisine", "jeux", "mode"]
#: WooCommerce's words; cancelled and refunded orders never count (segment/order_status.py)
STATUSES = ["completed", "processing", "on-hold", "cancelled", "refunded"]
STATUS_WEIGHTS = [0.86, 0.05, 0.02, 0.05, 0.02]
NOT_COUNTED = ("cancelled", "refunded")

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
#: the metrics written next to each contact's segment, by us and by the peer
COLUMNS = ["orders_count", "revenue", "last_order_at", "r_score", "f_score", "m_score"]

LETTER = """\
---
subject: "{{ contact.first_name | default('Bonjour') }}, des nouvelles de la boutique"
---
<p>Bonjour {{ contact.first_name | default('') }},</p>
<p>Segment {{ segment.name }} : {{ contact.orders_count }} commandes,
{{ contact.revenue | money }} depuis votre inscription.</p>
<p><a href="{{ unsubscribe_url }}">Se désabonner</a></p>
"""


@dataclass(frozen=True)
class Size:
    contacts: int
    orders: int


SIZES = {
    "tiny": Size(1_000, 10_000),
    "small": Size(10_000, 100_000),
    "default": Size(1_000_000, 10_000_000),
    "huge": Size(10_000_000, 100_000_000),
}


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _pick(choices: list[str], rng: np.random.Generator, n: int, p: list[float] | None = None):
    return pa.array(choices).take(pa.array(rng.choice(len(choices), n, p=p)))


def _contacts(start: int, n: int, rng: np.random.Generator) -> pa.Table:
    ids = _ids("C", np.arange(start, start + n), 8)
    tag_draw = rng.random(n)
    tags = np.where(tag_draw < 0.02, "vip", np.where(tag_draw < 0.03, "vip|newsletter", ""))
    tags = np.where((tag_draw >= 0.03) & (tag_draw < 0.15), "newsletter", tags)
    age = rng.integers(18, 86, n)
    created = _instants(rng.integers(3 * 365 * 86_400, 6 * 365 * 86_400, n))
    return pa.table(
        {
            "contact_id": ids,
            "email": pc.if_else(
                pa.array(rng.random(n) < 0.01),
                None,
                pc.binary_join_element_wise(ids, "@example.org", ""),
            ),
            "first_name": _pick(FIRST_NAMES, rng, n),
            "subscribed": pa.array(rng.random(n) > 0.07),
            "created_at": created,
            "tags": pa.array(tags),
            "age": pa.array(age, mask=rng.random(n) < 0.05),
            "city": _pick(CITIES, rng, n),
        }
    )


def _instants(seconds_before_end: np.ndarray) -> pa.Array:
    """Whole-second UTC instants counted back from a few days after as_of."""
    end = (
        int(datetime.fromisoformat(AS_OF).replace(tzinfo=ZoneInfo(TZ_NAME)).timestamp())
        + 5 * 86_400
    )
    values = (end - seconds_before_end) * 1_000_000
    return pa.array(values, type=pa.timestamp("us", tz="UTC"))


def _orders(
    start: int, n: int, owner: np.ndarray, n_contacts: int, rng: np.random.Generator
) -> pa.Table:
    owner_ids = _ids("C", owner, 8)
    unknown = pa.array(rng.random(n) < 0.002)  # a few orders of deleted customers
    owner_ids = pc.if_else(unknown, _ids("X", owner, 8), owner_ids)
    span = 3 * 365 * 86_400
    return pa.table(
        {
            "order_id": _ids("O", np.arange(start, start + n), 10),
            "contact_id": owner_ids,
            "ordered_at": _instants(rng.integers(0, span, n)),
            "amount": pa.array(np.round(rng.gamma(2.0, 30.0, n), 2)),
            "status": _pick(STATUSES, rng, n, STATUS_WEIGHTS),
            "category": _pick(CATEGORIES, rng, n),
        }
    )


def generate(folder: Path, size: Size, seed: int = SEED) -> tuple[Path, Path]:
    """contacts.parquet and orders.parquet in ``folder``: skewed order counts, about 20 %
    of contacts without orders, 0.2 % of orders naming nobody, 7 % cancelled or refunded."""
    folder.mkdir(parents=True, exist_ok=True)
    contacts_path, orders_path = folder / "contacts.parquet", folder / "orders.parquet"
    rng = np.random.default_rng(seed)
    weights = (rng.pareto(1.5, size.contacts) + 0.1) * (rng.random(size.contacts) > 0.2)
    cdf = np.cumsum(weights / weights.sum())
    del weights
    writer = None
    for start in range(0, size.contacts, CHUNK):
        n = min(CHUNK, size.contacts - start)
        table = _contacts(start, n, np.random.default_rng([seed, 1, start]))
        writer = writer or pq.ParquetWriter(contacts_path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    writer = None
    for start in range(0, size.orders, CHUNK):
        n = min(CHUNK, size.orders - start)
        chunk_rng = np.random.default_rng([seed, 2, start])
        owner = np.minimum(np.searchsorted(cdf, chunk_rng.random(n)), size.contacts - 1)
        table = _orders(start, n, owner, size.contacts, chunk_rng)
        writer = writer or pq.ParquetWriter(orders_path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return contacts_path, orders_path


def workspace(root: Path) -> Path:
    """A workspace whose `files` source reads the Parquet files in ``root/data``, with the
    benchmark's rule set and one campaign (a short letter) writing to an outbox."""
    (root / "segrules").mkdir(parents=True, exist_ok=True)
    (root / "segrules" / "bench.yaml").write_text(RULES, encoding="utf-8")
    letters = root / "templates" / "bench"
    letters.mkdir(parents=True, exist_ok=True)
    (letters / "_default.html.j2").write_text(LETTER, encoding="utf-8")
    config = f"""\
        timezone = "{TZ_NAME}"
        locale = "fr_FR"
        currency = "EUR"

        [mail]
        from = "Boutique <bonjour@example.org>"
        unsubscribe_url = "https://example.org/stop?token={{token}}"

        [sources.shop]
        connector = "files"
        path = "data"
        contacts = "contacts.parquet"
        orders = "orders.parquet"

        [destinations.outbox]
        connector = "outbox"
        path = "outbox"

        [campaigns.bench]
        source = "shop"
        rules = "segrules/bench.yaml"
        templates = "templates/bench"
        destination = "outbox"
        """
    (root / "segmerge.toml").write_text(textwrap.dedent(config), encoding="utf-8")
    return root


# The same job by hand in DuckDB SQL: the benchmark's peer, kept next to the rule set
# it must match (tests/test_benchmark_segment.py checks that it does).

#: R (rows) by FM (columns), as segmerge/metrics/rfm.py's GRID, written out again here
GRID = [
    ["lost", "hibernating", "at_risk", "at_risk", "cannot_lose"],
    ["hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"],
    ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
    ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    ["new", "potential_loyalist", "potential_loyalist", "champions", "champions"],
]


def as_of_utc() -> str:
    """Midnight starting as_of in the workspace's zone, as a UTC literal."""
    local = datetime.fromisoformat(AS_OF).replace(tzinfo=ZoneInfo(TZ_NAME))
    return pd.Timestamp(local).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S+00")


def peer_query(data: Path, extra: str = "") -> str:
    """The whole job as one SELECT: one row per contact, its segment and metrics.

    Windows are DuckDB's calendar arithmetic in the session's TimeZone (the same wall
    time N days earlier); day counts compare local dates; sums are rounded to 6
    decimals and quintiles count strictly worse contacts, as ours do.
    """
    now = f"TIMESTAMPTZ '{as_of_utc()}'"
    b = {d: f"({now} - INTERVAL {d} DAY)" for d in (90, 180, 360, 365)}
    grid = ", ".join(f"'{name}'" for row in GRID for name in row)
    skip = ", ".join(f"'{s}'" for s in NOT_COUNTED)
    return f"""
WITH c AS (
  SELECT contact_id, email, subscribed, tags, age, city{extra}
  FROM read_parquet('{data / "contacts.parquet"}')
), o AS (
  SELECT contact_id, ordered_at, amount, category FROM read_parquet('{data / "orders.parquet"}')
  WHERE status NOT IN ({skip}) AND ordered_at <= {now}
), agg AS (
  SELECT contact_id, count(*) AS orders_count, round(sum(amount), 6) AS revenue,
    max(ordered_at) AS last_order_at,
    round(coalesce(sum(amount) FILTER (WHERE ordered_at > {b[365]}), 0), 6) AS rev365,
    count(*) FILTER (WHERE ordered_at > {b[365]}) AS o365,
    count(*) FILTER (WHERE ordered_at > {b[90]}) AS o90,
    count(*) FILTER (WHERE ordered_at > {b[180]}) AS o180,
    count(*) FILTER (WHERE ordered_at > {b[360]} AND ordered_at <= {b[180]}) AS o180_180,
    count(DISTINCT category) FILTER (WHERE ordered_at > {b[365]} AND category <> '') AS cat365
  FROM o SEMI JOIN c USING (contact_id) GROUP BY contact_id
), scored AS (
  SELECT *, date_diff('day', CAST(last_order_at AS DATE), CAST({now} AS DATE)) AS days_since,
    1 + (5 * (rank() OVER (ORDER BY days_since DESC) - 1)) // count(*) OVER () AS r_score,
    1 + (5 * (rank() OVER (ORDER BY orders_count) - 1)) // count(*) OVER () AS f_score,
    1 + (5 * (rank() OVER (ORDER BY revenue) - 1)) // count(*) OVER () AS m_score
  FROM agg
), m AS (
  SELECT c.*, coalesce(s.orders_count, 0) AS orders_count, coalesce(s.revenue, 0) AS revenue,
    s.last_order_at, s.r_score, s.f_score, s.m_score, s.days_since,
    coalesce(s.rev365, 0) AS rev365, coalesce(s.o365, 0) AS o365, coalesce(s.o90, 0) AS o90,
    coalesce(s.o180, 0) AS o180, coalesce(s.o180_180, 0) AS o180_180,
    coalesce(s.cat365, 0) AS cat365, s.revenue / s.orders_count AS avg_basket,
    [{grid}][(s.r_score - 1) * 5 + (s.f_score + s.m_score + 1) // 2] AS rfm_segment
  FROM c LEFT JOIN scored s USING (contact_id)
)
SELECT contact_id, CASE
    WHEN NOT subscribed OR email IS NULL THEN ''
    WHEN (rev365 >= 1500 AND o365 >= 6) OR list_contains(string_split(tags, '|'), 'vip')
      THEN 'vip'
    WHEN o90 >= 3 AND avg_basket > 80 THEN 'fonceurs'
    WHEN cat365 >= 4 THEN 'decouvreurs'
    WHEN o180 < o180_180 AND orders_count >= 3 THEN 'a_risque'
    WHEN days_since >= 180 AND rfm_segment IN ('at_risk', 'cannot_lose', 'hibernating')
      THEN 'reconquete'
    WHEN city IN ('Lyon', 'Villeurbanne') AND age BETWEEN 25 AND 45 THEN 'lyonnais'
    ELSE '' END AS segment,
  {", ".join(COLUMNS)}{extra}
FROM m"""


#: the peers' scripts: argv[1] sets the session's zone, argv[2] is peer_query(), then
#: the output file and COPY's options ("(HEADER)" for CSV, "(FORMAT parquet)")
PEER_SEGMENT = """\
import sys, duckdb
con = duckdb.connect()
con.execute(sys.argv[1])
options = sys.argv[4] if len(sys.argv) > 4 else "(HEADER)"
con.execute(f"COPY ({sys.argv[2]}) TO '{sys.argv[3]}' {options}")
"""

PEER_RUN = """\
import sys, duckdb, jinja2
con = duckdb.connect()
con.execute(sys.argv[1])
env = jinja2.Environment(autoescape=True)
env.filters["money"] = lambda v: f"{v:,.2f} €".replace(",", " ").replace(".", ",")
subject, body = (env.from_string(t) for t in sys.argv[3:5])
reader = con.execute(f"SELECT * FROM ({sys.argv[2]}) WHERE segment <> ''").to_arrow_reader(100_000)
letters = 0
for batch in reader:
    for row in batch.to_pylist():
        contact = {k: v for k, v in row.items() if v is not None}
        seg = {"name": row["segment"]}
        url = "https://example.org/stop?token=" + row["contact_id"]
        letters += len(subject.render(contact=contact, segment=seg))
        letters += len(body.render(contact=contact, segment=seg, unsubscribe_url=url))
print(letters)
"""
SET_ZONE = f"SET TimeZone = '{TZ_NAME}'"


def _read(path: Path) -> pd.DataFrame:
    """A CSV or Parquet output, empty cells and segments as NaN."""
    if path.suffix == ".parquet":
        frame = pq.read_table(path).to_pandas()
        frame["segment"] = frame["segment"].replace("", None)
        frame["last_order_at"] = frame["last_order_at"].astype(str).replace("NaT", None)
        return frame
    types = {"contact_id": str, "segment": str}
    return pd.read_csv(path, dtype=types, keep_default_na=False, na_values=[""])


def compare(ours_csv: Path, peer_csv: Path) -> int:
    """Assert both files give every contact the same segment and metrics; return the count."""
    a, b = _read(ours_csv), _read(peer_csv)
    assert a["contact_id"].is_unique and len(a) == len(b), (len(a), len(b))
    a, b = (f.sort_values("contact_id", ignore_index=True) for f in (a, b))
    assert (a["contact_id"] == b["contact_id"]).all(), "different contacts"
    seg_a, seg_b = a["segment"].fillna(""), b["segment"].fillna("")
    differ = seg_a != seg_b
    assert not differ.any(), (
        f"{differ.sum()} segments differ, e.g.\n{a[differ].head()}\n{b[differ].head()}"
    )
    for col in COLUMNS:
        if col == "last_order_at":
            x, y = (pd.to_datetime(f[col], utc=True, format="ISO8601") for f in (a, b))
            assert ((x == y) | (x.isna() & y.isna())).all(), col
        else:
            x, y = (f[col].to_numpy(dtype=float) for f in (a, b))
            assert np.allclose(x, y, rtol=1e-12, atol=1e-9, equal_nan=True), f"{col} differs"
    return len(a)


def letter_parts() -> tuple[str, str]:
    """The benchmark letter's subject and body templates, front matter taken apart."""
    _, front, body = LETTER.split("---\n", 2)
    subject = front.split("subject:", 1)[1].strip().strip('"')
    return subject, body
