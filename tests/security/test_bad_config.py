"""A clumsy or hostile segmerge.toml: exit 2 naming the file, the line and the setting.

Every case is the demo workspace `segmerge init` makes, with one mistake a user
could make in an editor (saving it in Latin-1, an http:// unsubscribe link, a
list where a table goes, an outbox pointing out of the workspace). What matters
to the shop: nothing is pulled, rendered, sent or recorded, and the message says
where to look, never "internal error".
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli import Ran, segmerge

from segmerge.errors import ConfigError
from segmerge.run.campaign import open_campaign
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"
SENDER = 'from = "La Boutique du Dimanche <bonjour@boutique-dimanche.fr>"'
UNSUB = 'unsubscribe_url = "https://boutique-dimanche.fr/desabonnement?token={token}"'


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("config") / "ws"
    segmerge("init", str(root), check=True)
    return root


@pytest.fixture
def root(pristine, tmp_path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(pristine, target)
    return target


def toml(root: Path) -> Path:
    return root / "segmerge.toml"


def edit(root: Path, old: str, new: str) -> int:
    """Replace ``old`` in segmerge.toml; the 1-based line where ``new`` now starts."""
    text = toml(root).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    toml(root).write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def untouched(root: Path) -> bool:
    """Nothing was sent or recorded: no outbox file, no ledger."""
    return not list((root / "outbox").rglob("*.eml")) and not (root / ".segmerge").exists()


def sm(root: Path, *args: str) -> Ran:
    return segmerge(*args, "-w", str(root))


def refused(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        wsmod.load(root)
    assert err.value.file == str(toml(root))
    return err.value


# -- encodings, through the real command ------------------------------------------------------


def test_a_latin1_segmerge_toml_is_exit_2_at_the_first_bad_byte(root):
    text = toml(root).read_text(encoding="utf-8")
    toml(root).write_bytes(text.encode("latin-1"))
    first = next(i for i, ch in enumerate(text) if not ch.isascii())  # the ° of "N° client"
    line = text.count("\n", 0, first) + 1
    column = first - text.rfind("\n", 0, first)
    byte = text[first].encode("latin-1")[0]
    proc = sm(root, "validate", "profils", "--as-of", AS_OF)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    expected = f"{toml(root)}:{line}:{column}: the file is not UTF-8: byte 0x{byte:02X}"
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert untouched(root)


def test_a_utf16_segmerge_toml_is_refused_with_the_fix(root):
    toml(root).write_bytes(toml(root).read_text(encoding="utf-8").encode("utf-16"))
    e = refused(root)
    assert e.line == 1 and "UTF-16" in e.message and "UTF-8" in (e.hint or "")


def test_a_nul_byte_in_segmerge_toml_names_its_line(root):
    line = edit(root, 'locale = "fr_FR"', 'locale = "fr\0FR"')
    e = refused(root)
    assert (e.line, e.column) == (line, len('locale = "fr') + 1) and "NUL" in e.message


def test_a_10_mb_segmerge_toml_is_refused_with_its_limit(root):
    with toml(root).open("a") as fh:
        fh.write(("# " + "x" * 98 + "\n") * 100_000)
    e = refused(root)
    assert "1 MB" in e.message and "1,000,000 bytes" in e.message


def test_a_utf8_bom_is_fine(root):
    toml(root).write_bytes(b"\xef\xbb\xbf" + toml(root).read_bytes())
    assert wsmod.load(root).config.locale == "fr_FR"


# -- the unsubscribe link ---------------------------------------------------------------------


def test_an_http_unsubscribe_url_stops_run_with_exit_2_and_mails_nobody(root):
    line = edit(root, UNSUB, UNSUB.replace("https://", "http://"))
    proc = sm(root, "run", "profils", "--as-of", AS_OF)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{toml(root)}:{line}: mail.unsubscribe_url: must be an https:// address" in proc.stderr
    assert "RFC 8058" in proc.stderr and "Traceback" not in proc.stderr
    assert untouched(root)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/u?token={token}",  # loopback too: no test relies on it
        "https://boutique-dimanche.fr/u?token={token}>, <https://evil.example/",
        "https://boutique-dimanche.fr/u ?token={token}",
        "ftp://boutique-dimanche.fr/u?token={token}",
        "https://",
    ],
)
def test_an_unsubscribe_url_letters_cannot_carry_is_refused_at_validate(root, url):
    line = edit(root, UNSUB, f'unsubscribe_url = "{url}"')
    e = refused(root)
    assert (e.line, e.field) == (line, "mail.unsubscribe_url")


# -- wrong shapes and types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            "[campaigns.profils]\n",
            "[[campaigns]]\nname = 'x'\n\n[campaigns.profils]\n",
            "campaigns",
        ),
        ("[mail]\n", 'mail = "bonjour@boutique-dimanche.fr"\n[mail2]\n', "mail"),
        ('timezone = "Europe/Paris"', "timezone = 2026-01-01", "timezone"),
        (
            'tag_prefix = "seg:"',
            'tag_prefix = "seg:"\nholdout = "10%"',
            "campaigns.profils.holdout",
        ),
        ('rules = "segrules/rfm.yaml"', 'rules = ["segrules/rfm.yaml"]', "campaigns.rfm.rules"),
        ('schedule = "0 9 * * MON"', "schedule = 9", "campaigns.profils.schedule"),
        (SENDER, 'from = "La Boutique"', "mail.from"),
        (
            'tag_prefix = "rfm:"',
            'tag_prefix = "rfm:"\nreply_to = "sav.boutique.fr"',
            "campaigns.rfm.reply_to",
        ),
    ],
)
def test_a_wrong_shape_or_type_names_its_line_and_setting(root, old, new, field):
    line = edit(root, old, new)
    e = refused(root)
    assert e.field == field and e.line is not None and line <= e.line <= line + 2


def test_a_duplicate_key_names_its_line(root):
    line = edit(root, 'locale = "fr_FR"', 'locale = "fr_FR"\nlocale = "en_US"')
    e = refused(root)
    assert e.line == line + 1 and "not valid TOML" in e.message


def test_a_connector_setting_of_the_wrong_type_names_its_line(root):
    line = edit(root, 'on_bad_rows = "skip"', 'on_bad_rows = "skip"\ndelimiter = [";"]')
    ws = wsmod.load(root)
    with pytest.raises(ConfigError) as err:
        open_campaign(ws, "profils", as_of=AS_OF)
    assert (err.value.file, err.value.line) == (str(toml(root)), line + 1)
    assert err.value.field == "demo.delimiter"
    assert untouched(root)


# -- the outbox stays in the workspace --------------------------------------------------------


@pytest.mark.parametrize("path", ["../elsewhere", "/tmp", "outbox/../../elsewhere", "~"])
def test_an_outbox_path_leading_out_of_the_workspace_is_refused(root, path):
    line = edit(root, 'path = "outbox"', f'path = "{path}"')
    e = refused(root)
    assert (e.line, e.field) == (line, "destinations.outbox.path")
    assert "outside the workspace" in e.message


def test_an_outbox_symlinked_out_of_the_workspace_is_refused(root, tmp_path):
    elsewhere = tmp_path / "public_html"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "outbox")
    e = refused(root)
    assert e.field == "destinations.outbox.path" and str(elsewhere) in e.message
    assert not list(elsewhere.iterdir())


def test_an_outbox_folder_inside_the_workspace_is_fine(root):
    edit(root, 'path = "outbox"', 'path = "envois/lettres"')
    assert wsmod.load(root).config.destinations["outbox"].settings()["path"] == "envois/lettres"


# -- what the TOML reader itself cannot take --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("{a = " * 3000 + "1" + "}" * 3000, "nested too deeply"),
        ("9" * 5000, "number is too long"),
    ],
)
def test_values_the_toml_reader_chokes_on_name_their_line(root, value, words):
    """tomllib recurses into nested arrays, and Python refuses 4,300-digit integers."""
    line = edit(root, 'locale = "fr_FR"', f'locale = "fr_FR"\nsurprise = {value}')
    e = refused(root)
    assert e.line == line + 1 and words in e.message
