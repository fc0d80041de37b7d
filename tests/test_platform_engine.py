"""The engine's side of platform connectors, with an in-memory platform.

What the vendor connectors rely on and cannot test alone: incremental pulls
merged into the local snapshot, tags and list memberships diffed against what
the platform holds (only prefixed names touched), one draft campaign per
segment rendered with the platform's merge tags, `--dry-run` writing nothing,
and a repeated run pushing nothing twice.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from segmerge.errors import ConnectorError
from segmerge.ports import registry
from segmerge.ports.connector import Action, ConnectorSettings, Destination, Outcome, Source
from segmerge.ports.schema import Tables
from segmerge.run.pipeline import RunOptions, run
from segmerge.segment.cache import merge
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"


class Platform:
    """The platform's state, shared by the connector instances of one test."""

    def __init__(self) -> None:
        now = pd.Timestamp("2026-11-01", tz="UTC")
        self.contacts = {
            str(i): {
                "email": f"c{i}@exemple.fr",
                "first_name": f"prénom{i}",
                "last_name": "Martin",
                "subscribed": True,
                "niveau": "or" if i % 2 else "argent",
                "updated_at": now,
                "tags": ["vip"] if i == 1 else [],
                "lists": [],
            }
            for i in range(1, 7)
        }
        self.pulls: list[str | None] = []
        self.pushed: list[Action] = []
        self.drafts: dict[str, dict] = {}
        self.prepared: list[tuple[list[str], int]] = []  # (kinds, actions pushed by then)
        self.prepare_fails = False

    def tables(self, since: str | None) -> Tables:
        rows = [
            {"contact_id": cid, "created_at": pd.Timestamp("2025-01-01", tz="UTC"), **c}
            for cid, c in self.contacts.items()
            if since is None or c["updated_at"] > pd.Timestamp(since)
        ]
        contacts = (
            pd.DataFrame(rows)
            if rows
            else pd.DataFrame(
                columns=[
                    "contact_id",
                    "email",
                    "first_name",
                    "last_name",
                    "subscribed",
                    "created_at",
                    "updated_at",
                    "tags",
                    "niveau",
                    "lists",
                ]
            )
        )
        t = Tables(contacts)
        t.cursor = max(c["updated_at"] for c in self.contacts.values()).isoformat()
        t.incremental = since is not None
        return t


PLATFORM: Platform


class MemorySettings(ConnectorSettings):
    base_url: str = "memory://"


class MemoryConnector(Source, Destination):
    Settings = MemorySettings
    accepts: ClassVar[frozenset[str]] = frozenset(
        {"tag", "untag", "add_to_list", "remove_from_list", "create_campaign"}
    )
    idempotent = True

    def pull(self, since: str | None = None) -> Tables:
        PLATFORM.pulls.append(since)
        return PLATFORM.tables(since)

    def merge_tag(self, column: str) -> str | None:
        return {
            "first_name": "{{ contact.PRENOM }}",
            "email": "{{ contact.EMAIL }}",
            "unsubscribe_url": "{{ unsubscribe }}",
        }.get(column)

    def prepare(self, actions: Sequence[Action]) -> None:
        PLATFORM.prepared.append((sorted({a.kind for a in actions}), len(PLATFORM.pushed)))
        if PLATFORM.prepare_fails:
            raise ConnectorError("shop: the platform did not answer in time")

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        out = []
        for a in actions:
            PLATFORM.pushed.append(a)
            c = PLATFORM.contacts.get(a.contact_id or "")
            if a.kind == "tag":
                c["tags"] = [*c["tags"], a.payload["tag"]]
            elif a.kind == "untag":
                c["tags"] = [t for t in c["tags"] if t != a.payload["tag"]]
            elif a.kind == "add_to_list":
                c["lists"] = [*c["lists"], a.payload["list"]]
            elif a.kind == "remove_from_list":
                c["lists"] = [t for t in c["lists"] if t != a.payload["list"]]
            elif a.kind == "create_campaign":
                PLATFORM.drafts.setdefault(a.payload["name"], a.payload)
            out.append(Outcome(a.key, "done"))
        return out


@pytest.fixture
def ws(tmp_path, monkeypatch):
    global PLATFORM
    PLATFORM = Platform()
    real = registry.load_class
    monkeypatch.setattr(
        registry,
        "load_class",
        lambda name, **kw: MemoryConnector if name == "memory" else real(name, **kw),
    )
    (tmp_path / "segrules").mkdir()
    (tmp_path / "segrules" / "niveaux.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        name: niveaux
        mode: first
        exclude: not subscribed
        segments:
          - name: or
            when: niveau == 'or'
          - name: argent
            when: true
        """),
        encoding="utf-8",
    )
    tpl = tmp_path / "templates" / "niveaux"
    tpl.mkdir(parents=True)
    (tpl / "_default.html.j2").write_text(
        textwrap.dedent("""\
        ---
        subject: "Bonjour {{ contact.first_name | capitalize_name }}"
        ---
        <p>Bonjour {{ contact.first_name | capitalize_name }},</p>
        {% if contact.orders_count is defined %}<p>{{ contact.orders_count }}</p>{% endif %}
        <p><a href="{{ unsubscribe_url }}">Se désinscrire</a></p>
        """),
        encoding="utf-8",
    )
    (tmp_path / "segmerge.toml").write_text(
        textwrap.dedent("""\
        timezone = "Europe/Paris"
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?t={token}"
        [sources.shop]
        connector = "memory"
        [campaigns.niveaux]
        source = "shop"
        rules = "segrules/niveaux.yaml"
        destination = "shop"
        tag_prefix = "seg:"
        """),
        encoding="utf-8",
    )
    return wsmod.load(tmp_path)


def test_dry_run_shows_changes_by_segment_and_pushes_nothing(ws):
    summary = run(ws, "niveaux", RunOptions(as_of=AS_OF, dry_run=True))
    assert summary.changes == {
        "or": {"tag": 3, "add_to_list": 3, "create_campaign": 1},
        "argent": {"tag": 3, "add_to_list": 3, "create_campaign": 1},
    }
    assert summary.drafts == ["niveaux 2026-12-01 · or", "niveaux 2026-12-01 · argent"]
    assert PLATFORM.pushed == [] and PLATFORM.prepared == []  # not even got ready
    assert not (ws.state_dir / "snapshots").exists()
    assert not (ws.state_dir / "ledger.sqlite").exists()


def test_run_pushes_tags_lists_and_one_draft_per_segment_with_merge_tags(ws):
    run(ws, "niveaux", RunOptions(as_of=AS_OF))
    c = PLATFORM.contacts
    assert c["1"]["tags"] == ["vip", "seg:or"]  # the marketer's own tag is kept
    assert c["2"]["tags"] == ["seg:argent"] and c["2"]["lists"] == ["seg:argent"]
    draft = PLATFORM.drafts["niveaux 2026-12-01 · or"]
    assert draft["subject"] == "Bonjour {{ contact.PRENOM }}"
    assert "Bonjour {{ contact.PRENOM }}," in draft["html"]
    assert 'href="{{ unsubscribe }}"' in draft["html"]
    assert "prénom" not in draft["html"]  # nobody's personal data in a letter for everyone
    assert draft["list"] == "seg:or" and draft["from_email"] == "bonjour@boutique.fr"
    assert draft["members"] == 3


def test_each_platform_gets_ready_for_its_actions_before_any_is_pushed(ws):
    """A first run's new tags can be created while the ledger writes the plan: every
    phase's actions reach prepare() before the first push of the run."""
    run(ws, "niveaux", RunOptions(as_of=AS_OF))
    assert PLATFORM.prepared == [(["tag"], 0), (["add_to_list"], 0), (["create_campaign"], 0)]


def test_a_preparation_that_fails_leaves_the_push_to_do_the_work(ws):
    PLATFORM.prepare_fails = True
    summary = run(ws, "niveaux", RunOptions(as_of=AS_OF))
    assert summary.failed == 0
    assert PLATFORM.contacts["2"]["tags"] == ["seg:argent"]
    assert len(PLATFORM.drafts) == 2


def test_second_run_pulls_incrementally_and_moves_only_who_changed(ws):
    run(ws, "niveaux", RunOptions(as_of=AS_OF))
    assert PLATFORM.pulls == [None]
    PLATFORM.pushed.clear()
    # contact 3 moves from "or" to "argent", on the platform, after the first pull
    PLATFORM.contacts["3"].update(niveau="argent", updated_at=pd.Timestamp("2026-11-20", tz="UTC"))
    summary = run(ws, "niveaux", RunOptions(as_of="2026-12-02"))
    assert PLATFORM.pulls[1] == "2026-11-01T00:00:00+00:00"
    assert any("incremental pull" in n and "1 contact(s) changed" in n for n in summary.notes)
    moved = sorted(
        (a.kind, a.payload.get("tag") or a.payload.get("list"))
        for a in PLATFORM.pushed
        if a.contact_id == "3"
    )
    assert moved == [
        ("add_to_list", "seg:argent"),
        ("remove_from_list", "seg:or"),
        ("tag", "seg:argent"),
        ("untag", "seg:or"),
    ]
    assert {a.contact_id for a in PLATFORM.pushed if a.contact_id} == {"3"}
    assert summary.segments == {"or": 2, "argent": 4}  # the merged base, not only the delta


def test_same_day_again_pushes_nothing_twice(ws):
    run(ws, "niveaux", RunOptions(as_of=AS_OF))
    n = len(PLATFORM.pushed)
    again = run(ws, "niveaux", RunOptions(as_of=AS_OF))
    assert len(PLATFORM.pushed) == n
    assert again.resumed


def test_full_refresh_ignores_the_cursor(ws):
    run(ws, "niveaux", RunOptions(as_of=AS_OF))
    run(ws, "niveaux", RunOptions(as_of="2026-12-02", full_refresh=True))
    assert PLATFORM.pulls == [None, None]


def test_letter_needing_a_segmerge_value_is_not_made_a_draft(ws):
    tpl = ws.root / "templates" / "niveaux"
    (tpl / "or.html.j2").write_text(
        '---\nsubject: "Vos {{ contact.orders_count }} commandes"\n---\n<p>x</p>\n',
        encoding="utf-8",
    )
    summary = run(ws, "niveaux", RunOptions(as_of=AS_OF))
    assert "niveaux 2026-12-01 · or" not in PLATFORM.drafts
    assert "niveaux 2026-12-01 · argent" in PLATFORM.drafts
    assert any("draft or" in e and "orders_count" in e for e in summary.render_errors)


def test_merge_upserts_contacts_and_appends_events():
    base = Tables(
        pd.DataFrame({"contact_id": ["1", "2"], "x": [1, 2]}),
        pd.DataFrame({"order_id": ["a"], "amount": [1.0]}),
        pd.DataFrame(
            {
                "contact_id": ["1"],
                "campaign_id": ["c"],
                "event": ["open"],
                "at": [pd.Timestamp("2026-01-01", tz="UTC")],
            }
        ),
    )
    delta = Tables(
        pd.DataFrame({"contact_id": ["2", "3"], "x": [20, 30]}),
        pd.DataFrame({"order_id": ["a", "b"], "amount": [5.0, 2.0]}),
        pd.concat([base.events, base.events.assign(event="click")]),
    )
    delta.cursor = "c2"
    m = merge(base, delta)
    assert dict(zip(m.contacts.contact_id, m.contacts.x, strict=True)) == {"1": 1, "2": 20, "3": 30}
    assert dict(zip(m.orders.order_id, m.orders.amount, strict=True)) == {"a": 5.0, "b": 2.0}
    assert sorted(m.events.event) == ["click", "open"]
    assert m.cursor == "c2"


def test_snapshot_survives_only_if_settings_unchanged(ws, tmp_path):
    run(ws, "niveaux", RunOptions(as_of=AS_OF))
    cfg = Path(ws.config_file)
    cfg.write_text(
        cfg.read_text().replace(
            'connector = "memory"', 'connector = "memory"\nbase_url = "memory://other"'
        )
    )
    run(wsmod.load(ws.root), "niveaux", RunOptions(as_of="2026-12-02"))
    assert PLATFORM.pulls == [None, None]
