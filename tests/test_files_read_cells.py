"""How the files source reads a CSV export's cells, in process and on small files (cheap)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from connectors.files_read import read_raw
from segmerge.errors import DataError


def test_a_line_after_a_quoted_value_ending_in_a_newline_is_named_right(tmp_path: Path) -> None:
    """The newline closing a quoted value is a line of the file, even once the value is stripped."""
    path = tmp_path / "contacts.csv"
    path.write_text('contact_id;note\n1;"two\nlines\n"\n2;x\n3;y;extra\n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_raw(path, "contacts.csv")
    assert caught.value.line == 6


def test_cells_are_stripped_text_with_blank_lines_and_unnamed_empty_columns_dropped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("\n id ;Nom;;\n\n 1 ; Ana ;;\n2;;;\n;;;\n3;\tBo;;\n", encoding="utf-8")
    raw = read_raw(path, "contacts.csv")
    assert raw.headers == ["id", "Nom"] and raw.positions == [1, 2] and raw.header_line == 2
    assert raw.lines.tolist() == [4, 5, 7]
    assert all(raw.data[c].dtype == pd.StringDtype("pyarrow") for c in raw.data.columns)
    assert raw.data[0].tolist() == ["1", "2", "3"]
    assert raw.data[1].tolist() == ["Ana", pd.NA, "Bo"]
    assert list(raw.data.index) == [0, 1, 2]
