"""What the end-to-end tests build before they run the `segmerge` command.

A workspace made by `segmerge init` (in this process) with a two-segment rule set and a plain
letter, for the platform tests; a command environment that never touches the
machine's keyring; and a plugin installed the way `pip install` leaves one
(a module and its `dist-info` with `entry_points.txt`), so that it is found
through importlib.metadata as a user's install would be.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from cli import SCRIPT, script_env, segmerge

SEGMERGE = SCRIPT  # the console script, for the tests that need a real process

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
    """The environment of a `segmerge` process: no keyring, wide tables, ``extra`` added."""
    return script_env(**extra)


def two_segment_workspace(
    root: Path, env: dict[str, str], name: str, vip_when: str, config: str
) -> None:
    """`segmerge init` in ``root``, the rule set ``segrules/<name>.yaml`` (vip, then
    autres), a default letter in ``templates/<name>``, and ``config`` (TOML) appended
    to segmerge.toml."""
    segmerge("init", str(root), env=env, check=True)
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
