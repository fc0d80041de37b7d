"""A run keeps only the contact columns and metrics it reads, and its letters stay the same.

At a million contacts the columns no letter, consent, tag or rule reads were some
180 MiB of the run's frame (segmerge.run.columns). The oracle: the same run on the
same Parquet files segmented by pandas (every column kept): the same messages, the
same tags written back, the same day's assignment kept for `report`.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from segmerge.run.campaign import open_campaign
from segmerge.run.columns import letter_columns
from segmerge.workspace.config import load
from tests.cli import segmerge

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import shopgen  # noqa: E402


def _folder(root: Path, files: dict[str, str]) -> Path:
    letters = root / "templates" / "camp"
    for name, text in files.items():
        path = root / "templates" / name if name.startswith("_shared/") else letters / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return letters


def test_the_columns_of_every_letter_partial_and_subject_are_found(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "_default.html.j2": '---\nsubject: "{{ contact.city }}"\n---\n'
            '{% include "_foot.html.j2" %}{{ contact.first_name | default("") }}',
            "vip.html.j2": "{{ contact['orders(days=90, offset=0)'] }} {{ segment.name }}",
            "_shared/_foot.html.j2": "{% if contact.age is defined %}{{ contact.age }}{% endif %}",
        },
    )
    assert letter_columns(folder) == {"city", "first_name", "orders(days=90, offset=0)", "age"}


@pytest.mark.parametrize(
    "use",
    [
        "{{ hello(contact) }}",  # handed whole to a macro: it may read anything
        "{% set c = contact %}{{ c.city }}",
        "{{ contact[field] }}",  # a name only known when rendering
        "{{ contact | tojson }}",
    ],
)
def test_contact_used_whole_keeps_every_column(tmp_path: Path, use: str) -> None:
    assert letter_columns(_folder(tmp_path, {"_default.html.j2": use})) is None


def _shop(root: Path, data: Path) -> Path:
    shopgen.workspace(root)
    shutil.copytree(data, root / "data")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop") / "data"
    shopgen.generate(folder, shopgen.Size(60, 600))
    return folder


def _set_pandas(root: Path) -> None:
    config = root / "segmerge.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('connector = "files"\n', 'connector = "files"\nengine = "pandas"\n')
    )


def _letters(root: Path) -> dict[str, bytes]:
    """Each message as written, but its Date (the second it was made)."""
    return {
        p.name: re.sub(rb"\r\nDate: [^\r]*", b"", p.read_bytes())
        for p in sorted((root / "outbox").rglob("*.eml"))
    }


def test_a_run_on_parquet_keeps_few_columns_and_makes_the_same_letters(
    tmp_path: Path, data: Path
) -> None:
    lean, full = _shop(tmp_path / "lean", data), _shop(tmp_path / "full", data)
    _set_pandas(full)
    camp = open_campaign(load(lean), "bench", as_of=shopgen.AS_OF, lean=True)
    try:
        kept = set(camp.seg.frame.columns)
    finally:
        camp.close()
    assert {"first_name", "orders_count", "revenue", "email", "tags"} <= kept
    assert not {"avg_basket", "r_score", "age", "city", "rfm_segment"} & kept

    said = [
        segmerge("run", "bench", "--dry-run", "--as-of", shopgen.AS_OF, "-w", str(root))
        for root in (lean, full)
    ]
    assert said[0].returncode == 0, said[0].stderr
    lines = [r.stdout.replace("─", "").replace(" ", "").splitlines() for r in said]
    pulled = ("│pulledorders", "│pulledevents")  # pandas pulls them, DuckDB reads them
    assert [x for x in lines[0] if not x.startswith(pulled)] == [
        x for x in lines[1] if not x.startswith(pulled)
    ]
    assert any(x.startswith("│woulddo:tag│") for x in lines[0]), said[0].stdout

    for root in (lean, full):
        if root is full:  # the same key signs the same unsubscribe links
            (full / ".segmerge").mkdir()
            shutil.copy2(lean / ".segmerge" / "signing.key", full / ".segmerge" / "signing.key")
        ran = segmerge("run", "bench", "--as-of", shopgen.AS_OF, "-w", str(root))
        assert ran.returncode == 0, ran.stderr
    letters = _letters(lean)
    assert len(letters) > 15
    assert letters == _letters(full)
    # the tags written back into the shop's own Parquet file, its other columns untouched
    tags = [pd.read_parquet(root / "data" / "contacts.parquet") for root in (lean, full)]
    assert tags[0]["tags"].str.contains("seg:", regex=False).sum() > 15
    pd.testing.assert_frame_equal(tags[0], tags[1])
    source = pd.read_parquet(data / "contacts.parquet")
    pd.testing.assert_frame_equal(tags[0].drop(columns="tags"), source.drop(columns="tags"))
    # the values the rules read, kept for `report`'s movements
    name = ".segmerge/assignments/bench.parquet"
    got, want = pd.read_parquet(lean / name), pd.read_parquet(full / name)
    assert {"v:orders(days=90, offset=0)", "v:city", "v:tags"} <= set(got.columns)
    pd.testing.assert_frame_equal(got, want)
