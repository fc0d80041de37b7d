"""A small shop workspace for the order-status, unmatched-orders and validate tests.

Three files a user would have: contacts, orders (with the shop's own status
words) and a segmerge.toml with one `files` source, one campaign writing to an
outbox. Small enough that each test builds its own in a few milliseconds.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from cli import Ran, segmerge

AS_OF = "2026-12-01"

RULES = """\
version: 1
name: lettre
mode: first
segments:
  - name: vip
    when: revenue >= 100
  - name: autres
    when: true
"""
LETTER = "---\nsubject: Bonjour\n---\n<p>Bonjour</p><a href='{{ unsubscribe_url }}'>stop</a>\n"


def contacts_csv(ids: Sequence[str]) -> str:
    rows = [f"{i},c{i}@example.org,Client {i},oui" for i in ids]
    return "contact_id,email,first_name,subscribed\n" + "\n".join(rows) + "\n"


def orders_csv(orders: Sequence[tuple[str, str, float, str]]) -> str:
    """(order_id, contact_id, amount, status) rows, all ordered on 2026-06-01."""
    rows = [f"{o},{c},2026-06-01,{a},{s}" for o, c, a, s in orders]
    return "order_id,contact_id,ordered_at,amount,status\n" + "\n".join(rows) + "\n"


def shop(
    root: Path,
    contact_ids: Sequence[str],
    orders: Sequence[tuple[str, str, float, str]],
    *,
    source: str = "",
    extra: str = "",
) -> Path:
    """The workspace in ``root``: ``source`` (TOML lines) go into [sources.shop], ``extra``
    (TOML) at the end of the file."""
    data = root / "data"
    data.mkdir(parents=True)
    (data / "contacts.csv").write_text(contacts_csv(contact_ids), encoding="utf-8")
    (data / "orders.csv").write_text(orders_csv(orders), encoding="utf-8")
    (root / "segrules").mkdir()
    (root / "segrules" / "lettre.yaml").write_text(RULES, encoding="utf-8")
    (root / "templates" / "lettre").mkdir(parents=True)
    (root / "templates" / "lettre" / "_default.html.j2").write_text(LETTER, encoding="utf-8")
    config = f"""\
timezone = "Europe/Paris"
locale = "fr_FR"

[mail]
from = "Boutique <bonjour@example.org>"

[sources.shop]
connector = "files"
path = "data"
{textwrap.dedent(source)}
[destinations.outbox]
connector = "outbox"
path = "outbox"

[campaigns.lettre]
source = "shop"
rules = "segrules/lettre.yaml"
destination = "outbox"
{textwrap.dedent(extra)}"""
    (root / "segmerge.toml").write_text(config, encoding="utf-8")
    return root


def rules(root: Path) -> str:
    """The rule set's path as the command line takes it (relative to the current folder)."""
    return str(root / "segrules" / "lettre.yaml")


def sm(*args: str) -> Ran:
    """The `segmerge` command, through its entry point in this process (tests/cli.py)."""
    return segmerge(*args)
