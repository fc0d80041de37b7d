"""Contact pressure: a frequency cap over all campaigns, quiet hours and days; deferred, never lost."""

from __future__ import annotations

import email
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bot import app
from segmerge.errors import ConfigError
from segmerge.ledger.store import Ledger
from segmerge.run.pipeline import RunOptions, run
from segmerge.run.pressure import CAP, QUIET, Policy, PressureConfig, hold_back
from segmerge.workspace import config as wsmod

PARIS = ZoneInfo("Europe/Paris")
AS_OF = "2026-12-01"


def policy(**kw) -> Policy:
    return Policy(PressureConfig(**kw), PARIS)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (local(2026, 12, 1, 22, 30), local(2026, 12, 2, 8, 0)),  # evening: next morning
        (local(2026, 12, 2, 7, 0), local(2026, 12, 2, 8, 0)),  # early morning: same day
        (local(2026, 12, 2, 12, 0), None),  # noon: send now
        (local(2026, 12, 2, 8, 0), None),  # the end of the span is allowed
    ],
)
def test_quiet_hours_across_midnight(now, expected):
    assert policy(quiet_hours="21:00-08:00").quiet_until(now) == expected


def test_quiet_sunday_chains_with_quiet_hours():
    p = policy(quiet_hours="21:00-08:00", quiet_days=["dimanche"])
    # Saturday 22:00 -> quiet night -> Sunday is quiet -> Monday 00:00 is in the night -> 08:00
    assert p.quiet_until(local(2026, 12, 5, 22, 0)) == local(2026, 12, 7, 8, 0)


def test_quiet_hours_on_the_spring_dst_change_use_local_time():
    until = policy(quiet_hours="21:00-08:00").quiet_until(local(2027, 3, 27, 23, 0))
    assert until == local(2027, 3, 28, 8, 0)
    assert until.astimezone(UTC).hour == 6  # CEST, UTC+2, after the change


def test_frequency_cap_counts_addresses_in_the_rolling_window():
    now = datetime(2026, 12, 10, 12, tzinfo=UTC)
    sent = pd.DataFrame(
        {
            "address": ["ann@x.fr", "ann@x.fr", "bob@x.fr", "cy@x.fr", "cy@x.fr"],
            "at": pd.to_datetime(
                [
                    "2026-12-04T09:00Z",
                    "2026-12-08T09:00Z",
                    "2026-12-09T09:00Z",
                    "2026-11-01T09:00Z",
                    "2026-11-02T09:00Z",
                ],
                utc=True,
            ),
        }
    )
    addresses = pd.Series(["ANN@x.fr ", "bob@x.fr", "cy@x.fr", "new@x.fr"])
    nxt = policy(max_messages=2, per_days=7).capped(addresses, sent, now)
    assert nxt.iloc[0] == pd.Timestamp("2026-12-11T09:00Z")  # the older of ann's two + 7 days
    assert nxt.iloc[1:].isna().all()  # bob had one; cy's are out of the window; new never
    assert policy(max_messages=1, per_days=7).capped(addresses, sent, now).iloc[1] == pd.Timestamp(
        "2026-12-16T09:00Z"
    )


def test_bad_quiet_hours_are_a_config_error():
    with pytest.raises(ValueError, match="not a span of hours"):
        PressureConfig(quiet_hours="25:00-08:00")
    with pytest.raises(ValueError, match="unknown day"):
        PressureConfig(quiet_days=["dimenche"])


# through the pipeline ---------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path) -> wsmod.Workspace:
    data = tmp_path / "data"
    data.mkdir()
    rows = ["contact_id,email,first_name,subscribed,niveau"]
    rows += [
        f"{i},c{i}@exemple.fr,Prénom{i},oui,{'or' if i <= 4 else 'argent'}" for i in range(1, 9)
    ]
    (data / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "segrules").mkdir()
    for name, when in (("a", "niveau == 'or'"), ("b", "true")):
        (tmp_path / "segrules" / f"{name}.yaml").write_text(
            textwrap.dedent(f"""\
            version: 1
            name: {name}
            exclude: not subscribed
            segments:
              - name: tous
                when: {when}
            """),
            encoding="utf-8",
        )
        tpl = tmp_path / "templates" / name
        tpl.mkdir(parents=True)
        (tpl / "_default.html.j2").write_text(
            '---\nsubject: "Lettre {{ campaign.name }}"\n---\n<p>Bonjour '
            "{{ contact.first_name }}</p>\n",
            encoding="utf-8",
        )
    (tmp_path / "segmerge.toml").write_text(
        textwrap.dedent("""\
        timezone = "Europe/Paris"
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?t={token}"
        [pressure]
        max_messages = 1
        per_days = 7
        quiet_hours = "21:00-08:00"
        [sources.fichiers]
        connector = "files"
        path = "data"
        [destinations.outbox]
        connector = "outbox"
        path = "outbox"
        [campaigns.a]
        source = "fichiers"
        rules = "segrules/a.yaml"
        destination = "outbox"
        [campaigns.b]
        source = "fichiers"
        rules = "segrules/b.yaml"
        destination = "outbox"
        """),
        encoding="utf-8",
    )
    return wsmod.load(tmp_path)


def received(root: Path) -> list[str]:
    return sorted(
        parseaddr(str(email.message_from_bytes(p.read_bytes())["To"]))[1]
        for p in (root / "outbox").rglob("*.eml")
    )


def daytime(days: int = 0) -> datetime:
    """Today (real clock: the ledger stamps real times) at 11:00 Paris, plus ``days``."""
    today = datetime.now(PARIS).date() + timedelta(days=days)
    return datetime.combine(today, datetime.min.time().replace(hour=11), PARIS)


def test_frequency_cap_defers_across_campaigns_then_sends_when_allowed(ws):
    first = run(ws, "a", RunOptions(as_of=AS_OF, now=daytime()))
    assert first.outcome["send"] == {"done": 4}
    second = run(ws, "b", RunOptions(as_of=AS_OF, now=daytime()))
    # the four who got campaign a today are held back; the other four get b
    # a fixed key, whatever the policy and the language; the policy is said apart
    assert second.deferred == {"frequency_cap": 4}
    assert second.pressure_policy == "at most 1 message per 7 days; quiet 21:00-08:00"
    assert len(received(ws.root)) == 8 and len(set(received(ws.root))) == 8
    with _open(ws) as ledger:
        held = ledger.actions("b@2026-12-01", ["deferred"])
        assert {r["target"] for r in held} == {f"c{i}@exemple.fr" for i in range(1, 5)}
        assert all(r["not_before"] for r in held)
        # the ledger's details are data: English, naming the policy as before
        assert {r["detail"].split(": deferred to")[0] for r in held} == {
            "frequency cap (at most 1 message(s) per 7 day(s); quiet 21:00-08:00)"
        }
    out = CliRunner().invoke(
        app, ["history", "b@2026-12-01", "--deferred", "--csv", "-w", str(ws.root)]
    )
    assert out.exit_code == 0 and out.stdout.count("deferred") >= 4
    # a week later, the same run started again sends exactly the held-back four
    third = run(ws, "b", RunOptions(as_of=AS_OF, now=daytime(8)))
    assert third.resumed and not third.deferred
    mails = received(ws.root)
    assert len(mails) == 12
    assert all(mails.count(f"c{i}@exemple.fr") == 2 for i in range(1, 5))


def test_quiet_hours_hold_everything_until_morning(ws):
    night = datetime.combine(
        datetime.now(PARIS).date(), datetime.min.time().replace(hour=23), PARIS
    )
    s = run(ws, "b", RunOptions(as_of=AS_OF, now=night))
    assert s.deferred == {QUIET: 8} and received(ws.root) == []
    morning = night.replace(hour=8) + timedelta(days=1)
    assert pd.Timestamp(s.deferred_until) == pd.Timestamp(morning)
    s2 = run(ws, "b", RunOptions(as_of=AS_OF, now=morning + timedelta(minutes=5)))
    assert s2.outcome["send"] == {"done": 8}
    assert len(received(ws.root)) == 8


def test_bad_pressure_config_exits_2_naming_the_key(ws):
    cfg = Path(ws.config_file)
    cfg.write_text(cfg.read_text().replace('quiet_hours = "21:00-08:00"', 'quiet_hours = "21h-8h"'))
    out = subprocess.run(
        [str(Path(sys.executable).parent / "segmerge"), "validate", "-w", str(ws.root)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert "pressure.quiet_hours" in out.stderr and "segmerge.toml" in out.stderr
    assert "Traceback" not in out.stderr
    with pytest.raises(ConfigError):
        wsmod.load(ws.root)


def _open(ws: wsmod.Workspace) -> Ledger:
    return Ledger(ws.ledger_path)


def test_hold_back_returns_who_waits_why_and_until_when():
    """The decision comes back to the caller (the pipeline records it): nothing is written."""
    frame = pd.DataFrame({"email": ["ann@x.fr", "bob@x.fr", "cy@x.fr"]})
    primary = pd.Series(["s", "s", "s"])
    keys = {i: f"r@1|{i}|send" for i in range(3)}
    ids = ["0", "1", "2"]
    night = local(2026, 12, 1, 23, 0)
    quiet = policy(quiet_hours="21:00-08:00")
    none_sent = pd.DataFrame({"address": [], "at": pd.to_datetime([], utc=True)})
    held = hold_back([0, 1, 2], keys, ids, (quiet, night, none_sent), frame, primary, PARIS, "o")
    assert held.kept == [] and held.reason == QUIET
    assert [p.key for p in held.deferred] == list(keys.values())
    assert {p.status for p in held.deferred} == {"deferred"}
    assert pd.Timestamp(held.until) == pd.Timestamp(local(2026, 12, 2, 8, 0))
    assert "deferred to 2026-12-02 08:00" in held.deferred[0].detail
    # a cap holds back only who reached it, and says which policy
    capped = policy(max_messages=1, per_days=7)
    sent = pd.DataFrame(
        {"address": ["bob@x.fr"], "at": pd.to_datetime(["2026-12-01T09:00Z"], utc=True)}
    )
    noon = local(2026, 12, 2, 12, 0)
    held = hold_back([0, 1, 2], keys, ids, (capped, noon, sent), frame, primary, PARIS, "o")
    assert held.kept == [0, 2] and held.reason == CAP
    assert [p.contact_id for p in held.deferred] == ["1"]
    assert held.policy == "at most 1 message per 7 days"
    assert held.note(PARIS).startswith("1 message held back by contact pressure (frequency cap")
    # nothing to hold: the same list back, no reason
    idle = hold_back([0, 2], keys, ids, (capped, noon, sent), frame, primary, PARIS, "o")
    assert idle.kept == [0, 2] and idle.reason is None and idle.note(PARIS) is None
    # rows given as an array (a run's million) come back as one, the same decision
    rows = np.arange(3)
    arr = hold_back(rows, keys, ids, (capped, noon, sent), frame, primary, PARIS, "o")
    assert arr.kept.tolist() == [0, 2] and [p.contact_id for p in arr.deferred] == ["1"]


def test_the_run_table_says_the_deferral_and_its_policy_in_the_workspaces_language():
    from segmerge import i18n
    from segmerge.cli.console import out
    from segmerge.cli.run_output import print_summary
    from segmerge.run.pipeline import RunSummary

    i18n.use_locale("fr_FR")
    try:
        s = RunSummary("b@2026-12-01", "b", AS_OF)
        s.deferred = {CAP: 1234}
        s.pressure_policy = policy(max_messages=2, per_days=7).shown()
        with out.capture() as shown:
            print_summary(s)
    finally:
        i18n.use_locale("en")
    text = shown.get()
    assert "reportés\u202f: plafond de fréquence (au plus 2 messages sur 7 jours)" in text
    assert "frequency" not in text and "1\u202f234" in text
