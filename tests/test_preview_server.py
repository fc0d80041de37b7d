"""`segmerge preview` over HTTP: the real server on a free port, the demo workspace, urllib.

What is checked against the engine (segment(), render_one()) rather than against
numbers copied here: the sizes, the sample contacts and each message must be
what a run computes, since that is the point of a preview.
"""

from __future__ import annotations

import html
import re
import shutil
import time
import urllib.error
import urllib.request
from importlib.resources import as_file, files
from pathlib import Path

import pandas as pd
import pytest
from cli import segmerge
from forked_cli import PRELOAD, forks
from markupsafe import escape

from segmerge.preview.app import PreviewServer, is_loopback
from segmerge.preview.one import render_one
from segmerge.run import campaign as campaign_module
from segmerge.segment.segmentation import segment
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"
SCRIPT_NAME = "<script>alert(1)</script>"
#: contacts kept in the tests' demo workspace (of 2,252)
SMALL = 400


def make_workspace(root: Path, contacts: int | None = SMALL) -> Path:
    """The demo workspace of `segmerge init`, with contact 00019 named like markup, cut to
    its first ``contacts`` contacts (None: all), with their orders and events.

    Why smaller: every page opens its campaign as a run does (pull, segment, templates),
    again after each file change; what these tests check (pages against the engine,
    escaping, reloads, errors) holds for a few hundred contacts as for two thousand,
    and each segment still has more than the 20 contacts a page lists."""
    with as_file(files("segmerge") / "scaffold") as src:
        shutil.copytree(src, root)
    demo = root / "examples" / "demo"
    text = (demo / "contacts.csv").read_text(encoding="utf-8-sig")
    assert "\n00019;Mme;Inès;" in text
    text = text.replace("\n00019;Mme;Inès;", f"\n00019;Mme;{SCRIPT_NAME};")
    if contacts is not None:
        lines = text.split("\n")
        text = "\n".join(lines[: contacts + 1]) + "\n"
        kept = {line.split(";", 1)[0].encode() for line in lines[1 : contacts + 1]}
        # orders.csv is in Windows-1252 and events.csv in UTF-8: cut as bytes, the id field
        for name, sep, field in (("orders.csv", b";", 1), ("events.csv", b",", 0)):
            head, *rows = (demo / name).read_bytes().split(b"\n")
            rows = [r for r in rows if (r.split(sep) + [b""] * 2)[field] in kept]
            (demo / name).write_bytes(b"\n".join([head, *rows]) + b"\n")
    (demo / "contacts.csv").write_text(text, encoding="utf-8")
    return root


def get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8")


def version(srv: PreviewServer) -> str:
    return get(srv.url + "_version")[2]


def wait_reload(srv: PreviewServer, before: str) -> None:
    """Until the watcher has seen the change (bounded: a missed change fails the test)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if version(srv) != before:
            return
        time.sleep(0.05)
    pytest.fail("the preview did not notice the file change")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    root = make_workspace(tmp_path_factory.mktemp("preview") / "ws")
    pulls: list[object] = []  # each pull of a source by an opened campaign
    real = campaign_module.pull_source
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            campaign_module, "pull_source", lambda *a, **k: [pulls.append(a[1]), real(*a, **k)][1]
        )
        # the tests on this server only read: its watcher need not poll (each poll stats the
        # workspace's files; ten a second cost about a second of CPU over the module)
        with PreviewServer(root, port=0, as_of=AS_OF, interval=3600) as srv:
            srv.pulls = pulls  # type: ignore[attr-defined]
            yield srv


@pytest.fixture(scope="module")
def engine(demo: PreviewServer):
    ws = wsmod.load(demo.preview.root)
    return ws, {n: segment(ws, c.rules, as_of=AS_OF) for n, c in ws.config.campaigns.items()}


def rows_of(seg, name: str) -> list[str]:
    primary = seg.assignment.primary
    return [
        str(c)
        for c, p in zip(seg.frame["contact_id"], primary, strict=True)
        if not pd.isna(p) and p == name
    ]


def test_index_lists_every_campaign_with_the_engine_sizes(demo, engine):
    ws, segs = engine
    code, headers, body = get(demo.url)
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    for name, seg in segs.items():
        card = body.split(f'id="campagne-{name}"')[1].split("</section>")[0]
        for s in seg.ruleset.segments:
            size = seg.assignment.sizes()[s.name]
            row = card.split(f'href="/c/{name}/{s.name}"')[1].split("</tr>")[0]
            assert f'<td class="num">{size}</td>' in row, (name, s.name)
            assert escape(s.label) in row
    assert len(segs) == 3 and ">profils</a>" in body
    # the three campaigns on one source pulled it once (as `validate` does)
    assert len(demo.pulls) == len({c.source for c in ws.config.campaigns.values()}) == 1


def test_a_segment_page_shows_its_first_contacts_and_the_message_as_sent(demo, engine):
    ws, segs = engine
    seg = segs["profils"]
    code, _, body = get(demo.url + "c/profils/zens")
    assert code == 200
    listed = re.findall(r'data-contact="([^"]+)"', body)
    assert listed == rows_of(seg, "zens")[:20]
    first = listed[0]
    headers, text = render_one(ws, "profils", first, as_of=AS_OF, text=True)
    shown = dict(headers)
    assert f'<dd id="subject">{escape(shown["Subject"])}</dd>' in body
    assert "quelques idées pour un dimanche tranquille" in shown["Subject"]
    assert (
        '<dd id="preheader">Nos conseils de saison, à lire quand vous aurez le temps</dd>' in body
    )
    assert f'<pre id="text">{escape(text)}' in body
    for h in ("From", "To", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert f"<th>{h}</th><td>{escape(shown[h])}</td>" in body
    assert "<th>X-Segmerge-Segment</th><td>zens</td>" in body
    frame = re.search(r"<iframe[^>]*>", body).group(0)
    assert 'sandbox=""' in frame and f"/letter/profils/zens?contact={first}" in frame
    # another contact by link, and the default segment of a campaign (its first non-empty one)
    second = listed[1]
    code, _, other = get(demo.url + f"c/profils/zens?contact={second}")
    assert code == 200 and f'data-contact="{second}" aria-current="true"' in other
    _, campaign_page = get(demo.url + "c/profils")[::2]
    assert 'data-segment="fonceurs" aria-current="page"' in campaign_page


def test_the_letter_has_its_own_url_and_a_csp_that_forbids_scripts(demo, engine):
    ws, segs = engine
    first = rows_of(segs["profils"], "fonceurs")[0]
    code, headers, body = get(demo.url + f"letter/profils/fonceurs?contact={first}")
    assert code == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert "form-action 'none'" in csp and headers["X-Content-Type-Options"] == "nosniff"
    _, sent_html = render_one(ws, "profils", first, as_of=AS_OF)  # what `render` prints
    page = get(demo.url + f"c/profils/fonceurs?contact={first}")[2]
    preheader = html.unescape(re.search(r'<dd id="preheader">([^<]*)</dd>', page).group(1))
    assert body.rstrip("\n") == sent_html.rstrip("\n")  # the HTML part a run sends
    assert preheader and preheader in html.unescape(body)  # with its hidden preheader


def test_a_contact_named_like_markup_is_escaped_everywhere(demo, engine):
    ws, segs = engine
    seg_of = segs["profils"].assignment.primary[segs["profils"].frame["contact_id"] == "00019"]
    segment_name = str(seg_of.iloc[0])
    code, _, body = get(demo.url + f"c/profils/{segment_name}?q=00019")
    assert code == 200
    assert "<script>alert" not in body and body.count("<script") == 1  # the app's own script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert re.findall(r'data-contact="([^"]+)"', body) == ["00019"]
    _, _, letter = get(demo.url + f"letter/profils/{segment_name}?contact=00019")
    assert "<script>alert" not in letter


def test_search_by_email_and_unknown_things_are_404(demo, engine):
    ws, segs = engine
    seg = segs["profils"]
    row = seg.frame.index[seg.frame["contact_id"] == "00002"][0]
    email, where = seg.frame.at[row, "email"], seg.assignment.primary.iat[row]
    code, _, body = get(demo.url + f"c/profils/{where}?q={email.upper()}")
    assert code == 200 and re.findall(r'data-contact="([^"]+)"', body) == ["00002"]
    code, _, body = get(demo.url + "c/nope")
    assert code == 404 and "Aucune campagne «\u202fnope\u202f»" in body
    code, _, body = get(demo.url + "c/%3Cb%3Ex")
    assert code == 404 and "&lt;b&gt;x" in body and "<b>x" not in body
    code, _, body = get(demo.url + "c/profils/nope")
    assert code == 404 and "Aucun segment «\u202fnope\u202f»" in body
    code, _, body = get(demo.url + "c/profils/fonceurs?contact=99999")
    assert code == 404 and "Aucun contact «\u202f99999\u202f»" in body
    other = "fonceurs" if where != "fonceurs" else "zens"
    code, _, body = get(demo.url + f"c/profils/{other}?contact=00002")
    assert code == 404 and f"reçoit la lettre du segment «\u202f{where}\u202f»" in body
    assert get(demo.url + "letter/profils/fonceurs?contact=99999")[0] == 404
    code, _, body = get(demo.url + f"c/profils/{other}?q=00002")
    assert code == 200 and "data-contact=" not in body
    assert f'href="/c/profils/{where}?contact=00002">00002' in body
    for path in ("nothing", "assets/base.html.j2", "assets/..%2Fpreview_app.py", "assets/x.css"):
        assert get(demo.url + path)[0] == 404, path
    code, headers, css = get(demo.url + "assets/preview.css")
    assert code == 200 and headers["Content-Type"].startswith("text/css") and ".tabs" in css


def test_pages_and_reloads_are_not_file_changes(demo):
    """Loading the workspace for a page, or dropping it on a change, changes no file: the
    page must not reload (it did two or three times after its first load, each reload
    opening its campaigns again)."""
    before = version(demo)
    assert get(demo.url + "c/rfm")[0] == 200
    assert not demo.watcher.check() and version(demo) == before
    demo.preview.invalidate()  # what a change does: the workspace and campaigns dropped
    after = version(demo)
    assert not demo.watcher.check() and version(demo) == after


def test_file_changes_reload_and_errors_show_in_the_page(tmp_path):
    root = make_workspace(tmp_path / "ws")
    tpl = root / "templates" / "profils-vpc" / "zens.html.j2"
    with PreviewServer(root, port=0, as_of=AS_OF, interval=0.1) as srv:
        page = srv.url + "c/profils/zens"
        assert "quelques idées pour un dimanche tranquille" in get(page)[2]
        before = version(srv)
        edit(tpl, "quelques idées pour un dimanche", "trois idées pour un dimanche")
        wait_reload(srv, before)
        assert "trois idées pour un dimanche tranquille" in get(page)[2]
        # a template error: file, line and message in the page, the other campaigns still work
        before = version(srv)
        lines = tpl.read_text(encoding="utf-8").splitlines()
        lines[16] = "<p>{{ contact.first_name | nope }} & <i>x</i></p>"
        tpl.write_text("\n".join(lines) + "\n", encoding="utf-8")
        wait_reload(srv, before)
        code, _, body = get(page)
        assert code == 200 and "Traceback" not in body
        assert '<strong class="file">templates/profils-vpc/zens.html.j2</strong>' in body
        assert '<span class="line">ligne 17</span>' in body
        assert "No filter named &#39;nope&#39;" in body
        assert (
            "17 | &lt;p&gt;{{ contact.first_name | nope }} &amp; &lt;i&gt;x&lt;/i&gt;&lt;/p&gt;"
            in body
            and "<i>x</i>" not in body
        )
        index = get(srv.url)[2]
        assert "ligne 17" in index.split('id="campagne-profils"')[1].split("</section>")[0]
        assert "ligne 17" not in index.split('id="campagne-rfm"')[1].split("</section>")[0]
        # a rule error, then a broken segmerge.toml: shown with file and line too
        before = version(srv)
        lines[16] = "<p>Tout est à lire.</p>"
        tpl.write_text("\n".join(lines) + "\n", encoding="utf-8")
        rules = root / "segrules" / "profils-vpc.yaml"
        edit(rules, "distinct(category, days=365) >= 4", "distinct(category, days=365) >= >= 4")
        wait_reload(srv, before)
        body = get(page)[2]
        assert '<strong class="file">segrules/profils-vpc.yaml</strong>' in body
        assert '<span class="line">ligne 14</span>' in body and "No filter" not in body
        before = version(srv)
        edit(rules, ">= >= 4", ">= 4")
        edit(root / "segmerge.toml", 'path = "outbox"', "path = ")
        wait_reload(srv, before)
        code, _, body = get(srv.url)
        assert code == 200 and '<strong class="file">segmerge.toml</strong>' in body
        assert "not valid TOML" in body
        before = version(srv)
        edit(root / "segmerge.toml", "path = \n", 'path = "outbox"\n')
        wait_reload(srv, before)
        assert "not valid TOML" not in get(srv.url)[2]


def test_variant_files_appear_on_reload_and_can_be_switched(tmp_path):
    root = make_workspace(tmp_path / "ws")
    folder = root / "templates" / "profils-vpc"
    # every contact in a segment: variants.assign() fails on contacts in none (reported)
    edit(
        root / "segrules" / "profils-vpc.yaml",
        "exclude: not subscribed or email is null",
        "exclude: false",
    )
    with PreviewServer(root, port=0, as_of=AS_OF, interval=0.1) as srv:
        before = version(srv)
        source = (folder / "zens.html.j2").read_text(encoding="utf-8")
        (folder / "zens.A.html.j2").write_text(source, encoding="utf-8")
        (folder / "zens.B.html.j2").write_text(
            source.replace("quelques idées", "des idées B"), encoding="utf-8"
        )
        (folder / "zens.txt.j2").rename(folder / "zens.A.txt.j2")
        shutil.copy(folder / "zens.A.txt.j2", folder / "zens.B.txt.j2")
        (folder / "zens.html.j2").unlink()
        wait_reload(srv, before)
        camp = srv.preview.campaign("profils").camp
        assert camp is not None and camp.templates.variants("zens") == ["A", "B"]
        rows = srv.preview.campaign("profils").rows("zens")
        row = int(rows[0])
        cid = str(camp.seg.frame["contact_id"].iat[row])
        _, mine = camp.letter_of(row, "zens")
        other = "B" if mine == "A" else "A"
        body = get(srv.url + "c/profils/zens")[2]
        assert f'data-variant="{mine}" aria-current="true">{mine} (la sienne)' in body
        assert f"<th>X-Segmerge-Variant</th><td>{mine}</td>" in body
        body = get(srv.url + f"c/profils/zens?contact={cid}&variant={other}")[2]
        assert ("des idées B" in body) == (other == "B")
        assert f"(aperçu\u202f: ce contact reçoit {mine})" in body
        assert get(srv.url + f"c/profils/zens?contact={cid}&variant=Z")[0] == 404


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.2", "::", "example.org"]))


def test_the_command_serves_on_a_free_port_and_refuses_bad_input(fork_server, tmp_path):
    root = make_workspace(tmp_path / "ws")
    args = ["preview", "-w", str(root), "--as-of", AS_OF]
    bad = segmerge(*args, "--campaign", "nope")  # refused before serving: in this process
    assert bad.returncode == 2 and "no campaign 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = segmerge(*args, "--as-of", "hier")
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    # a real `segmerge preview` process, forked from one that has imported the CLI
    # (tests/forked_cli.py): a fresh interpreter's imports cost more than the whole test
    log = tmp_path / "preview.log"
    with forks(fork_server, log, (*PRELOAD, "segmerge.preview.app")) as cmd:
        proc = cmd.start(*args, "--port", "0", "--campaign", "rfm")
        url = None
        deadline = time.monotonic() + 60
        while url is None and proc.poll() is None and time.monotonic() < deadline:
            url = re.search(r"http://127\.0\.0\.1:(\d+)/c/rfm", log.read_text(encoding="utf-8"))
            time.sleep(0.02)
        assert url, log.read_text(encoding="utf-8")
        base = f"http://127.0.0.1:{url.group(1)}/"
        code, _, body = get(base)
        assert code == 200 and 'id="campagne-rfm"' in body and "campagne-profils" not in body
        assert get(base + "c/profils")[0] == 404
        busy = segmerge(*args, "--port", url.group(1))  # refused before serving: in process
        assert busy.returncode == 2 and "already in use" in busy.stderr
        proc.kill()
        proc.wait(timeout=10)


def test_a_contact_whose_letter_cannot_be_filled_and_holdout_contacts(tmp_path):
    root = make_workspace(tmp_path / "ws")
    tpl = root / "templates" / "profils-vpc" / "zens.html.j2"
    edit(
        tpl,
        '<p style="margin:0 0 16px 0;">Tout est à lire',
        "<p>Dernière commande : {{ contact.last_order_at | date }}</p>\n<p>Tout est à lire",
    )
    edit(root / "segmerge.toml", 'tag_prefix = "seg:"', 'tag_prefix = "seg:"\nholdout = 0.2')
    with PreviewServer(root, port=0, as_of=AS_OF, interval=0.1) as srv:
        view = srv.preview.campaign("profils")
        assert view is not None and view.camp is not None and view.error is None
        frame = view.camp.seg.frame
        rows = view.rows("zens")
        never = [int(r) for r in rows if frame["last_order_at"].isna().iat[int(r)]]
        assert never, "the demo has zens who never ordered"
        cid = str(frame["contact_id"].iat[never[0]])
        code, _, body = get(srv.url + f"c/profils/zens?contact={cid}")
        assert code == 200 and 'id="subject"' not in body and "<iframe" not in body
        assert '<strong class="file">templates/profils-vpc/zens.html.j2</strong>' in body
        assert '<span class="line">ligne 17</span>' in body and f"contact {cid}" in body
        assert "| default(" in body  # the hint says how to fix it
        code, headers, letter = get(srv.url + f"letter/profils/zens?contact={cid}")
        assert (
            code == 422
            and "ligne 17" in letter
            and "default-src 'none'" in headers["Content-Security-Policy"]
        )
        # holdout: the badge on exactly the contacts the campaign holds out, and the notice
        holdout = view.camp.groups()[0]
        body = get(srv.url + "c/profils/fonceurs?n=100")[2]
        items = re.findall(r'data-contact="([^"]+)"(.*?)</li>', body, re.S)
        first = view.rows("fonceurs")[:100]
        assert [c for c, _ in items] == [str(frame["contact_id"].iat[int(r)]) for r in first]
        marked = ["témoin" in rest for _, rest in items]
        assert marked == [bool(holdout[int(r)]) for r in first] and 0 < sum(marked) < 100
        held = items[marked.index(True)][0]
        body = get(srv.url + f"c/profils/fonceurs?contact={held}")[2]
        assert (
            "groupe témoin\u202f: la campagne ne lui enverra rien" in body
            and 'id="subject"' in body
        )
