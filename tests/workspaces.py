"""What the end-to-end tests build before they run the `segmerge` command.

A workspace made by `segmerge init` with a two-segment rule set and a plain
letter, for the platform tests; a command environment that never touches the
machine's keyring; and a plugin installed the way `pip install` leaves one
(a module and its `dist-info` with `entry_points.txt`), so that it is found
through importlib.metadata as a user's install would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SEGMERGE = str(Path(sys.executable).parent / "segmerge")

RULES = """\
version: 1
name: {name}
mode: first
exclude: not subscribed or email is null
segments:
  - name: vip
    when: {vip_when}
  - name: autres
    when: true
"""
LETTER = (
    "---\nsubject: Bonjour {{ contact.first_name }}\n---\n"
    "<p>Bonjour {{ contact.first_name }}</p><a href='{{ unsubscribe_url }}'>stop</a>\n"
)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a `segmerge` command: no keyring, wide tables, ``extra`` added."""
    return {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "COLUMNS": "200",
        **extra,
    }


def two_segment_workspace(
    root: Path, env: dict[str, str], name: str, vip_when: str, config: str
) -> None:
    """`segmerge init` in ``root``, the rule set ``segrules/<name>.yaml`` (vip, then
    autres), a default letter in ``templates/<name>``, and ``config`` (TOML) appended
    to segmerge.toml."""
    subprocess.run([SEGMERGE, "init", str(root)], check=True, capture_output=True, env=env)
    (root / "segrules" / f"{name}.yaml").write_text(RULES.format(name=name, vip_when=vip_when))
    letters = root / "templates" / name
    letters.mkdir(parents=True)
    (letters / "_default.html.j2").write_text(LETTER)
    with (root / "segmerge.toml").open("a") as fh:
        fh.write("\n" + textwrap.dedent(config))


def install_plugin(site: Path, module: str, code: str, name: str, target: str) -> None:
    """``module`` (its source ``code``) in ``site``, registered as connector ``name``."""
    (site / f"{module}.py").write_text(code, encoding="utf-8")
    dist = module.replace("_", "-")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[segmerge.connectors.v1]\n{name} = {target}\n")
