"""A small real workspace for the state, lock and disk tests: a contacts file (the
source, which also takes the campaigns' tags back), an outbox, two campaigns."""

from __future__ import annotations

import email
import email.policy
import os
import sys
import textwrap
from pathlib import Path

from segmerge import workspace as wsmod
from segmerge.pipeline import RunOptions, RunSummary, run

SEGMERGE = str(Path(sys.executable).parent / "segmerge")
DAY1, DAY2, DAY3 = "2026-12-01", "2026-12-02", "2026-12-03"

RULES = """\
version: 1
name: {name}
mode: first
exclude: not subscribed or email is null
segments:
  - name: tous
    when: true
"""
LETTER = (
    "---\nsubject: Bonjour {{ contact.first_name }}\n---\n"
    "<p>Bonjour {{ contact.first_name }}</p><a href='{{ unsubscribe_url }}'>stop</a>\n"
)


def make_workspace(root: Path, contacts: int = 12, extra: str = "") -> Path:
    """``contacts`` subscribed contacts c1..cN; campaigns `news` and `promo`."""
    (root / "data").mkdir(parents=True)
    rows = [f"{i};c{i}@example.org;Prénom{i};true;" for i in range(1, contacts + 1)]
    (root / "data" / "contacts.csv").write_text(
        "contact_id;email;first_name;subscribed;tags\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    for name in ("news", "promo"):
        (root / "segrules").mkdir(exist_ok=True)
        (root / "segrules" / f"{name}.yaml").write_text(RULES.format(name=name))
        (root / "templates" / name).mkdir(parents=True)
        (root / "templates" / name / "_default.html.j2").write_text(LETTER)
    (root / "segmerge.toml").write_text(
        textwrap.dedent("""\
        timezone = "Europe/Paris"
        locale = "fr_FR"

        [mail]
        from = "La Boutique <bonjour@example.org>"
        unsubscribe_url = "https://example.org/u?token={token}"

        [sources.crm]
        connector = "files"
        path = "data"

        [destinations.outbox]
        connector = "outbox"
        path = "outbox"

        [campaigns.news]
        source = "crm"
        rules = "segrules/news.yaml"
        templates = "templates/news"
        destination = "outbox"
        tag_prefix = "news:"

        [campaigns.promo]
        source = "crm"
        rules = "segrules/promo.yaml"
        templates = "templates/promo"
        destination = "outbox"
        tag_prefix = "promo:"
        """)
        + textwrap.dedent(extra)
    )
    return root


def run_campaign(root: Path, campaign: str = "news", day: str = DAY1, **kw: object) -> RunSummary:
    return run(wsmod.load(root), campaign, RunOptions(as_of=day, **kw))  # type: ignore[arg-type]


def letters(root: Path, campaign: str = "news", day: str | None = None) -> dict[str, list[str]]:
    """Recipient address -> the run folders of the letters written to them."""
    out: dict[str, list[str]] = {}
    base = root / "outbox" / campaign
    for path in sorted(base.rglob("*.eml")) if base.exists() else []:
        run_dir = path.parent.name
        if day is not None and not run_dir.endswith(day):
            continue
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out.setdefault(str(msg["To"].addresses[0].addr_spec), []).append(run_dir)  # type: ignore[union-attr]
    return out


def unsubscribe_token(root: Path, address: str, campaign: str = "news") -> str:
    """The token in the List-Unsubscribe link of a letter sent to ``address``."""
    for path in sorted((root / "outbox" / campaign).rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if str(msg["To"].addresses[0].addr_spec) == address:  # type: ignore[union-attr]
            header = str(msg["List-Unsubscribe"])
            return header.split("token=", 1)[1].split(">", 1)[0].split(",", 1)[0]
    raise AssertionError(f"no letter to {address}")


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            "COLUMNS": "300"}  # fmt: skip
