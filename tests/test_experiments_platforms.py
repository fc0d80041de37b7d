"""A holdout and an A/B test are honoured wherever the campaign goes, or refused.

On a platform (Brevo, Mailchimp, HubSpot) or a files destination the groups are
tags and lists: the held-out contacts get none, variant B's contacts get
``seg:tous.B`` instead of ``seg:tous``, and each variant gets its own draft aimed
at its own list, so that the platform sends each letter to its group. The
ledger says who was held out and who is in which group. Each platform is its
loopback fake (tests/fakes), validated against the vendor's spec.
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmerge.errors import ConfigError
from segmerge.run.pipeline import RunOptions, run
from segmerge.workspace import config as wsmod
from tests.cli import segmerge
from tests.fakes import specs
from tests.fakes.brevo import KEY, BrevoFake
from tests.fakes.hubspot import TOKEN, HubSpotFake
from tests.fakes.mailchimp import LIST_ID, MailchimpFake, subscriber_hash

AS_OF = "2026-12-01"
HOLDOUT = 0.25


def workspace(
    root: Path,
    source: str,
    *,
    destination: str | None = None,
    holdout: float = HOLDOUT,
    variants: bool = True,
    extra: str = "",
) -> wsmod.Workspace:
    """One segment ``tous`` (every subscriber), letters A and B (or one letter) that only
    use a field every platform has a merge tag for, and the campaign ``test``."""
    (root / "segrules").mkdir(parents=True)
    (root / "segrules" / "test.yaml").write_text(
        "version: 1\nname: test\nexclude: not subscribed\nsegments:\n"
        "  - name: tous\n    when: true\n",
        encoding="utf-8",
    )
    tpl = root / "templates" / "test"
    tpl.mkdir(parents=True)
    for v in ("A", "B") if variants else ("",):
        stem = f"tous.{v}" if v else "tous"
        (tpl / f"{stem}.html.j2").write_text(
            f'---\nsubject: "Offre {v}"\n---\n<p>Lettre {v} pour {{{{ contact.first_name }}}}'
            "</p><a href='{{ unsubscribe_url }}'>stop</a>\n",
            encoding="utf-8",
        )
    name = source.split("]", 1)[0].split(".", 1)[1]
    (root / "segmerge.toml").write_text(
        textwrap.dedent(f"""\
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?t={{token}}"
        {extra}
        """)
        + textwrap.dedent(source)
        + textwrap.dedent(f"""
        [campaigns.test]
        source = "{name}"
        rules = "segrules/test.yaml"
        destination = "{destination or name}"
        tag_prefix = "seg:"
        holdout = {holdout}
        """),
        encoding="utf-8",
    )
    return wsmod.load(root)


def groups(ws: wsmod.Workspace, run_id: str = f"test@{AS_OF}") -> pd.DataFrame:
    """The ledger's record of the experiment: one row per contact the platform mails or
    the holdout keeps out (address, status, variant)."""
    with sqlite3.connect(ws.state_dir / "ledger.sqlite") as db:
        rows = db.execute(
            "SELECT contact_id, target, status, variant FROM actions "
            "WHERE run_id=? AND kind='member'",
            (run_id,),
        ).fetchall()
    return pd.DataFrame(rows, columns=["contact_id", "address", "status", "variant"])


def check_groups(record: pd.DataFrame, names_of: dict[str, set[str]], mailable: int) -> None:
    """Every mailable contact is in the record; the held out carry none of the campaign's
    names, variant A's carry seg:tous only, variant B's seg:tous.B only."""
    assert len(record) == mailable
    held = record[record["status"] == "holdout"]
    sent = record[record["status"] == "done"]
    assert 0 < len(held) < mailable * 0.5 and held["variant"].isna().all()
    assert set(sent["variant"]) == {"A", "B"}
    for row in record.itertuples():
        ours = {n for n in names_of[row.address] if n.startswith("seg:")}
        want = (
            set()
            if row.status == "holdout"
            else {"seg:tous" if row.variant == "A" else "seg:tous.B"}
        )
        assert ours == want, (row, ours)


def two_drafts(drafts: dict[str, tuple[str, str, str]]) -> None:
    """name -> (target list, subject, html): one draft per variant, each to its own list."""
    assert set(drafts) == {f"test {AS_OF} · tous · A", f"test {AS_OF} · tous · B"}
    a, b = drafts[f"test {AS_OF} · tous · A"], drafts[f"test {AS_OF} · tous · B"]
    assert a[0] == "seg:tous" and b[0] == "seg:tous.B"
    assert a[1] == "Offre A" and "Lettre A" in a[2] and "Lettre B" not in a[2]
    assert b[1] == "Offre B" and "Lettre B" in b[2]


# -- files ------------------------------------------------------------------------------------


FILES = """
[sources.fichiers]
connector = "files"
path = "data"
"""


def files_workspace(root: Path, rows: list[str], **kw: object) -> wsmod.Workspace:
    (root / "data").mkdir(parents=True)
    text = "contact_id,email,first_name,subscribed,tags\n" + "\n".join(rows) + "\n"
    (root / "data" / "contacts.csv").write_text(text, encoding="utf-8")
    return workspace(root, FILES, **kw)  # type: ignore[arg-type]


def file_tags(ws: wsmod.Workspace) -> pd.DataFrame:
    frame = pd.read_csv(ws.root / "data" / "contacts.csv", dtype=str, keep_default_na=False)
    frame["names"] = frame["tags"].map(lambda t: {x.strip() for x in t.split("|") if x.strip()})
    return frame


def test_files_destination_tags_each_group_and_records_the_holdout(tmp_path):
    rows = [
        f"{i:04d},c{i}@exemple.fr,P{i},{'non' if i % 10 == 9 else 'oui'},"
        + ("vip" if i % 7 == 0 else "")
        for i in range(80)
    ]
    ws = files_workspace(tmp_path / "ws", rows)
    dry = run(ws, "test", RunOptions(as_of=AS_OF, dry_run=True))
    summary = run(ws, "test", RunOptions(as_of=AS_OF))
    tags = file_tags(ws)
    # the dry run announced each variant's tags apart, and wrote nothing
    count = {
        v: sum(bool(n & {name}) for n in tags["names"])
        for v, name in (("A", "seg:tous"), ("B", "seg:tous.B"))
    }
    assert dry.changes == {f"tous.{v}": {"tag": n} for v, n in count.items()}
    names = dict(zip(tags["email"], tags["names"], strict=True))
    record = groups(ws)
    check_groups(record, names, mailable=72)
    assert summary.not_mailed["holdout (control group)"] == (record["status"] == "holdout").sum()
    # the marketer's own tag is kept; an unsubscribed contact is in no group
    assert "vip" in names["c0@exemple.fr"] and not names["c9@exemple.fr"]


def test_an_experiment_that_stops_moves_its_contacts_back(tmp_path):
    rows = [f"{i:04d},c{i}@exemple.fr,P{i},oui," for i in range(60)]
    ws = files_workspace(tmp_path / "ws", rows)
    run(ws, "test", RunOptions(as_of=AS_OF))
    assert any("seg:tous.B" in n for n in file_tags(ws)["names"])
    # the test is over: one letter, no holdout; B's and the holdout's contacts join seg:tous
    tpl = ws.root / "templates" / "test"
    (tpl / "tous.B.html.j2").unlink()
    (tpl / "tous.A.html.j2").rename(tpl / "tous.html.j2")
    cfg = ws.root / "segmerge.toml"
    cfg.write_text(cfg.read_text().replace(f"holdout = {HOLDOUT}", "holdout = 0.0"))
    run(wsmod.load(ws.root), "test", RunOptions(as_of="2026-12-02"))
    assert all(n == {"seg:tous"} for n in file_tags(ws)["names"])


def test_an_address_keeps_its_group_whatever_the_file_order(tmp_path):
    """Two contacts share each of 30 addresses: the same one is mailed (the smallest id),
    both are always in the same group, and a shuffled file changes nothing."""
    rows = [f"{i:04d},foyer{i % 30}@exemple.fr,P{i},oui," for i in range(60)]
    first = files_workspace(tmp_path / "a", rows)
    run(first, "test", RunOptions(as_of=AS_OF))
    shuffled = [rows[i] for i in np.random.default_rng(7).permutation(len(rows))]
    second = files_workspace(tmp_path / "b", shuffled)
    run(second, "test", RunOptions(as_of=AS_OF))
    one, two = groups(first), groups(second)
    assert len(one) == 30 and set(one["contact_id"]) == {f"{i:04d}" for i in range(30)}
    key = ["contact_id", "address", "status", "variant"]
    pd.testing.assert_frame_equal(
        one.sort_values("contact_id")[key].reset_index(drop=True),
        two.sort_values("contact_id")[key].reset_index(drop=True),
    )
    # both records of a household carry the same names: never held out through one
    # and mailed through the other
    for tags in (file_tags(first), file_tags(second)):
        by_address = tags.groupby("email")["names"].agg(lambda s: {frozenset(x) for x in s})
        assert (by_address.map(len) == 1).all()
        held = one.loc[one["status"] == "holdout", "address"]
        assert all(by_address[a] == {frozenset()} for a in held)


def test_a_holdout_the_destination_cannot_honour_is_refused_naming_the_setting(tmp_path):
    rows = [f"{i:04d},c{i}@exemple.fr,P{i},oui," for i in range(5)]
    ws = files_workspace(tmp_path / "ws", rows, variants=False)
    cfg = ws.root / "segmerge.toml"
    cfg.write_text(cfg.read_text() + "push_tags = false\n")
    with pytest.raises(ConfigError) as info:
        run(wsmod.load(ws.root), "test", RunOptions(as_of=AS_OF))
    assert info.value.field == "campaigns.test.push_tags"
    assert "holdout" in str(info.value) and not (ws.state_dir / "ledger.sqlite").exists()
    # validate says so first, exit 2, no traceback
    out = segmerge("validate", "test", "-w", str(ws.root))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "push_tags" in out.stderr and "Traceback" not in out.stderr


# -- Brevo ------------------------------------------------------------------------------------


@pytest.fixture
def brevo():
    server = BrevoFake(specs.brevo(), contacts_limit=1000, other_limit=1000, other_window=1.0)
    server.start()
    yield server
    server.stop()
    assert not server.violations, server.violations


def test_brevo_lists_and_drafts_per_variant_and_none_for_the_holdout(brevo, tmp_path, monkeypatch):
    for i in range(60):
        brevo.add_contact(
            f"c{i}@example.org", attributes={"FIRSTNAME": f"P{i}"}, blacklisted=i % 10 == 9
        )
    monkeypatch.setenv("SEGMERGE_SHOP_TOKEN", KEY)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    ws = workspace(
        tmp_path / "ws",
        f"""
        [sources.shop]
        connector = "brevo"
        base_url = "{brevo.url}"
        events = "none"
        orders = false
        contacts_requests_per_second = 200.0
        other_requests_per_hour = 360000.0
        """,
    )
    summary = run(ws, "test", RunOptions(as_of=AS_OF))
    assert summary.failed == 0, summary.outcome
    list_name = {lid: x["name"] for lid, x in brevo.lists.items()}
    names = {c.email: {list_name[lid] for lid in c.list_ids} for c in brevo.contacts.values()}
    check_groups(groups(ws), names, mailable=54)
    drafts = {
        c["name"]: (list_name[c["recipients"]["listIds"][0]], c["subject"], c["htmlContent"])
        for c in brevo.campaigns.values()
    }
    two_drafts(drafts)
    assert "{{ contact.FIRSTNAME }}" in drafts[f"test {AS_OF} · tous · B"][2]


# -- Mailchimp --------------------------------------------------------------------------------


@pytest.fixture
def mailchimp():
    server = MailchimpFake().start()
    yield server
    server.stop()
    assert not server.violations, [v[:500] for v in server.violations[:3]]


def test_mailchimp_tags_and_drafts_per_variant_and_none_for_the_holdout(
    mailchimp, tmp_path, monkeypatch
):
    emails = [f"client{i}@example.org" for i in range(60)]
    for i, e in enumerate(emails):
        mailchimp.add_member(
            e, f"P{i}", f"N{i}", status="unsubscribed" if i % 10 == 9 else "subscribed"
        )
    monkeypatch.setenv("SEGMERGE_NEWS_TOKEN", mailchimp.api_key)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    ws = workspace(
        tmp_path / "ws",
        f"""
        [sources.news]
        connector = "mailchimp"
        list_id = "{LIST_ID}"
        base_url = "{mailchimp.url}"
        retry_backoff = 0.01
        """,
    )
    summary = run(ws, "test", RunOptions(as_of=AS_OF))
    assert summary.failed == 0, summary.outcome
    names = {e: set(mailchimp.tags_of(subscriber_hash(e))) for e in emails}
    check_groups(groups(ws), names, mailable=54)
    segment = {s["id"]: s["name"] for s in mailchimp.segments.values()}
    drafts = {
        c["settings"]["title"]: (
            segment[c["recipients"]["segment_opts"]["saved_segment_id"]],
            c["settings"]["subject_line"],
            mailchimp.contents[cid]["html"],
        )
        for cid, c in mailchimp.campaigns.items()
    }
    two_drafts(drafts)


# -- HubSpot ----------------------------------------------------------------------------------


@pytest.fixture
def hubspot():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as server:
        yield server
        assert server.violations == [], server.violations


def test_hubspot_tags_lists_and_drafts_per_variant_and_none_for_the_holdout(
    hubspot, tmp_path, monkeypatch
):
    hubspot.add_property("segmerge_segments", "enumeration", field_type="checkbox", options=["vip"])
    ids = [
        hubspot.add_contact(
            f"ann{i}@example.org",
            firstname=f"Ann{i}",
            lastname="Lee",
            hs_email_optout="true" if i % 10 == 3 else "false",
        )
        for i in range(40)
    ]
    monkeypatch.setenv("SEGMERGE_CRM_TOKEN", TOKEN)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    ws = workspace(
        tmp_path / "ws",
        f"""
        [sources.crm]
        connector = "hubspot"
        base_url = "{hubspot.url}"
        rate_limit = 1000
        rate_window_seconds = 1.0
        search_rate_limit = 100
        """,
    )
    summary = run(ws, "test", RunOptions(as_of=AS_OF))
    assert summary.failed == 0, summary.outcome
    email_of = {cid: f"ann{i}@example.org" for i, cid in enumerate(ids)}
    tags = {email_of[c]: set(hubspot.tags_of(c)) for c in ids}
    lists = {email_of[c]: {x.name for x in hubspot.lists.values() if c in x.members} for c in ids}
    check_groups(groups(ws), tags, mailable=36)
    check_groups(groups(ws), lists, mailable=36)
    list_of = {str(x.id): x.name for x in hubspot.lists.values()}
    drafts = {
        e["name"]: (
            list_of[e["to"]["contactIlsLists"]["include"][0]],
            e["subject"],
            str(e["content"]),
        )
        for e in hubspot.emails.values()
    }
    two_drafts(drafts)


def test_sends_mail_the_same_contact_of_a_shared_address_whatever_the_file_order(tmp_path):
    """Through an outbox: one letter per household, to the same contact in the same group,
    and the holdout is the same addresses, for a file and its shuffled copy."""
    rows = [f"{i:04d},foyer{i % 30}@exemple.fr,P{i},oui," for i in range(60)]
    shuffled = [rows[i] for i in np.random.default_rng(3).permutation(len(rows))]
    outbox = '\n[destinations.boite]\nconnector = "outbox"\npath = "outbox"\n'
    seen = []
    for name, lines in (("a", rows), ("b", shuffled)):
        ws = files_workspace(tmp_path / name, lines, destination="boite", extra=outbox)
        run(ws, "test", RunOptions(as_of=AS_OF))
        with sqlite3.connect(ws.state_dir / "ledger.sqlite") as db:
            seen.append(
                sorted(
                    db.execute(
                        "SELECT contact_id, target, status, variant FROM actions WHERE kind='send'"
                    )
                )
            )
    assert seen[0] == seen[1]
    assert len(seen[0]) == 30 and {c for c, *_ in seen[0]} == {f"{i:04d}" for i in range(30)}
    assert {s for *_, s, _ in seen[0]} == {"done", "holdout"}


def test_drafts_on_a_platform_whose_lists_segmerge_does_not_fill_are_refused(
    brevo, tmp_path, monkeypatch
):
    """Tags go to the files source, drafts to Brevo: Brevo would mail lists nobody
    split, so the test is refused, naming the templates that hold the variants."""
    monkeypatch.setenv("SEGMERGE_SHOP_TOKEN", KEY)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    shop = f"""
[destinations.shop]
connector = "brevo"
base_url = "{brevo.url}"
events = "none"
orders = false
"""
    ws = files_workspace(
        tmp_path / "ws",
        [f"{i:04d},c{i}@exemple.fr,P{i},oui," for i in range(5)],
        destination="shop",
        holdout=0.0,
        extra=shop,
    )
    with pytest.raises(ConfigError) as info:
        run(ws, "test", RunOptions(as_of=AS_OF))
    assert info.value.field == "campaigns.test.templates"
    assert "A/B variants of tous" in str(info.value) and "shop" in str(info.value)
    assert not brevo.campaigns and not brevo.lists
