"""`validate` for the sources no campaign uses, and which source a command read.

A source nobody segments yet is still the one a user is setting up: its
mapping mistakes (orders that link to nobody, status words nobody knows) must
show at `validate`, not at the first campaign that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segmerge.i18n import _, ngettext, number
from segmerge.ports.connector import PullInstead
from segmerge.ports.schema import Tables
from segmerge.segment import order_rules as source_rules
from segmerge.segment.segmentation import open_source, pull_source
from segmerge.workspace.config import Workspace


@dataclass
class SourceCheck:
    """One source read the way a campaign would read it, nothing written."""

    name: str
    checks: list[str]
    tables: Tables  # as pulled, with the engine's notes and warnings
    counted_orders: int
    #: (contacts, orders, events) counted by a database source, whose rows stay there
    sizes: tuple[int, int, int] | None = None

    def summary(self) -> str:
        t = self.tables
        n_contacts, n_orders, n_events = self.sizes or (
            len(t.contacts),
            len(t.orders),
            len(t.events),
        )
        orders = ngettext("{n} order", "{n} orders", n_orders).format(n=number(n_orders))
        if self.counted_orders != n_orders:
            counted = ngettext("{n} counted", "{n} counted", self.counted_orders)
            orders += f" ({counted.format(n=number(self.counted_orders))})"
        contacts = ngettext("{n} contact", "{n} contacts", n_contacts)
        events = ngettext("{n} event", "{n} events", n_events)
        return f"{contacts.format(n=number(n_contacts))}, {orders}, " + events.format(
            n=number(n_events)
        )


def unused_sources(ws: Workspace) -> list[str]:
    used = {c.source for c in ws.config.campaigns.values()}
    return [name for name in ws.config.sources if name not in used]


def check_source(ws: Workspace, name: str) -> SourceCheck:
    """Settings, credentials and a pull, with the engine's order rules; raises like `segment`."""
    src = open_source(ws, name)
    try:
        checks = [str(c) for c in src.check()]
        if src.needs_secret:  # where the credential came from, as a campaign's check says
            checks.append(f"{name}: credential from {src.ctx.secret_origin() or 'nowhere'}")
        if src.dialect is not None:  # counted where the rows are
            from segmerge.segment.in_database import count_in_database

            try:
                c = count_in_database(ws, name, src)
            except PullInstead:  # counts the source cannot vouch for: the pull says why
                pass
            else:
                sizes = (c.contacts, c.orders, c.events)
                return SourceCheck(name, checks, c.tables, c.counted_orders, sizes)
        tables = pull_source(ws, src)
    finally:
        src.close()
    shown, counted = source_rules.apply(ws, name, tables)
    return SourceCheck(name, checks, shown, len(counted.orders))


def default_source_reason(ws: Workspace, rules_path: Path, name: str) -> str:
    """Why `segment`/`explain` without ``--source`` read ``name`` (see default_source_for)."""
    for cname, c in ws.config.campaigns.items():
        if c.source == name and ws.path(c.rules).resolve() == rules_path.resolve():
            return _(
                "source {name}, the source of campaign {campaign} (--source to choose)"
            ).format(name=name, campaign=cname)
    return _("source {name}, the workspace's only source (--source to choose)").format(name=name)
