"""The `files` connector: a folder of CSV, Excel or Parquet exports, read and tagged in place.

Most small shops have no API, only the export their CRM or spreadsheet makes;
this connector takes those files as they are (see DESIGN.md, "The workspace")
and writes segment tags back into the contacts file without disturbing the rest,
so that the next import into their tool carries the segments.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import field_validator

from segmerge.connector import Action, ConnectorSettings, Destination, Outcome, Source
from segmerge.errors import ConfigError, DataError
from segmerge.schema import (
    CONTACT_COLUMNS,
    EVENT_COLUMNS,
    ORDER_COLUMNS,
    ORDER_OPTIONAL,
    Tables,
    conform,
    empty_events,
    empty_orders,
)

from . import files_values as fv
from .files_dates import isin
from .files_read import ALL_SUFFIXES, RawTable, fold, header_names, read_raw
from .files_write import push_tags

Role = Literal["contacts", "orders", "events"]
ROLES: tuple[Role, ...] = ("contacts", "orders", "events")
CANONICAL: dict[str, tuple[str, ...]] = {
    "contacts": CONTACT_COLUMNS,
    "orders": ORDER_COLUMNS + ORDER_OPTIONAL,
    "events": EVENT_COLUMNS,
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "contacts": ("contact_id",),
    "orders": ("contact_id", "ordered_at", "amount"),
    "events": EVENT_COLUMNS,
}
SKIP_HINT = 'fix the file, or set on_bad_rows = "skip" in the source to leave such rows out'


class FilesSettings(ConnectorSettings):
    path: str
    contacts: str | None = None
    orders: str | None = None
    events: str | None = None
    columns: dict[str, str] = {}
    on_bad_rows: Literal["error", "skip"] = "error"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | int | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                codecs.lookup(v)
            except LookupError:
                raise ValueError(
                    f"unknown encoding {v!r} (expected e.g. 'utf-8', 'cp1252')"
                ) from None
        return v

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str | None) -> str | None:
        if v is not None and v.lower() in ("tab", "\\t"):
            return "\t"
        if v is not None and (len(v) != 1 or v in '"\r\n'):
            raise ValueError(f"expected one character such as ';', ',' or 'tab', got {v!r}")
        return v

    @field_validator("columns")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for header, name in v.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(
                    f"{header!r} maps to {name!r}; expected a lower snake case name "
                    "such as 'contact_id' or 'code_postal'"
                )
        return v


@dataclass
class Problem:
    """Cells of one column that could not be read, and how to describe one of them."""

    position: int
    header: str
    bad: np.ndarray
    describe: Callable[[int], str]


class FilesConnector(Source, Destination):
    Settings: ClassVar[type[ConnectorSettings]] = FilesSettings
    description: ClassVar[str] = "CSV, Excel or Parquet exports in a folder of the workspace"
    accepts: ClassVar[frozenset[str]] = frozenset({"tag", "untag"})
    idempotent: ClassVar[bool] = True

    settings: FilesSettings

    # -- where the files are ---------------------------------------------------------------

    def folder(self) -> Path:
        folder = self.ctx.path(self.settings.path)
        if not folder.is_dir():
            raise ConfigError(
                f"folder {self.settings.path!r} does not exist",
                file=self.ctx.config_file,
                field=f"{self.name}.path",
            )
        return folder

    def lock_identity(self) -> str:
        """The contacts file its tags are written into: every workspace and destination
        name writing that file shares one lock."""
        try:
            contacts = self.files().get("contacts")
        except ConfigError:  # the push itself reports the missing file
            contacts = None
        return f"file:{contacts.resolve()}" if contacts is not None else super().lock_identity()

    def files(self) -> dict[Role, Path | None]:
        """Each role's file: the one named in the settings, else `<role>.*` in the folder."""
        folder = self.folder()
        found: dict[Role, Path | None] = {}
        for role in ROLES:
            given: str | None = getattr(self.settings, role)
            if given is not None:
                path = folder / given
                if not path.is_file():
                    raise ConfigError(
                        f"no file {given!r} in {self.settings.path!r}",
                        file=self.ctx.config_file,
                        field=f"{self.name}.{role}",
                    )
                found[role] = path
                continue
            matches = sorted(
                p
                for p in folder.iterdir()
                if p.is_file() and p.stem.casefold() == role and p.suffix.lower() in ALL_SUFFIXES
            )
            if len(matches) > 1:
                names = ", ".join(p.name for p in matches)
                raise ConfigError(
                    f"several {role} files in {self.settings.path!r}: {names}",
                    file=self.ctx.config_file,
                    field=f"{self.name}.{role}",
                    hint=f'name the one to use, e.g. {role} = "{matches[0].name}"',
                )
            found[role] = matches[0] if matches else None
        if found["contacts"] is None:
            raise ConfigError(
                f"no contacts file (contacts.csv, .xlsx or .parquet) in {self.settings.path!r}",
                file=self.ctx.config_file,
                field=f"{self.name}.contacts",
            )
        return found

    def display(self, path: Path) -> str:
        """A path as the user wrote it: relative to the workspace when inside it."""
        try:
            return str(path.resolve().relative_to(self.ctx.root.resolve()))
        except ValueError:
            return str(path)

    def check(self) -> list[str]:
        notes = []
        for role, path in self.files().items():
            if path is None:
                notes.append(f"{self.name}: no {role} file, so no {role}")
                continue
            try:
                with path.open("rb") as fh:
                    fh.read(1)
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {self.display(path)}: {exc.strerror}",
                    file=self.ctx.config_file,
                    field=f"{self.name}.{role}",
                ) from None
        return notes

    # -- pull --------------------------------------------------------------------------------

    def pull(self, since: str | None = None) -> Tables:
        """Read the three files; ``since`` is ignored, since an export is always whole."""
        paths = self.files()
        skipped: dict[str, int] = {}
        notes: list[str] = []
        headers: set[str] = set()
        frames: dict[str, pd.DataFrame] = {}
        for role in ROLES:
            path = paths[role]
            if path is None:
                continue
            raw = read_raw(
                path,
                self.display(path),
                encoding=self.settings.encoding,
                delimiter=self.settings.delimiter,
                sheet=self.settings.sheet,
            )
            headers.update(fold(h) for h in raw.headers)
            frame, dropped = self._table(role, raw, notes)
            if dropped:
                skipped[raw.display] = dropped
            frames[role] = frame
        unused = [k for k in self.settings.columns if fold(k) not in headers]
        if unused:
            notes.append(f"{self.name}: `columns` names headers found in no file: {unused}")
        contacts = frames["contacts"]
        for role in ("orders", "events"):
            if role in frames:
                known = isin(frames[role]["contact_id"], contacts["contact_id"])
                strangers = int((~known).sum())
                if strangers:
                    notes.append(f"{self.name}: {strangers} {role} for contacts not in the file")
        tables = Tables(
            contacts,
            frames.get("orders", empty_orders()),
            frames.get("events", empty_events()),
            skipped=skipped,
            notes=notes,
        )
        return conform(tables, source=self.name)

    def _table(self, role: Role, raw: RawTable, notes: list[str]) -> tuple[pd.DataFrame, int]:
        names = header_names(raw.headers, self.settings.columns, CANONICAL[role])
        names = [n or f"column_{p}" for n, p in zip(names, raw.positions, strict=True)]
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                first = seen[name]
                raise DataError(
                    f"two columns are both read as {name!r}: {raw.headers[first]!r} "
                    f"(column {raw.positions[first]}) and {raw.headers[i]!r}",
                    file=raw.display,
                    line=raw.header_line or None,
                    column=raw.positions[i],
                    field=raw.headers[i],
                    hint="rename one of them, or map them apart with `columns = {...}`",
                )
            seen[name] = i
        missing = [c for c in REQUIRED[role] if c not in seen]
        if missing:
            raise DataError(
                f"no {' or '.join(missing)} column among the headers {raw.headers}",
                file=raw.display,
                line=raw.header_line or None,
                hint="map the file's own header, e.g. "
                f'columns = {{ "N° client" = "{missing[0]}" }}',
            )
        out: dict[str, pd.Series] = {}
        problems: list[Problem] = []
        for i, name in enumerate(names):
            values, problem = self._column(role, name, raw, i)
            out[name] = values
            if problem is not None:
                problems.append(problem)
        if role == "contacts":
            problems.append(self._duplicates(raw, seen["contact_id"], out["contact_id"]))
        frame = pd.DataFrame(out)
        if role == "orders" and "order_id" not in frame.columns:
            frame["order_id"] = pd.Series(raw.lines, dtype="int64").astype(str).to_numpy()
            notes.append(f"{raw.display}: no order number column; line numbers stand in")
        bad = np.zeros(len(frame), dtype=bool)
        for p in problems:
            bad |= p.bad
        if not bad.any():
            return frame, 0
        if self.settings.on_bad_rows == "error":
            raise self._error(raw, problems)
        lines = raw.lines[bad]
        shown = ", ".join(str(x) for x in lines[:5]) + (", …" if len(lines) > 5 else "")
        notes.append(f"{raw.display}: skipped {len(lines)} unreadable rows (lines {shown})")
        return frame[~bad].reset_index(drop=True), int(bad.sum())

    def _column(
        self, role: Role, name: str, raw: RawTable, i: int
    ) -> tuple[pd.Series, Problem | None]:
        s = raw.data[i]
        tz = self.ctx.timezone
        parsed: fv.Parsed | None = None
        if name == "contact_id":
            parsed = fv.identifier(s, "a contact id")
        elif role == "contacts" and name == "email":
            return fv.email(s), None
        elif role == "contacts" and name in ("first_name", "last_name"):
            return fv.text(s), None
        elif role == "contacts" and name == "subscribed":
            parsed = fv.boolean(s)
        elif role == "contacts" and name in ("created_at", "updated_at"):
            parsed = fv.datetimes(s, tz)
        elif role == "contacts" and name == "tags":
            return fv.tags(s, raw.delimiter), None
        elif role == "orders" and name == "order_id":
            parsed = fv.identifier(s, "an order number")
        elif role == "orders" and name == "ordered_at":
            parsed = fv.datetimes(s, tz, required=True)
        elif role == "orders" and name == "amount":
            parsed = fv.number(s, required=True, what="an amount like 12,50")
        elif role == "orders" and name == "category":
            return fv.text(s), None
        elif role == "orders" and name == "rating":
            parsed = fv.rating(s)
        elif role == "events" and name == "campaign_id":
            parsed = fv.identifier(s, "a campaign id")
        elif role == "events" and name == "event":
            parsed = fv.event(s)
        elif role == "events" and name == "at":
            parsed = fv.datetimes(s, tz, required=True)
        else:
            return fv.infer(s, tz), None
        if not parsed.bad.any():
            return parsed.values, None

        def describe(row: int, s: pd.Series = s, expected: str = parsed.expected) -> str:
            value = s.iloc[row]
            text = str(value) if len(str(value)) <= 80 else str(value)[:80] + "…"  # one line
            got = "an empty value" if pd.isna(value) else repr(text)
            return f"expected {expected}, got {got}"

        return parsed.values, Problem(raw.positions[i], raw.headers[i], parsed.bad, describe)

    def _duplicates(self, raw: RawTable, i: int, ids: pd.Series) -> Problem:
        dup = (ids.duplicated(keep="first") & ids.notna()).to_numpy(dtype=bool)
        first_line = pd.Series(raw.lines, index=ids.index).groupby(ids).transform("first")

        def describe(row: int) -> str:
            return (
                f"duplicate contact id {ids.iloc[row]!r} (already on line {first_line.iloc[row]})"
            )

        return Problem(raw.positions[i], raw.headers[i], dup, describe)

    def _error(self, raw: RawTable, problems: list[Problem]) -> DataError:
        """The first unreadable cell in file order, with how many more its column has."""
        firsts = [
            (int(raw.lines[np.argmax(p.bad)]), p.position, p) for p in problems if p.bad.any()
        ]
        line, _, p = min(firsts, key=lambda x: (x[0], x[1]))
        row = int(np.argmax(p.bad))
        message = p.describe(row)
        others = raw.lines[p.bad][1:]
        if len(others):
            shown = ", ".join(str(x) for x in others[:5]) + (", …" if len(others) > 5 else "")
            plural = "s" if len(others) > 1 else ""
            message += (
                f"; {len(others)} other bad value{plural} in this column (line{plural} {shown})"
            )
        more = sum(int(q.bad.any()) for q in problems if q is not p)
        also = {0: "", 1: "; another column has bad values too"}.get(
            more, f"; {more} other columns have bad values too"
        )
        hint = SKIP_HINT + also
        return DataError(
            message, file=raw.display, line=line, column=p.position, field=p.header, hint=hint
        )

    # -- push --------------------------------------------------------------------------------

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        """Tags go into the contacts file's tags column, the whole batch in one atomic rewrite."""
        path = self.files()["contacts"]
        assert path is not None  # files() raises when there is none
        return push_tags(
            path,
            self.display(path),
            actions,
            mapping=self.settings.columns,
            encoding=self.settings.encoding,
            delimiter=self.settings.delimiter,
            sheet=self.settings.sheet,
        )
