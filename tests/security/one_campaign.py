"""The smallest real workspace the security tests share: a contacts file as the source
(`crm`, in `data/`), an outbox as the destination, one campaign `news` whose letter
greets the contact and carries the unsubscribe link.

Each test file adds only what its attack needs (more campaigns, a `.env`, hostile
contact data), so a change to how a workspace is laid out is made here once.
"""

from __future__ import annotations

from pathlib import Path

CONFIG = """\
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
"""

LETTER = (
    "---\nsubject: Bonjour {{ contact.first_name }}\n---\n"
    "<p>Bonjour {{ contact.first_name }}</p><a href='{{ unsubscribe_url }}'>stop</a>\n"
)


def rules(
    name: str = "news",
    segments: tuple[tuple[str, str], ...] = (("tous", "true"),),
    exclude: str = "not subscribed or email is null",
) -> str:
    """A rule set: ``segments`` as (name, condition), first match wins."""
    body = "".join(f"  - name: {n}\n    when: {w}\n" for n, w in segments)
    return f"version: 1\nname: {name}\nmode: first\nexclude: {exclude}\nsegments:\n{body}"


def lay_out(
    root: Path,
    *,
    contacts_csv: str | None = None,
    rules_text: str | None = None,
    letter: str = LETTER,
    config: str = CONFIG,
    campaigns: tuple[str, ...] = ("news",),
) -> Path:
    """Write the workspace under ``root``; each campaign gets ``rules_text`` (by default
    one segment for everyone) and ``letter`` as its `_default` letter."""
    for campaign in campaigns:
        (root / "segrules").mkdir(parents=True, exist_ok=True)
        (root / "segrules" / f"{campaign}.yaml").write_text(rules_text or rules(campaign))
        (root / "templates" / campaign).mkdir(parents=True, exist_ok=True)
        (root / "templates" / campaign / "_default.html.j2").write_text(letter)
    (root / "data").mkdir(parents=True, exist_ok=True)
    if contacts_csv is not None:
        (root / "data" / "contacts.csv").write_text(contacts_csv, encoding="utf-8", newline="")
    (root / "segmerge.toml").write_text(config)
    return root
