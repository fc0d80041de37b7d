"""A small real workspace whose campaign mails an outbox, and our tracking endpoint on it."""

from __future__ import annotations

import email
import http.client
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pytest

from segmerge.run.pipeline import RunOptions, run
from segmerge.serve.endpoint.server import UnsubscribeServer
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
LINKS = (
    "https://boutique.fr/nouveautes",
    "https://boutique.fr/soldes?x=1&y=2",
    "https://boutique.fr/magasins",
)
TEMPLATE = (
    '---\nsubject: "Bonjour"\n---\n<html><body><p>Bonjour {{ contact.first_name }}</p>'
    f'<a href="{LINKS[0]}">nouveautés</a> <a href="{LINKS[1].replace("&", "&amp;")}">soldes</a>'
    f" <a href='{LINKS[2]}'>magasins</a> <a href='mailto:aide@boutique.fr'>aide</a>"
    "<a href='{{ unsubscribe_url }}'>stop</a></body></html>\n"
)


def make_workspace(root: Path, campaigns: tuple[str, ...] = ("a",), tracking: str = "") -> None:
    (root / "data").mkdir()
    rows = ["contact_id,email,first_name,subscribed"]
    rows += [f"c{i},c{i}@exemple.fr,P{i},oui" for i in range(1, 5)]
    (root / "data" / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "segrules").mkdir()
    (root / "segrules" / "a.yaml").write_text(
        "version: 1\nname: a\nexclude: not subscribed\nsegments:\n  - name: tous\n    when: true\n",
        encoding="utf-8",
    )
    blocks = []
    for name in campaigns:
        tpl = root / "templates" / name
        tpl.mkdir(parents=True)
        (tpl / "_default.html.j2").write_text(TEMPLATE, encoding="utf-8")
        blocks.append(
            f'[campaigns.{name}]\nsource = "boutique"\nrules = "segrules/a.yaml"\n'
            f'destination = "outbox"\ntemplates = "templates/{name}"\n'
        )
    (root / "segmerge.toml").write_text(
        textwrap.dedent("""\
        timezone = "Europe/Paris"
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?token={token}"
        [sources.boutique]
        connector = "files"
        path = "data"
        [destinations.outbox]
        connector = "outbox"
        path = "outbox"
        """)
        + tracking
        + "\n"
        + "\n".join(blocks),
        encoding="utf-8",
    )


def letters(ws: wsmod.Workspace, campaign: str = "a") -> dict[str, Message]:
    """contact id -> the letter the outbox holds for it in ``campaign``."""
    out = {}
    for p in (ws.root / "outbox").rglob("*.eml"):
        msg = email.message_from_bytes(p.read_bytes())
        if msg["X-Segmerge-Campaign"] == campaign:
            out[msg["To"].split("<")[-1].split("@")[0].rstrip(">")] = msg
    return out


def part(msg: Message, subtype: str) -> str:
    for p in msg.walk():
        if p.get_content_type() == f"text/{subtype}":
            return p.get_payload(decode=True).decode("utf-8")
    raise AssertionError(f"no text/{subtype} part")


def tracked_links(msg: Message) -> list[str]:
    return re.findall(r'href="(https://boutique\.fr/t/c/[^"]+)"', part(msg, "html"))


@dataclass
class Clock:
    """The endpoint's clock: the real time plus a shift the test moves (never a sleep)."""

    shift: timedelta = timedelta(hours=1)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class Site:
    ws: wsmod.Workspace
    server: UnsubscribeServer
    clock: Clock

    def get(
        self, url: str, agent: str | None = BROWSER, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to the endpoint as a mail reader's browser sends it (no redirect
        followed): the public https link goes to the local port, as a proxy would."""
        path = url.removeprefix("https://boutique.fr")
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            headers = {"User-Agent": agent} if agent is not None else {}
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


@pytest.fixture
def site_factory(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    servers: list[UnsubscribeServer] = []

    def start(tracking: str = "[tracking]\n", campaigns: tuple[str, ...] = ("a",)) -> Site:
        if "[tracking]" in tracking and "clicks" not in tracking:  # opt-in: these tests track
            tracking = tracking.replace("[tracking]\n", "[tracking]\nclicks = true\n", 1)
        make_workspace(tmp_path, campaigns, tracking)
        ws = wsmod.load(tmp_path)
        for name in campaigns:
            run(ws, name, RunOptions(as_of=AS_OF))
        clock = Clock()
        server = UnsubscribeServer(ws, "127.0.0.1", 0, clock=clock)
        server.start()
        servers.append(server)
        return Site(ws, server, clock)

    yield start
    for s in servers:
        s.stop()
