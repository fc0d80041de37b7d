"""segmerge.ports is the whole plugin API: what it lists is what connectors use, connectors
use nothing else, old 0.1 paths still work (with a warning), and a destination that
declares nothing gets the documented defaults."""

from __future__ import annotations

import ast
import importlib
import sys
import textwrap
from pathlib import Path

import pytest

import segmerge.ports as ports
from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.ports import registry
from segmerge.run.push import push_in_batches
from tests.workspaces import install_plugin

ROOT = Path(__file__).resolve().parents[1]
CONNECTORS = sorted((ROOT / "connectors").glob("*.py"))
RUN = "c@2026-12-07"


def _segmerge_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import of segmerge in a file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "segmerge":
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "segmerge":
                    found.append((node.lineno, alias.name, []))
    return found


def test_every_name_of_all_resolves_once_and_star_import_gives_exactly_them():
    assert len(ports.__all__) == len(set(ports.__all__))
    missing = [n for n in ports.__all__ if not hasattr(ports, n)]
    assert missing == []
    star: dict[str, object] = {}
    exec("from segmerge.ports import *", star)
    assert sorted(k for k in star if k != "__builtins__") == sorted(ports.__all__)


def test_connectors_import_only_segmerge_ports():
    wrong = [
        f"{p.relative_to(ROOT)}:{line}: {module}"
        for p in CONNECTORS
        for line, module, _ in _segmerge_imports(p)
        if module != "segmerge.ports"
    ]
    assert wrong == [], "connectors import segmerge only through segmerge.ports:\n" + "\n".join(
        wrong
    )


def test_what_connectors_import_is_listed_and_is_the_engine_s_own_object():
    """A name a connector takes from segmerge.ports is part of the contract (in __all__),
    and it is the very object the engine uses (an isinstance or a monkeypatch agrees)."""
    used = {n for p in CONNECTORS for _, _, names in _segmerge_imports(p) for n in names}
    assert used, "the connectors import something"
    assert used - set(ports.__all__) == set()
    from segmerge.errors import BadAnswer
    from segmerge.ports.connector import Destination, Source
    from segmerge.ports.http import HttpClient
    from segmerge.ports.schema import Tables

    assert ports.Source is Source and ports.Destination is Destination
    assert ports.Tables is Tables and ports.HttpClient is HttpClient
    assert ports.BadAnswer is BadAnswer
    brevo = importlib.import_module("connectors.brevo")
    assert brevo.HttpClient is HttpClient and issubclass(brevo.BrevoConnector, Source)


OLD_PLUGIN = '''
"""A plugin written for Segmerge 0.1, with its flat import paths."""
import pandas as pd
from segmerge.connector import ConnectorSettings, Source
from segmerge.schema import Tables


class Settings(ConnectorSettings):
    shop: str


class OldShop(Source):
    Settings = Settings

    def pull(self, since=None):
        return Tables(pd.DataFrame({"contact_id": ["a"], "email": ["a@x.fr"]}))
'''


def test_a_plugin_on_the_old_paths_still_loads_pulls_and_is_warned(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "oldshop_segmerge", OLD_PLUGIN, "oldshop", "oldshop_segmerge:OldShop")
    monkeypatch.syspath_prepend(str(site))
    for name in ("segmerge.connector", "segmerge.schema", "oldshop_segmerge"):
        monkeypatch.delitem(sys.modules, name, raising=False)  # imported afresh: warned again
    importlib.invalidate_caches()
    ctx = ports.ConnectorContext("boutique", {"shop": "demo"}, tmp_path, tmp_path / "s.toml")
    with pytest.warns(DeprecationWarning) as warned:
        conn = registry.create("oldshop", ctx)
    said = sorted(str(w.message) for w in warned)
    assert said == [
        "segmerge.connector moved to segmerge.ports.connector; the old path goes in the next "
        "release",
        "segmerge.schema moved to segmerge.ports.schema; the old path goes in the next release",
    ]
    assert isinstance(conn, ports.Source)  # the old name is the new module, not a copy
    tables = ports.conform(conn.pull(), "boutique")  # type: ignore[attr-defined]
    assert tables.contacts["email"].tolist() == ["a@x.fr"]


class Bare(ports.Destination):
    """A destination that declares nothing but push."""

    accepts = frozenset({"tag"})

    def __init__(self, ctx: ports.ConnectorContext) -> None:
        super().__init__(ctx)
        self.sizes: list[int] = []

    def push(self, actions):
        self.sizes.append(len(actions))
        return [ports.Outcome(a.key, "done") for a in actions]


def _planned(tmp_path: Path, n: int) -> tuple[Ledger, list[ports.Action]]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.begin_run(RUN, "c", "2026-12-07")
    actions = [ports.Action(f"{RUN}|{i}|tag", "tag", str(i), {"tag": "seg:x"}) for i in range(n)]
    ledger.plan(
        RUN, [PlannedAction(a.key, a.contact_id, "tag", "d", "x", "seg:x") for a in actions]
    )
    return ledger, actions


def _ctx(tmp_path: Path) -> ports.ConnectorContext:
    return ports.ConnectorContext("d", {}, tmp_path, tmp_path / "segmerge.toml")


def test_a_destination_that_declares_nothing_gets_the_defaults_and_batches_of_100(tmp_path):
    dest = Bare(_ctx(tmp_path))
    assert (dest.batch_size, dest.concurrent_batches, dest.idempotent) == (100, 1, False)
    assert dest.merge_tag("first_name") is None
    dest.wait_ready(100)  # does not wait
    ledger, actions = _planned(tmp_path, 250)
    try:
        push_in_batches(ledger, dest, actions, "tag", None)
        assert dest.sizes == [100, 100, 50]
        assert ledger.counts(RUN) == {"tag": {"done": 250}}
    finally:
        ledger.close()


class Throttled(Bare):
    """A throttle: wait_ready notes how many of the run's actions were in flight then."""

    batch_size = 30

    def __init__(self, ctx: ports.ConnectorContext, ledger: Ledger, overlap: int) -> None:
        super().__init__(ctx)
        self.ledger = ledger
        self.concurrent_batches = overlap
        self.in_flight_at_wait: list[int] = []

    def wait_ready(self, count: int) -> None:
        flying = self.ledger.counts(RUN).get("tag", {}).get("in_flight", 0)
        self.in_flight_at_wait.append(flying)


@pytest.mark.parametrize("overlap", [1, 3])
def test_a_throttle_waits_before_its_batch_is_marked_in_flight(tmp_path, overlap):
    ledger, actions = _planned(tmp_path, 90)
    dest = Throttled(_ctx(tmp_path), ledger, overlap)
    try:
        push_in_batches(ledger, dest, actions, "tag", None)
        assert ledger.counts(RUN) == {"tag": {"done": 90}}
    finally:
        ledger.close()
    assert len(dest.in_flight_at_wait) == len(dest.sizes)  # once per batch
    if overlap == 1:  # one at a time: nothing is in flight while the throttle waits
        assert dest.in_flight_at_wait == [0] * len(dest.sizes)


def test_connectors_that_set_the_optional_features_keep_them():
    from connectors.hubspot import HubSpotConnector
    from connectors.mailchimp import MailchimpConnector
    from connectors.outbox import OutboxConnector

    assert MailchimpConnector.batch_size == 8_000 and MailchimpConnector.concurrent_batches == 5
    assert HubSpotConnector.batch_size == 10_000 and HubSpotConnector.concurrent_batches == 1
    assert OutboxConnector.batch_size == 200


def test_the_smtp_batch_size_comes_from_its_setting(tmp_path):
    from connectors.smtp import SmtpConnector

    ctx = ports.ConnectorContext(
        "relay", {"host": "127.0.0.1", "batch_size": 7}, tmp_path, tmp_path / "s.toml"
    )
    assert SmtpConnector(ctx).batch_size == 7
    default = ports.ConnectorContext("relay", {"host": "127.0.0.1"}, tmp_path, tmp_path / "s.toml")
    assert SmtpConnector(default).batch_size == 1


def test_importing_the_plugin_api_loads_neither_pandas_nor_the_connectors_libraries():
    """The engine imports segmerge.ports.* in every command: it pays for pandas when it
    builds a table, for requests and keyring only when a connector uses the HTTP client
    or names its credential's variable. Checked in a fresh interpreter, where nothing
    else loaded them first."""
    import subprocess

    code = textwrap.dedent("""
        import sys
        import segmerge.ports
        print(*[m for m in ("pandas", "requests", "keyring") if m in sys.modules])
        from segmerge.ports import HttpClient, secret_env_var
        print(HttpClient.__module__, secret_env_var("shop"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["", "segmerge.ports.http SEGMERGE_SHOP_TOKEN"]


class Drafts(ports.Destination):
    """Makes one draft per action; the sentence it writes need not name the id."""

    accepts = frozenset({"create_campaign"})

    def push(self, actions):
        return [
            ports.Outcome(a.key, "done", "draft ready in the platform", f"cmp-{i}")
            for i, a in enumerate(actions)
        ]


def test_a_draft_s_platform_id_travels_as_a_field_to_the_ledger_and_kpi(tmp_path):
    from segmerge.report.kpi import our_ids

    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.begin_run(RUN, "c", "2026-12-07")
        keys = [f"{RUN}|-|create_campaign:{seg}" for seg in ("vip", "zens")]
        ledger.plan(RUN, [PlannedAction(k, None, "create_campaign", "d", None, None) for k in keys])
        actions = [ports.Action(k, "create_campaign", None, {"name": k}) for k in keys]
        push_in_batches(ledger, Drafts(_ctx(tmp_path)), actions, "drafts", None)
        assert ledger.platform_ids(RUN, "create_campaign") == {"cmp-0", "cmp-1"}
        assert our_ids(ledger, "c", RUN) == {"c", RUN, "cmp-0", "cmp-1"}


def test_an_old_ledger_keeps_the_draft_ids_its_details_named(tmp_path):
    """A ledger from before the field: each vendor's old sentence gives its draft's id
    once, when the column is added (Mailchimp's too, which the old reading missed)."""
    path = tmp_path / "ledger.sqlite"
    old = {
        "mailchimp": ("draft campaign 7f3a2 created (not sent)", "7f3a2"),
        "hubspot": ("draft e-mail 1234567 created", "1234567"),
        "brevo": ("draft 42 created for list 'seg:vip'", "42"),
    }
    with Ledger(path) as ledger:
        ledger.begin_run(RUN, "c", "2026-12-07")
        ledger.plan(
            RUN,
            [
                PlannedAction(f"{RUN}|-|create_campaign:{v}", None, "create_campaign", v, v, None)
                for v in old
            ],
        )
        ledger.record([(f"{RUN}|-|create_campaign:{v}", "done", d) for v, (d, _) in old.items()])
        ledger.db.execute("ALTER TABLE actions DROP COLUMN platform_id")  # as 0.1 wrote it
    with Ledger(path) as ledger:
        assert ledger.platform_ids(RUN, "create_campaign") == {i for _, i in old.values()}
