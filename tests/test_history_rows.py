"""`segmerge history`'s table of actions reads the same whether its rows are written at the
widths rich chose for the widest ones (a wide terminal) or laid out by rich one by one
(a terminal too narrow for them): segmerge/cli/history.py ``Rows``."""

from __future__ import annotations

import io

import pytest
from rich.text import Text

from segmerge.cli.console import SafeConsole, visible
from segmerge.cli.history import Rows, _table

HEADS = [
    ("contact", {"no_wrap": True}),
    ("action", {}),
    ("segment", {"max_width": 16}),
    ("status", {}),
    ("to / detail", {"ratio": 1}),
]


def rows() -> list[list[str]]:
    """Contacts of every shape a ledger holds: short and long cells, a long word, an em
    dash, wide characters, a control character a stranger typed, an empty cell."""
    out = [
        [f"{i:05d}", "send", "fidèles", "done", f"c{i}@example.org — outbox/x/{i:05d}.eml"]
        for i in range(40)
    ]
    out += [
        ["00100", "tag", "", "done", "seg:fidèles"],
        ["00101", "send", "nouveaux-2026", "failed", "refusé : boîte pleine"],
        ["00102", "send", "zens", "uncertain", "東京@example.jp — 送信"],
        ["00103", "send", "zens", "done", "evil\x1b]0;x\x07@example.org"],
        ["00104", "send", "zens", "done", "x" * 70],
    ]
    return out


def printed(view, width: int) -> str:
    console = SafeConsole(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(view)
    return console.export_text()


@pytest.mark.parametrize("width", [200, 100, 60])
def test_the_rows_read_as_rich_lays_out_the_table(width):
    table = _table(*HEADS)  # rich's own table of what is shown, every cell laid out
    for row in rows():
        table.add_row(*(Text(visible(cell)) for cell in row))
    fast = printed(Rows(HEADS, rows()), width)
    assert fast == printed(table, width)
    assert "\x1b" not in fast  # the stranger's escape is shown, not sent
    if width == 200:  # nothing wraps: the rows are written at the widest ones' widths
        assert "evil\\x1b]0;x\\x07@example.org" in fast
