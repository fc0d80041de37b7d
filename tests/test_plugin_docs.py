"""docs/plugins.md's example connector is real: installed as a package, it runs a campaign.

The code is taken from the page itself, so the guide cannot drift from what
works: it is listed by `segmerge connectors`, validated, pulled, segmented,
mailed to the outbox, and its tags are pushed back to its journal; a second
run of the same day pushes nothing again, and a broken export is exit 2 with
the file named. The commands run in this process (tests/cli.py), the plugin's folder
on its import path; tests/test_plugins.py lists a plugin from a real process.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli import segmerge as cli
from tests.workspaces import install_plugin

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def block(marker: str, lang: str) -> str:
    """The fenced block of ``lang`` in the guide whose text contains ``marker``."""
    for m in re.finditer(rf"```{lang}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S):
        if marker in m.group(1):
            return m.group(1)
    raise AssertionError(f"no ```{lang} block with {marker!r} in {GUIDE}")


def install(site: Path) -> None:
    code = block("# file: shopjson_segmerge.py", "python")
    name, target = re.search(
        r'^(\w+) = "([\w.:]+)"', block("segmerge.connectors.v1", "toml"), re.M
    ).groups()
    install_plugin(site, "shopjson_segmerge", code, name, target)


def test_the_guide_names_every_name_of_the_plugin_api_and_its_example_uses_only_it():
    """Every name of ``segmerge.ports.__all__`` is described on the page (a name added to
    the API without a word in the guide fails here), and the example imports nothing of
    segmerge but ``segmerge.ports``."""
    import segmerge.ports

    text = GUIDE.read_text(encoding="utf-8")
    undocumented = [n for n in segmerge.ports.__all__ if f"`{n}`" not in text]
    assert undocumented == []
    code = block("# file: shopjson_segmerge.py", "python")
    imported = re.findall(r"^(?:from|import) (segmerge[\w.]*)", code, re.M)
    assert imported == ["segmerge.ports"]


def test_the_guide_s_connector_runs_a_campaign_and_takes_its_tags_back(tmp_path, plugin_site):
    install(plugin_site)
    listed = cli("connectors")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if "shopjson" in ln)
    assert "source" in line and "destination" in line

    root = tmp_path / "ws"
    assert cli("init", str(root)).returncode == 0
    (root / "data").mkdir(exist_ok=True)
    export = root / "data" / "clients.json"
    export.write_text(
        json.dumps(
            [
                {"id": 1, "email": "lea@exemple.fr", "prenom": "Léa", "optin": True},
                {"id": 2, "email": "marc@exemple.fr", "prenom": "Marc", "optin": True},
                {"id": 3, "email": "ines@exemple.fr", "prenom": "Inès", "optin": False},
            ]
        ),
        encoding="utf-8",
    )
    (root / "segrules" / "simple.yaml").write_text(
        "version: 1\nname: simple\nexclude: not subscribed\nsegments:\n"
        "  - name: zens\n    when: true\n"
    )
    with (root / "segmerge.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n" + block("[sources.boutique]", "toml"))

    assert cli("validate", "petite", "-w", str(root)).returncode == 0
    for _ in range(2):  # the same day twice: the second run completes nothing new
        run = cli("run", "petite", "-w", str(root), "--as-of", "2026-12-01")
        assert run.returncode == 0, run.stdout + run.stderr
    sent = sorted(p.name for p in (root / "outbox" / "petite").rglob("*.eml"))
    assert sent == ["1-zens.eml", "2-zens.eml"]  # Inès did not opt in
    journal = [json.loads(x) for x in (root / "tags.jsonl").read_text().splitlines()]
    assert sorted((e["contact_id"], e["kind"], e["tag"]) for e in journal) == [
        ("1", "tag", "seg:zens"),
        ("2", "tag", "seg:zens"),
    ]

    # a run on another day pulls the tags back from the journal: nothing to push again
    again = cli("run", "petite", "-w", str(root), "--as-of", "2026-12-08")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len((root / "tags.jsonl").read_text().splitlines()) == 2

    export.write_text('[{"id": 1,', encoding="utf-8")
    broken = cli("run", "petite", "-w", str(root), "--as-of", "2026-12-15")
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "clients.json:1: not JSON" in broken.stderr, broken.stderr  # file and line
    assert "Traceback" not in broken.stderr
    assert len(broken.stderr.strip().splitlines()) <= 3, broken.stderr  # one clear message
