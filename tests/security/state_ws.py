"""A small real workspace for the state, lock and disk tests: a contacts file (the
source, which also takes the campaigns' tags back), an outbox, two campaigns."""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import os
import sys
import textwrap
from pathlib import Path

from one_campaign import CONFIG, lay_out

from segmerge.run.pipeline import RunOptions, RunSummary, run
from segmerge.workspace import config as wsmod

SEGMERGE = str(Path(sys.executable).parent / "segmerge")
DAY1, DAY2, DAY3 = "2026-12-01", "2026-12-02", "2026-12-03"
#: a letter's raw headers, for its recipient: the body is not parsed, nor the headers
#: decoded (the addresses are ASCII)
HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)
PROMO = """
[campaigns.promo]
source = "crm"
rules = "segrules/promo.yaml"
templates = "templates/promo"
destination = "outbox"
tag_prefix = "promo:"
"""


def make_workspace(root: Path, contacts: int = 12, extra: str = "") -> Path:
    """``contacts`` subscribed contacts c1..cN; campaigns `news` and `promo`."""
    rows = [f"{i};c{i}@example.org;Prénom{i};true;" for i in range(1, contacts + 1)]
    # the days of these tests pass within a minute of wall time: no cap between them
    # (the default one message per address per day is tested with pressure)
    config = (
        CONFIG
        + 'tag_prefix = "news:"\n'
        + PROMO
        + "\n[pressure]\nmax_messages = 0\n"
        + textwrap.dedent(extra)
    )
    lay_out(
        root,
        contacts_csv="contact_id;email;first_name;subscribed;tags\n" + "\n".join(rows) + "\n",
        config=config,
        campaigns=("news", "promo"),
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
        to = HEADERS.parsebytes(path.read_bytes())["To"]
        out.setdefault(email.utils.parseaddr(str(to))[1], []).append(run_dir)
    return out


def unsubscribe_token(root: Path, address: str, campaign: str = "news") -> str:
    """The token in the List-Unsubscribe link of a letter sent to ``address``."""
    for path in sorted((root / "outbox" / campaign).rglob("*.eml")):
        msg = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(
            path.read_bytes()
        )
        if str(msg["To"].addresses[0].addr_spec) == address:  # type: ignore[union-attr]
            header = str(msg["List-Unsubscribe"])
            return header.split("token=", 1)[1].split(">", 1)[0].split(",", 1)[0]
    raise AssertionError(f"no letter to {address}")


def cli_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "COLUMNS": "300",
    }
