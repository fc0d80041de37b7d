"""A/B variants and holdouts: deterministic, stable across runs, balanced, recorded, honoured."""

from __future__ import annotations

import email
import sqlite3
import textwrap
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli import Ran, segmerge

from segmerge.render.variants import assign, unit_hash
from segmerge.run.pipeline import RunOptions, run
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"


def test_groups_are_a_pure_function_of_campaign_and_contact():
    ids = pd.Series([f"{i:05d}" for i in range(20_000)])
    segs = pd.Series(["s"] * len(ids))
    hold, var = assign(ids, segs, "profils", 0.1, {"s": ["A", "B"]})
    # balanced: 10 % held out (± 6 sigma), the variants split evenly, also outside the holdout
    assert abs(hold.mean() - 0.1) < 6 * np.sqrt(0.1 * 0.9 / len(ids))
    share_a = (var[~hold] == "A").mean()
    assert abs(share_a - 0.5) < 6 * np.sqrt(0.25 / (~hold).sum())
    # stable: another order, another base around the same contacts, same groups
    order = np.random.default_rng(1).permutation(len(ids))
    bigger = pd.concat([ids.iloc[order], pd.Series(["new1", "new2"])], ignore_index=True)
    hold2, var2 = assign(bigger, pd.Series(["s"] * len(bigger)), "profils", 0.1, {"s": ["A", "B"]})
    assert (hold2[: len(ids)] == hold[order]).all()
    assert (var2.iloc[: len(ids)].to_numpy() == var.iloc[order].to_numpy()).all()
    # another campaign reshuffles: a test never inherits another test's groups
    _, other = assign(ids, segs, "rfm", 0.1, {"s": ["A", "B"]})
    assert 0.4 < (other == var).mean() < 0.6
    assert (unit_hash(ids, "x") == unit_hash(ids, "x")).all()


def workspace(root: Path, *, holdout: float = 0.0, variants: str = "files") -> wsmod.Workspace:
    data = root / "data"
    data.mkdir(parents=True)
    rows = ["contact_id,email,first_name,subscribed"]
    rows += [f"{i:04d},c{i}@exemple.fr,Prénom{i},oui" for i in range(200)]
    (data / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "segrules").mkdir()
    (root / "segrules" / "test.yaml").write_text(
        "version: 1\nname: test\nexclude: not subscribed\nsegments:\n"
        "  - name: tous\n    when: true\n",
        encoding="utf-8",
    )
    tpl = root / "templates" / "test"
    tpl.mkdir(parents=True)
    if variants == "files":
        for v in ("A", "B"):
            (tpl / f"tous.{v}.html.j2").write_text(
                f'---\nsubject: "Offre {v}"\n---\n<p>Lettre {v} pour {{{{ contact.first_name }}}}'
                "</p>\n",
                encoding="utf-8",
            )
    elif variants == "subjects":
        (tpl / "tous.html.j2").write_text(
            '---\nsubject: "Défaut"\nsubject.A: "Sujet court"\nsubject.B: "Un sujet bien plus '
            'long, {{ contact.first_name }}"\n---\n<p>Bonjour</p>\n',
            encoding="utf-8",
        )
    (root / "segmerge.toml").write_text(
        textwrap.dedent(f"""\
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?t={{token}}"
        [sources.fichiers]
        connector = "files"
        path = "data"
        [destinations.outbox]
        connector = "outbox"
        path = "outbox"
        [campaigns.test]
        source = "fichiers"
        rules = "segrules/test.yaml"
        destination = "outbox"
        holdout = {holdout}
        """),
        encoding="utf-8",
    )
    return wsmod.load(root)


def messages(root: Path) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in (root / "outbox").rglob("*.eml")]


def subject(m: email.message.Message) -> str:
    return str(make_header(decode_header(m["Subject"])))


def test_letter_variants_are_sent_recorded_and_stable(tmp_path):
    ws = workspace(tmp_path / "ws")
    run(ws, "test", RunOptions(as_of=AS_OF))
    msgs = messages(ws.root)
    assert len(msgs) == 200
    by_variant = {v: [m for m in msgs if m["X-Segmerge-Variant"] == v] for v in ("A", "B")}
    assert all(subject(m) == "Offre A" and "Lettre A" in m.as_string() for m in by_variant["A"])
    assert 60 < len(by_variant["A"]) < 140 and len(by_variant["A"]) + len(by_variant["B"]) == 200
    with sqlite3.connect(ws.state_dir / "ledger.sqlite") as db:
        first = dict(db.execute("SELECT contact_id, variant FROM actions WHERE kind='send'"))
    # the next day's run keeps everyone in their group
    later = datetime.now(UTC) + timedelta(days=1)  # sent a day later: under the daily cap
    run(ws, "test", RunOptions(as_of="2026-12-02", now=later))
    with sqlite3.connect(ws.state_dir / "ledger.sqlite") as db:
        second = dict(
            db.execute(
                "SELECT contact_id, variant FROM actions WHERE kind='send' "
                "AND run_id='test@2026-12-02'"
            )
        )
    assert second == first


def test_subject_only_variants(tmp_path):
    ws = workspace(tmp_path / "ws", variants="subjects")
    run(ws, "test", RunOptions(as_of=AS_OF))
    subjects = {m["X-Segmerge-Variant"]: subject(m) for m in messages(ws.root)}
    assert subjects["A"] == "Sujet court"
    assert subjects["B"].startswith("Un sujet bien plus long, Prénom")


def test_holdout_gets_nothing_and_is_recorded(tmp_path):
    ws = workspace(tmp_path / "ws", holdout=0.25)
    s = run(ws, "test", RunOptions(as_of=AS_OF))
    held = s.not_mailed["holdout (control group)"]
    assert 25 < held < 75
    assert len(messages(ws.root)) == 200 - held
    with sqlite3.connect(ws.state_dir / "ledger.sqlite") as db:
        n = db.execute("SELECT COUNT(*) FROM actions WHERE status='holdout'").fetchone()[0]
    assert n == held


def validate(root: Path) -> Ran:
    return segmerge("validate", "-w", str(root))


def test_a_variant_without_its_twin_is_exit_2(tmp_path):
    ws = workspace(tmp_path / "ws")
    (ws.root / "templates" / "test" / "tous.B.html.j2").unlink()
    out = validate(ws.root)
    assert out.returncode == 2 and "tous.A.html.j2" in out.stderr and "no twin" in out.stderr


def test_a_lone_subject_variant_is_exit_2(tmp_path):
    ws = workspace(tmp_path / "ws", variants="subjects")
    f = ws.root / "templates" / "test" / "tous.html.j2"
    f.write_text(
        f.read_text().replace(
            'subject.B: "Un sujet bien plus long, {{ contact.first_name }}"\n', ""
        )
    )
    out = validate(ws.root)
    assert out.returncode == 2 and "subject.A" in out.stderr and "no twin" in out.stderr


@pytest.mark.parametrize("share", ["0.6", "-0.1"])
def test_holdout_outside_0_to_50_percent_is_exit_2(tmp_path, share):
    ws = workspace(tmp_path / "ws")
    cfg = ws.root / "segmerge.toml"
    cfg.write_text(cfg.read_text().replace("holdout = 0.0", f"holdout = {share}"))
    out = validate(ws.root)
    assert out.returncode == 2 and "holdout" in out.stderr and "Traceback" not in out.stderr


def test_contacts_in_no_segment_do_not_break_the_assignment():
    ids = pd.Series(["a", "b", "c"])
    segs = pd.Series(["s", pd.NA, "s"], dtype="string")
    hold, var = assign(ids, segs, "c", 0.0, {"s": ["A", "B"]})
    assert var.iloc[1] is None and set(var.iloc[[0, 2]]) <= {"A", "B"} and not hold.any()
