"""Benchmark: `segmerge validate` and `segmerge run` on a 5,000-contact Brevo account.

Usage: .venv/bin/python benchmarks/brevo_account.py [--contacts 5000] [--orders 750]
       [--campaigns 10] [--modes campaign_exports,contact_stats]

The account (issue 14's target): 5,000 contacts, 750 e-commerce orders and 10 e-mail
campaigns sent over the last 90 days, with their openers, clickers, bounces and
unsubscribes, on the Brevo fake (tests/fakes/brevo.py) in this process, enforcing the
general tier: 10 requests a second under /contacts (one-second windows), 100 an hour
for every other endpoint (one window of an hour, shared by both commands, as Brevo
counts per account); 429 beyond, with the x-sib-ratelimit-* headers. Recipient exports
finish on their second poll; the files come from the fake's file host (no budget).

Each mode gets a fresh account and workspace (`segmerge init`, a three-segment rule
set on orders and opens, one letter, the Brevo source as destination: segment tags as
lists and one draft per segment), then `validate` and `run` are timed as processes,
start to exit. Target: each under two minutes with ``events = "campaign_exports"``;
``contact_stats`` (one call per contact) is shown for comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from workspaces import SEGMERGE, cli_env  # noqa: E402

from tests.fakes import specs  # noqa: E402
from tests.fakes.brevo import KEY, BrevoFake  # noqa: E402
from tests.fakes.brevo_dates import stamp  # noqa: E402

TARGET = 120.0  # seconds, each command
RULES = """\
version: 1
name: brevo
mode: first
exclude: not subscribed or email is null
segments:
  - name: fideles
    when: orders_count >= 2
  - name: curieux
    when: opens(days=90) >= 1
  - name: dormeurs
    when: true
"""
LETTER = (
    "---\nsubject: Bonjour {{ contact.first_name }}\n---\n"
    "<p>Bonjour {{ contact.first_name }}</p><a href='{{ unsubscribe_url }}'>stop</a>\n"
)


def account(contacts: int, orders: int, campaigns: int, seed: int = 14) -> BrevoFake:
    """The fake at general-tier limits, filled deterministically."""
    rng = random.Random(seed)
    fake = BrevoFake(
        specs.brevo(),
        check_responses=False,
        contacts_limit=10,
        contacts_window=1.0,
        other_limit=100,
        other_window=3600.0,
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    emails = [f"client{i}@example.org" for i in range(1, contacts + 1)]
    people = [
        fake.add_contact(
            e,
            attributes={"FIRSTNAME": f"Prénom{i}", "LASTNAME": f"Nom{i}"},
            blacklisted=i % 25 == 0,
        )
        for i, e in enumerate(emails, 1)
    ]
    for n in range(orders):
        buyer = rng.choice(emails[: contacts // 3])  # a third of the base buys
        when = stamp(now - dt.timedelta(days=rng.randint(1, 360), minutes=n))
        fake.orders.append(
            {
                "id": f"O{n + 1}",
                "email": buyer,
                "amount": rng.randint(15, 180),
                "createdAt": when,
                "updatedAt": when,
                "status": "completed",
                "products": [{"productId": "P1", "quantity": 1, "price": 30}],
            }
        )
    mailable = [c for c in people if not c.blacklisted]
    for k in range(campaigns):
        sent = now - dt.timedelta(days=85 - k * 85 // max(1, campaigns - 1), hours=2)
        openers = [c for c in mailable if rng.random() < 0.25]
        lists = {
            "openers": [c.email for c in openers],
            "clickers": [c.email for c in openers if rng.random() < 0.2],
            "hardBounces": [c.email for c in mailable if rng.random() < 0.004],
            "softBounces": [c.email for c in mailable if rng.random() < 0.01],
            "unsubscribed": [c.email for c in openers if rng.random() < 0.01],
        }
        cid = fake.sent.add(f"Lettre {k + 1}", sent, recipients=len(mailable), **lists)
        t = (sent + dt.timedelta(hours=3)).isoformat().replace("+00:00", "Z")
        for c in openers:  # the same engagement, per contact, for contact_stats
            c.stats.setdefault("opened", []).append(
                {"campaignId": cid, "count": 1, "eventTime": t, "ip": "10.0.0.1"}
            )
        for e in lists["clickers"]:
            fake.contacts[fake.by_email[e]].stats.setdefault("clicked", []).append(
                {
                    "campaignId": cid,
                    "links": [
                        {
                            "count": 1,
                            "eventTime": t,
                            "ip": "10.0.0.1",
                            "url": "https://boutique.example/soldes",
                        }
                    ],
                }
            )
    return fake


def workspace(root: Path, env: dict[str, str], url: str, events: str) -> None:
    subprocess.run([SEGMERGE, "init", str(root)], check=True, capture_output=True, env=env)
    (root / "segrules" / "brevo.yaml").write_text(RULES)
    letters = root / "templates" / "brevo"
    letters.mkdir(parents=True)
    (letters / "_default.html.j2").write_text(LETTER)
    with (root / "segmerge.toml").open("a") as fh:
        fh.write(f"""
[sources.shop]
connector = "brevo"
base_url = "{url}"
events = "{events}"

[campaigns.brevo]
source = "shop"
rules = "segrules/brevo.yaml"
templates = "templates/brevo"
destination = "shop"
tag_prefix = "seg:"
""")


@dataclass
class Row:
    mode: str
    command: str
    seconds: float
    code: int
    contacts_calls: int
    other_calls: int
    files: int
    throttled: int
    waits: int
    tail: str


def timed(fake: BrevoFake, mode: str, command: list[str], env: dict[str, str]) -> Row:
    before = len(fake.log), len(fake.sent.downloads)
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3 * 3600)
    seconds = time.perf_counter() - t0
    with fake.lock:
        log = fake.log[before[0] :]
        files = len(fake.sent.downloads) - before[1]
    contacts = sum(1 for _, p, _ in log if p.startswith("/contacts"))
    throttled = sum(1 for _, _, s in log if s == 429)
    out = proc.stdout + proc.stderr
    waits = sum(1 for line in out.splitlines() if "resum" in line.lower())
    return Row(
        mode,
        command[1],
        seconds,
        proc.returncode,
        contacts,
        len(log) - contacts,
        files,
        throttled,
        waits,
        out.strip()[-600:],
    )


def bench(contacts: int, orders: int, campaigns: int, mode: str) -> list[Row]:
    fake = account(contacts, orders, campaigns)
    fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="segmerge-brevo-") as scratch:
            root = Path(scratch) / "ws"
            env = cli_env(SEGMERGE_SHOP_TOKEN=KEY)
            workspace(root, env, fake.url, mode)
            today = dt.date.today().isoformat()
            rows = [
                timed(fake, mode, [SEGMERGE, "validate", "brevo", "-w", str(root)], env),
                timed(
                    fake, mode, [SEGMERGE, "run", "brevo", "-w", str(root), "--as-of", today], env
                ),
            ]
        if fake.violations:
            print(f"spec violations ({mode}): {fake.violations[:3]}", file=sys.stderr)
        return rows
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--orders", type=int, default=750)
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--modes", default="campaign_exports,contact_stats")
    args = parser.parse_args()
    rows: list[Row] = []
    for mode in args.modes.split(","):
        rows += bench(args.contacts, args.orders, args.campaigns, mode)
    print(
        f"{args.contacts} contacts, {args.orders} orders, {args.campaigns} sent campaigns; "
        f"general tier (10/s /contacts, 100/h other)"
    )
    print(
        f"{'events':<17} {'command':<9} {'seconds':>8} {'exit':>4} {'/contacts':>9} "
        f"{'other':>6} {'files':>5} {'429':>4} {'waits':>5}"
    )
    for r in rows:
        print(
            f"{r.mode:<17} {r.command:<9} {r.seconds:>8.1f} {r.code:>4} {r.contacts_calls:>9} "
            f"{r.other_calls:>6} {r.files:>5} {r.throttled:>4} {r.waits:>5}"
        )
    for r in rows:
        if r.code != 0:
            print(f"\n{r.mode} {r.command} exited {r.code}:\n{r.tail}")
    main_rows = [r for r in rows if r.mode == "campaign_exports"]
    ok = bool(main_rows) and all(r.code == 0 and r.seconds < TARGET for r in main_rows)
    print(
        f"\nverdict: {'PASS' if ok else 'FAIL'} (campaign_exports: validate and run each "
        f"< {TARGET:.0f} s, exit 0)"
    )


if __name__ == "__main__":
    main()
