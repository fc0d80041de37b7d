"""The outbox: one .eml per message, atomic, idempotent, and failures reported, not raised."""

from __future__ import annotations

import email
import email.policy
import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.outbox import OutboxConnector, safe_name
from segmerge.errors import ConnectorError
from segmerge.mail.message import build_message, message_id_for
from segmerge.ports.connector import Action, ConnectorContext
from segmerge.render.templates import Rendered
from segmerge.workspace.storage import StorageError

LETTER = Rendered(
    "Zoé, bonjour",
    "",
    "<html><body><p>Bonjour</p></body></html>",
    "Bonjour",
    None,
    None,
    "t.html.j2",
)


def outbox(root: Path, path: str = "outbox") -> OutboxConnector:
    ctx = ConnectorContext(
        name="outbox", settings={"path": path}, root=root, config_file=root / "segmerge.toml"
    )
    return OutboxConnector(ctx)


def send(contact_id: str = "00042", segment: str = "fonceurs", key: str | None = None) -> Action:
    key = key or f"profils@2026-03-03|{contact_id}|send"
    msg = build_message(
        LETTER,
        to="zoe@example.fr",
        to_name=None,
        from_addr="b@boutique.fr",
        message_id=message_id_for(key, "boutique.fr"),
        unsubscribe_url="https://boutique.fr/u?t=1",
        date=datetime(2026, 3, 3, tzinfo=UTC),
    )
    payload = {
        "run_id": "profils@2026-03-03",
        "segment": segment,
        "to": "zoe@example.fr",
        "campaign": "profils",
    }
    return Action(key, "send", contact_id, payload, msg)


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_one_file_per_message_named_by_campaign_run_contact_and_segment(tmp_path):
    out = outbox(tmp_path).push([send("00042"), send("00043", "zens")])
    assert [o.status for o in out] == ["done", "done"]
    assert out[0].detail == "outbox/profils/profils@2026-03-03/00042-fonceurs.eml"
    assert files(tmp_path) == [
        "outbox/profils/profils@2026-03-03/00042-fonceurs.eml",
        "outbox/profils/profils@2026-03-03/00043-zens.eml",
    ]
    raw = (tmp_path / out[0].detail).read_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == message_id_for("profils@2026-03-03|00042|send", "boutique.fr")
    assert parsed["Subject"] == "Zoé, bonjour" and b"\r\n" in raw


def test_pushing_again_is_done_without_rewriting_the_file(tmp_path):
    box = outbox(tmp_path)
    first = box.push([send()])[0]
    target = tmp_path / first.detail
    before = (target.stat().st_ino, target.stat().st_mtime_ns, target.read_bytes())
    again = box.push([send()])[0]
    assert (again.status, again.detail) == ("done", first.detail)
    assert (target.stat().st_ino, target.stat().st_mtime_ns, target.read_bytes()) == before


def test_another_message_at_the_same_place_is_never_overwritten(tmp_path):
    box = outbox(tmp_path)
    box.push([send()])
    target = tmp_path / "outbox/profils/profils@2026-03-03/00042-fonceurs.eml"
    before = target.read_bytes()
    other = box.push([send(key="another-key")])[0]
    assert other.status == "failed" and "already holds another message" in other.detail
    assert target.read_bytes() == before


def test_unsafe_names_stay_inside_the_folder_and_stay_distinct(tmp_path):
    ids = ["../../etc/passwd", "jean/dupont", "jean_dupont", "Zoé", ".hidden", ""]
    out = outbox(tmp_path).push([send(i or "x", key=f"k{n}") for n, i in enumerate(ids[:-1])])
    assert all(o.status == "done" for o in out)
    names = [o.detail for o in out]
    assert all(n.startswith("outbox/profils/profils@2026-03-03/") for n in names)
    assert all("/" not in n.rsplit("/", 1)[1].removesuffix(".eml") for n in names)
    assert len(set(names)) == len(names)
    assert safe_name("jean_dupont") == "jean_dupont" and safe_name("jean/dupont") != "jean_dupont"
    assert safe_name("..").startswith("_~") and safe_name("Zoé").startswith("Zoe~")
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))


def test_a_full_disk_stops_the_push_naming_the_file_and_leaves_no_partial_file(
    tmp_path, monkeypatch
):
    box = outbox(tmp_path)

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError, match="No space left on device") as caught:
        box.push([send()])
    assert caught.value.file.endswith(".eml") and caught.value.exit_code == 1
    assert files(tmp_path) == []
    monkeypatch.undo()
    assert box.push([send()])[0].status == "done"  # and the retry works


def test_a_crash_between_write_and_rename_leaves_no_final_file_and_the_retry_cleans_up(
    tmp_path, monkeypatch
):
    box = outbox(tmp_path)
    target = tmp_path / "outbox/profils/profils@2026-03-03/00042-fonceurs.eml"
    real_replace = os.replace

    def killed(src, dst):
        raise KeyboardInterrupt  # stands for the process dying right there

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        box.push([send()])
    assert not target.exists()
    assert files(tmp_path) == ["outbox/profils/profils@2026-03-03/.00042-fonceurs.eml.tmp"]
    monkeypatch.setattr(os, "replace", real_replace)
    assert box.push([send()])[0].status == "done"
    assert files(tmp_path) == ["outbox/profils/profils@2026-03-03/00042-fonceurs.eml"]


def test_actions_the_outbox_cannot_do_fail_cleanly(tmp_path):
    box = outbox(tmp_path)
    tag = Action("k1", "tag", "00042", {"tag": "seg:x"})
    no_run = Action("k2", "send", "00042", {"segment": "s", "campaign": "c"}, send().message)
    out = box.push([tag, no_run])
    assert [o.status for o in out] == ["failed", "failed"]
    assert "cannot tag" in out[0].detail and "run_id" in out[1].detail
    assert box.accepts == frozenset({"send"}) and box.idempotent


def test_check_accepts_a_folder_that_can_be_created_without_creating_it(tmp_path):
    assert outbox(tmp_path, "sortie/messages").check() == []
    assert not (tmp_path / "sortie").exists()
    (tmp_path / "sortie").mkdir()
    assert outbox(tmp_path, "sortie").check() == []
    assert list((tmp_path / "sortie").iterdir()) == []  # the probe file is gone


def test_check_refuses_a_path_that_is_a_file(tmp_path):
    (tmp_path / "outbox").write_text("not a folder")
    with pytest.raises(ConnectorError) as e:
        outbox(tmp_path).check()
    assert e.value.field == "outbox.path" and "outbox" in str(e.value)
