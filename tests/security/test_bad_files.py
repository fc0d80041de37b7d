"""CSV exports that are damaged or in an unexpected encoding: read right, or refused with a line.

The files source of a small workspace reads `data/contacts.csv` as a user's CRM
wrote it. What matters to the shop: a UTF-16 export (Excel's "Unicode text")
segments the same people as the UTF-8 one; a NUL byte, an unclosed quote or a
line with one value too many stops before anything is sent and names the line
to fix, instead of silently shifting every later contact by a column.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from segmerge.errors import DataError
from segmerge.segment.segmentation import segment
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"
HEADER = "contact_id;email;first_name;city"
ROWS = [
    "1;zoe@exemple.fr;Zoé;Orléans",
    "2;luc@exemple.fr;Luc;Paris",
    "3;ana@exemple.fr;Ana;Orléans",
    "4;ines@exemple.fr;Inès;Lyon",
]
RULES = """\
version: 1
segments:
  - name: orleans
    when: city == 'Orléans'
  - name: autres
    when: true
"""


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "segrules").mkdir()
    (tmp_path / "segrules" / "news.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "segmerge.toml").write_text(
        textwrap.dedent("""\
            timezone = "Europe/Paris"

            [sources.crm]
            connector = "files"
            path = "data"

            [destinations.outbox]
            connector = "outbox"
            """),
        encoding="utf-8",
    )
    return tmp_path


def contacts(root: Path, lines: list[str], encoding: str = "utf-8", bom: bytes = b"") -> None:
    text = "\r\n".join([HEADER, *lines]) + "\r\n"
    (root / "data" / "contacts.csv").write_bytes(bom + text.encode(encoding))


def orleans(root: Path) -> list[str]:
    """Who the rule set puts in the Orléans segment, by first name."""
    seg = segment(wsmod.load(root), "segrules/news.yaml", as_of=AS_OF)
    member = seg.assignment.matrix["orleans"].to_numpy()
    return sorted(seg.frame.loc[member, "first_name"].tolist())


def refused(root: Path) -> DataError:
    with pytest.raises(DataError) as err:
        segment(wsmod.load(root), "segrules/news.yaml", as_of=AS_OF)
    assert err.value.file == "data/contacts.csv"
    return err.value


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),  # no BOM: told by its zero bytes
        ("utf-16-be", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("cp1252", b""),
    ],
)
def test_an_export_in_another_encoding_segments_the_same_people(root, encoding, bom):
    contacts(root, ROWS, encoding, bom)
    assert orleans(root) == ["Ana", "Zoé"]


def test_a_nul_byte_names_its_line_and_column(root):
    contacts(root, [ROWS[0], "2;luc@exemple.fr;L\0uc;Paris", *ROWS[2:]])
    e = refused(root)
    assert (e.line, e.column) == (3, len("2;luc@exemple.fr;L") + 1) and "NUL" in e.message


def test_an_unclosed_quote_names_the_line_where_it_opened(root):
    contacts(root, [ROWS[0], '2;luc@exemple.fr;"Luc;Paris', *ROWS[2:]])
    e = refused(root)
    assert e.line == 3 and "never closed" in e.message


def test_an_unclosed_quote_after_a_multiline_value_still_names_its_own_line(root):
    """A quoted value may hold a line break (an address); lines, not records, are counted."""
    contacts(root, ['1;zoe@exemple.fr;"Zoé\r\nAnne";Orléans', ROWS[1], '3;"ana;Ana;Orléans'])
    e = refused(root)
    assert e.line == 5 and "never closed" in e.message


def test_a_line_with_more_values_than_the_header_names_its_line(root):
    contacts(root, [ROWS[0], ROWS[1], ROWS[2] + ";Loiret", ROWS[3]])
    e = refused(root)
    assert e.line == 4 and "more values than the header" in e.message
    assert "other line" not in e.message  # only one such line


def test_a_line_of_100000_values_is_refused_at_once_with_its_line(root):
    """A stray line of `x;x;x;...` once cost minutes (one pandas column per value)."""
    contacts(root, [ROWS[0], '2;luc@exemple.fr;"Luc\r\nLuc";Paris', "3;" + "x;" * 100_000, ROWS[3]])
    e = refused(root)
    assert e.line == 5 and "100002 values" in e.message and "4 columns" in e.message


def test_a_5000_character_bad_value_is_shown_cut_to_one_line(root):
    (root / "data" / "orders.csv").write_text(
        "contact_id;ordered_at;amount\n1;2026-01-01;12,50\n2;" + "9" * 5000 + ";10\n"
    )
    contacts(root, ROWS)
    with pytest.raises(DataError) as err:
        segment(wsmod.load(root), "segrules/news.yaml", as_of=AS_OF)
    e = err.value
    assert (e.file, e.line, e.field) == ("data/orders.csv", 3, "ordered_at")
    assert "9" * 80 + "…" in e.message and len(e.message) < 300
