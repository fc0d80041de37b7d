"""A generated shop for the segmentation benchmark: Parquet exports and a workspace reading them.

Why generated: the targets are set at 1 M / 10 M and 10 M / 100 M rows, which no
public data set of a shop has, and the same seed must give the same files on every
machine. The columns are those of a real export (string ids, e-mails, first names,
a tags cell, attributes a rule reads, order ids, shop statuses with some
cancellations and refunds, dates over three years), so the reader does the work a
user's files cost it, unused columns included.

Orders are written in chunks with pyarrow, so generating 100 M orders stays within
a few GiB; every draw depends on the seed and the chunk's number only.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
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
