"""`segment` opens its source and runs the source's checks while the engine imports
(segmerge.cli.early): the source is opened once, by that early start, and whatever the
early start meets is still said by the command as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli import segmerge as sm

from segmerge.segment import opened, segmentation
from tests.demo_fixtures import first_contacts

AS_OF = "2026-12-01"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("early") / "ws"
    sm("init", str(root), check=True)
    return first_contacts(root, 200)


def _counting(monkeypatch, module) -> list[str]:
    calls: list[str] = []
    real = opened.open_source

    def counted(ws, name):
        calls.append(name)
        return real(ws, name)

    monkeypatch.setattr(module, "open_source", counted)
    return calls


def test_segment_reads_the_source_opened_early_and_writes_the_same_rows(
    demo, tmp_path, monkeypatch
) -> None:
    rules = str(demo / "segrules" / "rfm.yaml")
    base = ["segment", rules, "-w", str(demo), "--as-of", AS_OF, "--format", "csv"]
    before = sm(*base, "--out", str(tmp_path / "before.csv"), check=True)
    early = _counting(monkeypatch, opened)  # the early start's thread
    late = _counting(monkeypatch, segmentation)  # the command's own opening
    after = sm(*base, "--out", str(tmp_path / "after.csv"), check=True)
    assert (early, late) == (["demo"], [])
    assert (tmp_path / "after.csv").read_bytes() == (tmp_path / "before.csv").read_bytes()
    assert after.stdout.replace("after.csv", "") == before.stdout.replace("before.csv", "")


def test_a_source_the_early_start_cannot_open_is_reported_by_the_command(demo) -> None:
    rules = str(demo / "segrules" / "rfm.yaml")
    ran = sm("segment", rules, "-w", str(demo), "--source", "nope", "--as-of", AS_OF)
    assert ran.returncode == 2
    assert "no source 'nope'" in ran.stderr + ran.stdout
    assert "Traceback" not in ran.stderr


def test_a_connector_failing_in_the_early_start_is_opened_again_and_said(demo, monkeypatch) -> None:
    """The early thread's failure is dropped; the command's own opening says it."""
    calls: list[str] = []
    late = _counting(monkeypatch, segmentation)

    def broken(ws, name):
        calls.append(name)
        raise RuntimeError("the early start failed")

    monkeypatch.setattr(opened, "open_source", broken)
    rules = str(demo / "segrules" / "rfm.yaml")
    ran = sm("segment", rules, "-w", str(demo), "--as-of", AS_OF, check=True)
    assert (calls, late) == (["demo"], ["demo"])
    assert "(none)" in ran.stdout
