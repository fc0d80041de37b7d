"""Progress that survives a late failure: each pulled stream is kept with its own cursor.

A platform source reads contacts, then orders, then events, and says when each is
complete (``ctx.stream_done``). What a user gets: a push or an events stream that
fails does not make the next run read everything again; a pull that fails before
any stream is complete changes nothing; a source with one cursor for everything,
and a snapshot kept before per-stream cursors existed, keep working.
"""

from __future__ import annotations

import json
import textwrap
from typing import ClassVar

import pandas as pd
import pytest

from segmerge.errors import ConnectorError
from segmerge.ports import registry
from segmerge.ports.connector import Action, ConnectorSettings, Destination, Outcome, Source
from segmerge.ports.schema import Tables, conform
from segmerge.run.pipeline import RunOptions, run
from segmerge.segment.cache import Snapshot
from segmerge.segment.segmentation import open_source, pull_source, source_fingerprint
from segmerge.workspace import config as wsmod

STREAMS = ("contacts", "orders", "events")
UTC = "UTC"


class Shop:
    """The platform: rows carry the number of the pull after which they changed."""

    def __init__(self) -> None:
        day = pd.Timestamp("2026-11-01", tz=UTC)
        self.contacts = {
            str(i): {
                "email": f"c{i}@exemple.fr",
                "subscribed": True,
                "niveau": "or" if i % 2 else "argent",
                "v": 0,
            }
            for i in range(1, 7)
        }
        self.orders = [
            {
                "order_id": f"o{i}",
                "contact_id": str(i),
                "ordered_at": day,
                "amount": 10.0 * i,
                "v": 0,
            }
            for i in range(1, 4)
        ]
        self.events = [{"contact_id": "1", "campaign_id": "k1", "event": "open", "at": day, "v": 0}]
        self.given: list[tuple[str | None, dict[str, str]]] = []  # (since, ctx.cursors)
        self.fail_at: str | None = None  # the stream whose read fails
        self.per_stream = True  # False: one cursor for everything, no stream_done
        self.push_fails = False

    def rows(self, stream: str, start: str | None) -> pd.DataFrame:
        after = int(start.rsplit("@", 1)[1]) if start else -1
        if stream == "contacts":
            rows = [{"contact_id": k, **c} for k, c in self.contacts.items()]
        else:
            rows = self.orders if stream == "orders" else self.events
        frame = pd.DataFrame([r for r in rows if r["v"] > after])
        if frame.empty:
            frame = pd.DataFrame(columns=[k for k in rows[0] if k != "v"])
        return frame.drop(columns=["v"], errors="ignore")

    def change(self, contact: str) -> None:
        """The contact moves to "argent" after the pulls so far: the next pull sees it."""
        self.contacts[contact] = {
            **self.contacts[contact],
            "niveau": "argent",
            "v": len(self.given) + 1,
        }


SHOP: Shop


class StreamsSettings(ConnectorSettings):
    account: str = "boutique"


class StreamsConnector(Source, Destination):
    Settings = StreamsSettings
    accepts: ClassVar[frozenset[str]] = frozenset({"tag", "untag"})
    idempotent = True

    def pull(self, since: str | None = None) -> Tables:
        SHOP.given.append((since, dict(self.ctx.cursors)))
        n = len(SHOP.given)
        frames, cursors = {}, {}
        for stream in STREAMS:
            if SHOP.fail_at == stream:
                raise ConnectorError(f"shop: GET /{stream} timed out after 6 attempt(s)")
            start = self.ctx.cursors.get(stream, since)
            frames[stream] = SHOP.rows(stream, start)
            if SHOP.per_stream:
                cursors[stream] = f"{stream}@{n}"
                self.ctx.stream_done(stream, frames[stream], cursors[stream])
        incremental = self.ctx.cursors.get("contacts", since) is not None
        return Tables(
            frames["contacts"],
            frames["orders"],
            frames["events"],
            cursor=f"all@{n}",
            incremental=incremental,
            cursors=cursors,
        )

    def push(self, actions: list[Action]) -> list[Outcome]:
        if SHOP.push_fails:
            raise ConnectorError("shop: POST /tags answered 503 6 time(s), giving up")
        return [Outcome(a.key, "done") for a in actions]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    global SHOP
    SHOP = Shop()
    real = registry.load_class
    monkeypatch.setattr(
        registry,
        "load_class",
        lambda name, **kw: StreamsConnector if name == "streams" else real(name, **kw),
    )
    (tmp_path / "segrules").mkdir()
    (tmp_path / "segrules" / "niveaux.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        name: niveaux
        mode: first
        segments:
          - name: or
            when: niveau == 'or'
          - name: argent
            when: true
        """),
        encoding="utf-8",
    )
    (tmp_path / "templates" / "niveaux").mkdir(parents=True)
    (tmp_path / "templates" / "niveaux" / "_default.html.j2").write_text(
        '---\nsubject: "Bonjour"\n---\n<p><a href="{{ unsubscribe_url }}">x</a></p>\n',
        encoding="utf-8",
    )
    (tmp_path / "segmerge.toml").write_text(
        textwrap.dedent("""\
        timezone = "Europe/Paris"
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?t={token}"
        [sources.shop]
        connector = "streams"
        [campaigns.niveaux]
        source = "shop"
        rules = "segrules/niveaux.yaml"
        destination = "shop"
        tag_prefix = "seg:"
        """),
        encoding="utf-8",
    )
    return wsmod.load(tmp_path)


def pull(ws, *, keep: bool = True) -> Tables:
    src = open_source(ws, "shop")
    try:
        return pull_source(ws, src, keep=keep)
    finally:
        src.close()


def kept(ws) -> dict[str, bytes]:
    folder = ws.state_dir / "snapshots" / "shop"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_a_push_that_fails_does_not_make_the_next_run_pull_everything_again(ws):
    SHOP.push_fails = True
    with pytest.raises(ConnectorError, match="POST /tags answered 503"):
        run(ws, "niveaux", RunOptions(as_of="2026-12-01"))
    SHOP.push_fails = False
    SHOP.change("3")
    summary = run(ws, "niveaux", RunOptions(as_of="2026-12-02"))
    first = {s: f"{s}@1" for s in STREAMS}
    assert SHOP.given == [(None, {}), ("all@1", first)]  # not a second full pull
    assert any(
        "incremental pull since contacts@1: 1 contact(s) changed" in n for n in summary.notes
    )
    assert summary.pulled == {"contacts": 6, "orders": 3, "events": 1}  # the whole base
    assert summary.segments == {"or": 2, "argent": 4}


def test_a_failed_events_stream_keeps_what_came_before_and_resumes_each_stream(ws):
    pull(ws)
    SHOP.change("3")
    SHOP.events.append(
        {
            "contact_id": "3",
            "campaign_id": "k2",
            "event": "click",
            "at": pd.Timestamp("2026-11-20", tz=UTC),
            "v": 2,
        }
    )
    SHOP.fail_at = "events"
    with pytest.raises(ConnectorError, match="GET /events timed out"):
        pull(ws)
    snap = Snapshot(ws.state_dir, "shop").load()
    assert snap is not None and len(snap.contacts) == 6  # the delta merged into the base
    assert snap.contacts.set_index("contact_id").at["3", "niveau"] == "argent"
    SHOP.fail_at = None
    tables = pull(ws)
    assert SHOP.given[2] == (
        "all@1",
        {"contacts": "contacts@2", "orders": "orders@2", "events": "events@1"},
    )
    assert len(tables.contacts) == 6 and len(tables.orders) == 3
    assert sorted(tables.events["event"]) == ["click", "open"]  # each once


def test_a_pull_that_fails_before_any_stream_is_complete_changes_nothing(ws):
    pull(ws)
    before = kept(ws)
    SHOP.change("2")
    SHOP.fail_at = "contacts"
    with pytest.raises(ConnectorError):
        pull(ws)
    assert kept(ws) == before and set(before) == {f"{s}.pkl" for s in STREAMS} | {"manifest.json"}


def test_a_first_pull_cut_short_resumes_the_streams_it_finished(ws):
    SHOP.fail_at = "events"
    with pytest.raises(ConnectorError):
        pull(ws)
    SHOP.fail_at = None
    tables = pull(ws)
    assert SHOP.given[1] == (None, {"contacts": "contacts@1", "orders": "orders@1"})
    assert len(tables.contacts) == 6 and len(tables.orders) == 3  # kept base + empty delta
    assert len(tables.events) == 1  # read whole: it never completed


def test_a_source_with_one_cursor_for_everything_keeps_working(ws):
    SHOP.per_stream = False
    pull(ws)
    SHOP.change("4")
    tables = pull(ws)
    assert SHOP.given == [(None, {}), ("all@1", {})]
    assert len(tables.contacts) == 6
    assert tables.contacts.set_index("contact_id").at["4", "niveau"] == "argent"


def test_a_snapshot_kept_before_per_stream_cursors_still_loads(ws):
    whole = conform(
        Tables(SHOP.rows("contacts", None), SHOP.rows("orders", None), SHOP.rows("events", None)),
        source="shop",
    )
    folder = ws.state_dir / "snapshots" / "shop"
    folder.mkdir(parents=True)
    for name, frame in (
        ("contacts", whole.contacts),
        ("orders", whole.orders),
        ("events", whole.events),
    ):
        frame.to_pickle(folder / f"{name}.pkl")
    manifest = {
        "cursor": "all@0",
        "fingerprint": source_fingerprint(ws, "shop"),
        "saved_at": pd.Timestamp.now(tz=UTC).isoformat(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    SHOP.change("5")
    tables = pull(ws)
    assert SHOP.given == [("all@0", {})]
    assert len(tables.contacts) == 6
    assert tables.contacts.set_index("contact_id").at["5", "niveau"] == "argent"
    m = Snapshot(ws.state_dir, "shop").manifest()
    assert m is not None and m.cursor == "all@1" and m.streams["events"].cursor == "events@1"


def test_a_pull_that_keeps_nothing_writes_nothing(ws):
    pull(ws, keep=False)  # segment, validate, a dry run
    assert not (ws.state_dir / "snapshots").exists()
    run(ws, "niveaux", RunOptions(as_of="2026-12-01", dry_run=True))
    assert not (ws.state_dir / "snapshots").exists()


def test_changed_settings_void_the_streams_kept_under_the_old_ones(ws):
    pull(ws)
    cfg = ws.config_file
    cfg.write_text(
        cfg.read_text().replace('connector = "streams"', 'connector = "streams"\naccount = "autre"')
    )
    SHOP.fail_at = "orders"
    with pytest.raises(ConnectorError):
        pull(wsmod.load(ws.root))
    m = Snapshot(ws.state_dir, "shop").manifest()
    assert m is not None and set(m.streams) == {"contacts"} and m.cursor is None
    assert set(kept(ws)) == {"contacts.pkl", "manifest.json"}


def test_a_stream_last_read_whole_a_week_ago_is_read_whole_again_however_often_merged(ws):
    """Deletions (a contact erased on the platform) only show in a whole read: daily
    incremental runs must not put it off for ever."""
    pull(ws)
    pull(ws)  # merged yesterday: kept recently, but last read whole long ago
    path = ws.state_dir / "snapshots" / "shop" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    week_ago = (pd.Timestamp.now(tz=UTC) - pd.Timedelta(days=8)).isoformat()
    manifest["streams"]["contacts"]["full_at"] = week_ago
    manifest["full_at"] = week_ago
    path.write_text(json.dumps(manifest), encoding="utf-8")
    del SHOP.contacts["6"]  # erased on the platform
    tables = pull(ws)
    assert SHOP.given[2] == (None, {"orders": "orders@2", "events": "events@2"})
    assert sorted(tables.contacts["contact_id"]) == ["1", "2", "3", "4", "5"]
    m = Snapshot(ws.state_dir, "shop").manifest()
    assert m is not None and m.age_days() < 1 and m.streams["contacts"].cursor == "contacts@3"
    assert m.streams["orders"].full_at < m.streams["contacts"].full_at  # merged, not reread
