"""A third-party connector, installed as a package, is found and used like a built-in one.

The plugin here is a real distribution on the import path (a ``dist-info``
folder with its ``entry_points.txt``), exactly what ``pip install`` leaves
behind, so this goes through ``importlib.metadata`` as a user's install would: a
real `segmerge` process finds it on ``PYTHONPATH``; the campaign then runs in this
process (tests/cli.py), the folder on its import path.
"""

from __future__ import annotations

import subprocess
import textwrap

from tests.cli import segmerge
from tests.workspaces import SEGMERGE, cli_env, install_plugin

PLUGIN = '''
"""A tiny shop API as a Segmerge source: three contacts."""
import pandas as pd
from segmerge.ports import ConnectorSettings, Source, Tables


class Settings(ConnectorSettings):
    shop: str


class TinyShop(Source):
    """Tiny shop: three contacts from a made-up API."""
    Settings = Settings

    def pull(self, since=None):
        return Tables(pd.DataFrame({
            "contact_id": ["a", "b", "c"],
            "email": ["a@x.fr", "b@x.fr", "c@x.fr"],
            "first_name": ["Ann", "Bob", "Cy"],
            "subscribed": [True, True, False],
        }))
'''


def test_installed_plugin_is_listed_and_runs_a_campaign(tmp_path, plugin_site):
    site = plugin_site
    install_plugin(site, "tinyshop_segmerge", PLUGIN, "tinyshop", "tinyshop_segmerge:TinyShop")
    env = cli_env(PYTHONPATH=str(site))
    listed = subprocess.run([SEGMERGE, "connectors"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if "tinyshop" in ln)
    assert "tinyshop_segmerge:TinyShop" in line and "source" in line

    root = tmp_path / "ws"
    segmerge("init", str(root), check=True)
    (root / "segrules" / "simple.yaml").write_text(
        "version: 1\nname: simple\nexclude: not subscribed\nsegments:\n"
        "  - name: zens\n    when: true\n"
    )
    with (root / "segmerge.toml").open("a") as fh:
        fh.write(
            textwrap.dedent("""
            [sources.boutique]
            connector = "tinyshop"
            shop = "demo"

            [campaigns.petite]
            source = "boutique"
            rules = "segrules/simple.yaml"
            templates = "templates/profils-vpc"
            destination = "outbox"
            push_tags = false
            """)
        )
    run = segmerge("run", "petite", "-w", str(root), "--as-of", "2026-12-01")
    assert run.returncode == 0, run.stdout + run.stderr
    sent = sorted(p.name for p in (root / "outbox" / "petite").rglob("*.eml"))
    assert sent == ["a-zens.eml", "b-zens.eml"]  # c is not subscribed

    # the plugin's own settings are checked like a built-in's: a typo is exit 2
    cfg = root / "segmerge.toml"
    cfg.write_text(cfg.read_text().replace('shop = "demo"', 'shopp = "demo"'))
    bad = segmerge("validate", "petite", "-w", str(root))
    assert bad.returncode == 2 and "boutique" in bad.stderr and "Traceback" not in bad.stderr
