"""The `files` connector: a folder of CSV, Excel or Parquet exports, read and tagged in place.

Most small shops have no API, only the export their CRM, shop or spreadsheet
makes; this connector takes those files as they are (see DESIGN.md, "The
workspace" and docs/connectors/files.md), each table with its own file and
mapping, or a shop's preset, and writes segment tags back into the contacts
file without disturbing the rest, so that the next import carries the segments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from segmerge.ports import (
    EVENT_COLUMNS,
    Action,
    ConfigError,
    ConnectorSettings,
    DataError,
    Destination,
    Outcome,
    Source,
    Tables,
    _,
    conform,
    empty_events,
    empty_orders,
    number,
)

from .files_columns import (
    Problem,
    ambiguous_amounts,
    duplicates,
    first_error,
    parse_column,
    problem,
)
from .files_dates import isin
from .files_duckdb import Connection, Decided
from .files_duckdb_source import CANONICAL, DuckdbFiles
from .files_link import fold_line_items, link_by_email, no_buyer
from .files_read import RawTable, fold, header_names, read_raw
from .files_tables import FilesSettings, FileTable, Plan, Role, Where, locate, plans
from .files_write import push_tags

__all__ = ["FileTable", "FilesConnector", "FilesSettings"]

REQUIRED: dict[str, tuple[str, ...]] = {
    "contacts": ("contact_id",),
    "orders": ("ordered_at", "amount"),  # and contact_id or email: see _table
    "events": EVENT_COLUMNS,
}


#: "no orders file, so no orders": one sentence per role (a role's name is no word to translate)
_NO_FILE = {
    "contacts": lambda: _("{source}: no contacts file, so no contacts"),
    "orders": lambda: _("{source}: no orders file, so no orders"),
    "events": lambda: _("{source}: no events file, so no events"),
}


class FilesConnector(DuckdbFiles, Source, Destination):
    Settings: ClassVar[type[ConnectorSettings]] = FilesSettings
    description: ClassVar[str] = (
        "CSV, Excel or Parquet exports in a folder of the workspace; "
        "presets for PrestaShop, WooCommerce and Shopify exports"
    )
    accepts: ClassVar[frozenset[str]] = frozenset({"tag", "untag"})
    idempotent: ClassVar[bool] = True
    batch_size = 50_000  # each batch rewrites the whole contacts file: few, large batches
    settings: FilesSettings

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._con = Connection(ctx.root, self.settings)
        self._decided: Decided | None = None
        self._why: str | None = None

    # -- where the files are ---------------------------------------------------------------

    def folder(self) -> Path:
        folder = self.ctx.path(self.settings.path)
        if not folder.is_dir():
            raise ConfigError(
                _("folder {path} does not exist").format(path=repr(self.settings.path)),
                file=self.ctx.config_file,
                field=f"{self.name}.path",
            )
        return folder

    def lock_identity(self) -> str:
        """The contacts file its tags go into: every name writing that file shares one lock."""
        try:
            contacts = self.files().get("contacts")
        except ConfigError:  # the push itself reports the missing file
            contacts = None
        return f"file:{contacts.resolve()}" if contacts is not None else super().lock_identity()

    def files(self) -> dict[Role, Path | None]:
        return {role: plan.path for role, plan in self.plans().items()}

    def plans(self) -> dict[Role, Plan]:
        """Each table's settings and file: as named (a glob: the newest), the preset's, <role>.*."""
        folder = self.folder()
        found = plans(self.settings, self.name)
        where = Where(folder, self.settings.path, self.ctx.config_file, self.name)
        for plan in found.values():
            locate(where, plan)
        if found["contacts"].path is None:
            raise ConfigError(
                _("no contacts file (contacts.csv, .xlsx or .parquet) in {path}").format(
                    path=repr(self.settings.path)
                ),
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
        for role, plan in self.plans().items():  # which file a glob chose: pull's notes say
            if plan.path is None:
                notes.append(_NO_FILE[role]().format(source=self.name))
                continue
            try:
                with plan.path.open("rb") as fh:
                    fh.read(1)
            except OSError as exc:
                raise ConfigError(
                    _("cannot read {file}: {problem}").format(
                        file=self.display(plan.path), problem=exc.strerror
                    ),
                    file=self.ctx.config_file,
                    field=f"{self.name}.{role}",
                ) from None
        return notes

    # -- pull --------------------------------------------------------------------------------

    def pull(self, since: str | None = None) -> Tables:
        """Read the three files; ``since`` is ignored, since an export is always whole."""
        skipped: dict[str, int] = {}
        notes: list[str] = []
        warnings: list[str] = []
        origins: dict[str, str] = {}
        top_unused = set(self.settings.columns)
        frames: dict[str, pd.DataFrame] = {}
        for role, plan in self.plans().items():
            notes.extend(plan.notes)
            if plan.path is None:
                continue
            parts = []
            for path in (plan.path, *plan.parts):
                raw = read_raw(
                    path,
                    self.display(path),
                    encoding=plan.encoding,
                    delimiter=plan.delimiter,
                    sheet=plan.sheet,
                )
                headers = {fold(h) for h in raw.headers}
                top_unused = {k for k in top_unused if fold(k) not in headers}
                unused = [k for k in plan.own_columns if fold(k) not in headers]
                if unused:
                    notes.append(
                        _("{file}: `columns` names headers it does not have: {names}").format(
                            file=raw.display, names=unused
                        )
                    )
                frame, dropped = self._table(plan, raw, notes, warnings)
                if dropped:
                    skipped[raw.display] = dropped
                parts.append(frame)
            origins[role] = ", ".join(self.display(p) for p in (plan.path, *plan.parts))
            frames[role] = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        if top_unused:
            unused = [k for k in self.settings.columns if k in top_unused]
            notes.append(
                _("{source}: `columns` names headers found in no file: {names}").format(
                    source=self.name, names=unused
                )
            )
        contacts = frames["contacts"]
        if "orders" in frames:
            frames["orders"], linked = link_by_email(
                frames["orders"], contacts, self.name, origins["orders"]
            )
            notes.extend(linked)
        if "events" in frames:
            known = isin(frames["events"]["contact_id"], contacts["contact_id"])
            strangers = int((~known).sum())
            if strangers:
                notes.append(
                    _("{source}: {n} events for contacts not in the file").format(
                        source=self.name, n=number(strangers)
                    )
                )
        tables = Tables(
            contacts,
            frames.get("orders", empty_orders()),
            frames.get("events", empty_events()),
            skipped=skipped,
            notes=notes,
            warnings=warnings,
            origins=origins,
        )
        return conform(tables, source=self.name)

    def _table(
        self, plan: Plan, raw: RawTable, notes: list[str], warnings: list[str]
    ) -> tuple[pd.DataFrame, int]:
        role, preset = plan.role, plan.preset
        if preset is not None and preset.text_mark:
            raw = _without_text_marks(raw)
        names = header_names(raw.headers, plan.columns, CANONICAL[role])
        names = [n or f"column_{p}" for n, p in zip(names, raw.positions, strict=True)]
        seen = _unique(names, raw)
        if role == "orders" and "contact_id" not in seen and "email" not in seen:
            raise no_buyer(raw, preset.orders_hint if preset is not None else "")
        missing = [c for c in REQUIRED[role] if c not in seen]
        if missing:
            raise DataError(
                _("no {names} column among the headers {headers}").format(
                    names=_(" or ").join(missing), headers=raw.headers
                ),
                file=raw.display,
                line=raw.header_line or None,
                hint=_("map the file's own header, e.g. {example}").format(
                    example=f'columns = {{ "N° client" = "{missing[0]}" }}'
                ),
            )
        if preset is not None and preset.line_items and role == "orders" and "order_id" in seen:
            raw = fold_line_items(raw, seen["order_id"], seen["amount"], notes, warnings)
        out: dict[str, pd.Series] = {}
        problems: list[Problem] = []
        for i, name in enumerate(names):
            values, bad = parse_column(role, name, raw, i, self.ctx.timezone)
            if role == "orders" and name == "contact_id":
                values, bad = _buyer(raw, i, values, seen, plan)
            if role == "orders" and name == "amount":
                warning = ambiguous_amounts(raw, i)
                if warning:
                    warnings.append(warning)
            out[name] = values
            if bad is not None:
                problems.append(bad)
        if role == "contacts":
            problems.append(duplicates(raw, seen["contact_id"], out["contact_id"]))
        frame = pd.DataFrame(out)
        if role == "orders" and "order_id" not in frame.columns:
            frame["order_id"] = pd.Series(raw.lines, dtype="int64").astype(str).to_numpy()
            notes.append(
                _("{file}: no order number column; line numbers stand in").format(file=raw.display)
            )
        bad_rows = np.zeros(len(frame), dtype=bool)
        for p in problems:
            bad_rows |= p.bad
        if not bad_rows.any():
            return frame, 0
        if plan.on_bad_rows == "error":
            raise first_error(raw, problems)
        lines = raw.lines[bad_rows]
        shown = ", ".join(str(x) for x in lines[:5]) + (", …" if len(lines) > 5 else "")
        said = _("{file}: skipped {n} unreadable rows (lines {lines})")
        notes.append(said.format(file=raw.display, n=number(len(lines)), lines=shown))
        return frame[~bad_rows].reset_index(drop=True), int(bad_rows.sum())

    # -- push --------------------------------------------------------------------------------

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        """Tags go into the contacts file's tags column, the whole batch in one atomic rewrite."""
        plan = self.plans()["contacts"]
        assert plan.path is not None  # plans() raises when there is none
        return push_tags(
            plan.path,
            self.display(plan.path),
            actions,
            mapping=plan.columns,
            encoding=plan.encoding,
            delimiter=plan.delimiter,
            sheet=plan.sheet,
        )


def _unique(names: list[str], raw: RawTable) -> dict[str, int]:
    """Each name's column; two columns read as one name is an error naming both."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            first = seen[name]
            raise DataError(
                _("two columns are both read as {name}: {a} (column {column}) and {b}").format(
                    name=repr(name),
                    a=repr(raw.headers[first]),
                    column=raw.positions[first],
                    b=repr(raw.headers[i]),
                ),
                file=raw.display,
                line=raw.header_line or None,
                column=raw.positions[i],
                field=raw.headers[i],
                hint=_("rename one of them, or map them apart with `columns = {{...}}`"),
            )
        seen[name] = i
    return seen


def _buyer(
    raw: RawTable, i: int, values: pd.Series, seen: dict[str, int], plan: Plan
) -> tuple[pd.Series, Problem | None]:
    """An order's customer id; a guest's (WooCommerce's 0) or an empty one links by e-mail
    when the file has one, and is unreadable only when the order has neither."""
    guests = plan.preset.guest_ids if plan.preset is not None else ()
    if guests:
        values = values.mask(values.isin(list(guests)))
    missing = values.isna().to_numpy(dtype=bool)
    if "email" in seen:
        missing = missing & raw.data[seen["email"]].isna().to_numpy(dtype=bool)
        expected = "a customer id, or an e-mail in the email column"
    else:
        expected = "a contact id"
    return values, problem(raw, i, missing, expected) if missing.any() else None


def _without_text_marks(raw: RawTable) -> RawTable:
    """`'9013808660771` -> `9013808660771`: the apostrophe only told a spreadsheet "text"."""
    data = raw.data.copy()
    for col in data.columns:
        s = data[col]
        if isinstance(s.dtype, pd.StringDtype):
            data[col] = s.str.removeprefix("'")
    return dataclasses.replace(raw, data=data)
