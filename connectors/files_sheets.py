"""Spreadsheet cells as the text a CSV export would hold, and the sheet a setting names.

Reading (`files_read`) and writing tags back (`files_write`) both go through these,
so a workbook is read the same way whichever way the data flows.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from segmerge.ports import DataError, _


def excel_text(value: Any) -> str | None:
    """A cell as the text a CSV export would have held, so that one parser serves both."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def open_sheet(workbook: Any, sheet: str | int | None, display: str) -> Any:
    if sheet is None:
        return workbook.worksheets[0]
    if isinstance(sheet, int):
        if 1 <= sheet <= len(workbook.worksheets):
            return workbook.worksheets[sheet - 1]
    elif sheet in workbook.sheetnames:
        return workbook[sheet]
    raise DataError(
        _("no sheet {sheet} in this workbook (sheets: {names})").format(
            sheet=repr(sheet), names=", ".join(workbook.sheetnames)
        ),
        file=display,
        field="sheet",
    )
