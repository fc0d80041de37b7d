"""Which file each table of a files source comes from, and how that file is read.

One mapping for every file joined PrestaShop's orders to the wrong customers
(both exports call their own id `ID`), so each table may have its own settings:
`[sources.shop.orders] file = "...", columns = {...}`. What a table does not set
comes from the source's top-level settings, then from the shop preset. Column
mappings merge header by header: the table's own `columns` over the top-level
`columns` over the preset's, so `[sources.shop.orders] columns = { "ID" =
"order_id" }` fixes the orders' `ID` and keeps the rest (a header read twice as
one name is still an error naming both).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from segmerge.ports import ConfigError, ConnectorSettings, _, number

from .files_presets import PRESETS, Preset, PresetName
from .files_read import ALL_SUFFIXES

Role = Literal["contacts", "orders", "events"]
ROLES: tuple[Role, ...] = ("contacts", "orders", "events")
GLOB_CHARS = frozenset("*?[")


class TableOptions(ConnectorSettings):
    """How one file is read; the source's top level gives the defaults for every file."""

    columns: dict[str, str] = {}
    on_bad_rows: Literal["error", "skip"] | None = None
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
                said = _("unknown encoding {value} (expected e.g. 'utf-8', 'cp1252')")
                raise ValueError(said.format(value=repr(v))) from None
        return v

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str | None) -> str | None:
        if v is not None and v.lower() in ("tab", "\\t"):
            return "\t"
        if v is not None and (len(v) != 1 or v in '"\r\n'):
            said = _("expected one character such as ';', ',' or 'tab', got {value}")
            raise ValueError(said.format(value=repr(v)))
        return v

    @field_validator("columns")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for header, name in v.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                said = _(
                    "{header} maps to {name}; expected a lower snake case name such as "
                    "'contact_id' or 'code_postal'"
                )
                raise ValueError(said.format(header=repr(header), name=repr(name)))
        return v


class FileTable(TableOptions):
    """`[sources.<name>.contacts]` (or orders, events): one file and its own mapping.

    The flat `contacts = "clients.csv"` is the same table with only its file, so
    that a mistyped key inside a table is reported at its own place.
    """

    file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        return {"file": data} if isinstance(data, str) else data


class FilesSettings(TableOptions):
    path: str
    preset: PresetName | None = None
    #: who computes: "auto" (DuckDB where it reads the files exactly as pandas, see
    #: files_duckdb), "duckdb" (refused when it cannot) or "pandas"
    engine: Literal["auto", "duckdb", "pandas"] = "auto"
    #: DuckDB's resources: memory ("2GiB"; default half the machine), threads (default
    #: all cores), spill folder (default .segmerge/duckdb in the workspace)
    memory_limit: str | None = None
    threads: int | None = Field(None, ge=1)
    temp_directory: str | None = None
    contacts: FileTable = FileTable()
    orders: FileTable = FileTable()
    events: FileTable = FileTable()

    def table(self, role: Role) -> FileTable:
        return {"contacts": self.contacts, "orders": self.orders, "events": self.events}[role]


@dataclass
class Plan:
    """Everything needed to read one table's file: the merged settings of that table."""

    role: Role
    file: str | None  # a name, a glob, or None for `<role>.*`
    columns: dict[str, str]
    own_columns: dict[str, str]  # the table's own `columns`, for the "unused" note
    on_bad_rows: Literal["error", "skip"]
    encoding: str | None
    delimiter: str | None
    sheet: str | int | None
    preset: Preset | None = None
    setting: str = ""  # where the file name was set, for messages
    path: Path | None = None
    #: the next parts of an export split into numbered files (Shopify's orders_export_2.csv…)
    parts: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plans(settings: FilesSettings, source: str) -> dict[Role, Plan]:
    """Each table's merged settings: its own table, else the top level, else the preset."""
    preset = PRESETS[settings.preset] if settings.preset else None
    out: dict[Role, Plan] = {}
    for role in ROLES:
        own = settings.table(role)
        preset_columns = preset.columns.get(role, {}) if preset else {}
        as_table = bool(own.model_fields_set - {"file"})
        setting = f"{source}.{role}.file" if as_table else f"{source}.{role}"
        out[role] = Plan(
            role=role,
            file=own.file or (preset.files.get(role) if preset else None),
            columns={**preset_columns, **settings.columns, **own.columns},
            own_columns=dict(own.columns),
            on_bad_rows=own.on_bad_rows or settings.on_bad_rows or "error",
            encoding=own.encoding or settings.encoding,
            delimiter=own.delimiter or settings.delimiter,
            sheet=own.sheet if own.sheet is not None else settings.sheet,
            preset=preset,
            setting=setting,
        )
    return out


@dataclass(frozen=True)
class Where:
    """The folder a source reads, and how to name it and its settings in a message."""

    folder: Path
    setting: str  # the `path` setting as written
    config_file: Path
    source: str


def locate(where: Where, plan: Plan) -> None:
    """Set ``plan.path`` (and ``plan.parts``): the named file, the newest match of a glob,
    or `<role>.*`; a name or a glob that finds nothing is an error naming both."""
    if plan.file is None:
        plan.path = _default(where, plan.role)
    elif not is_glob(plan.file):
        named = where.folder / plan.file
        if not named.is_file():
            raise ConfigError(
                _("no file {name} in {folder}").format(
                    name=repr(plan.file), folder=repr(where.setting)
                ),
                file=where.config_file,
                field=plan.setting,
            )
        plan.path = named
    else:
        _glob(where, plan)


def _glob(where: Where, plan: Plan) -> None:
    assert plan.file is not None
    path, others = newest(where.folder, plan.file)
    if path is None:
        present = sorted(p.name for p in where.folder.iterdir() if p.is_file())
        shown = ", ".join(present[:8]) + (", …" if len(present) > 8 else "")
        hint = _("the folder holds: {names}").format(names=shown) if present else ""
        hint = hint or _("the folder is empty")
        if plan.preset is not None and plan.role == "orders" and plan.preset.orders_hint:
            hint += f"; {plan.preset.orders_hint}"
        raise ConfigError(
            _("no file matches {pattern} in {folder} ({role})").format(
                pattern=repr(plan.file), folder=repr(where.setting), role=plan.role
            ),
            file=where.config_file,
            field=plan.setting,
            hint=hint,
        )
    preset = plan.preset
    numbered = preset.parts.get(plan.role) if preset is not None else None
    if preset is not None and numbered and others:
        found = [re.fullmatch(numbered, p.name) for p in [path, *others]]
        if all(found):
            order = sorted((int(m[1]), p) for m, p in zip(found, [path, *others], strict=True) if m)
            parts = [p for _, p in order]
            plan.path, plan.parts = parts[0], parts[1:]
            plan.notes.append(
                _("{source}: reading {names} (one {shop} export in {n} parts)").format(
                    source=where.source,
                    names=", ".join(p.name for p in parts),
                    shop=preset.label,
                    n=number(len(parts)),
                )
            )
            return
    plan.path = path
    if others:
        listed = ", ".join(p.name for p in others[:5]) + (", …" if len(others) > 5 else "")
        plan.notes.append(
            _(
                "{source}: {pattern} matches {n} files; reading the newest, {name} (not {others})"
            ).format(
                source=where.source,
                pattern=repr(plan.file),
                n=number(len(others) + 1),
                name=path.name,
                others=listed,
            )
        )


def _default(where: Where, role: Role) -> Path | None:
    matches = default_files(where.folder, role)
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise ConfigError(
            _("several {role} files in {folder}: {names}").format(
                role=role, folder=repr(where.setting), names=names
            ),
            file=where.config_file,
            field=f"{where.source}.{role}",
            hint=_("name the one to use, e.g. {setting}").format(
                setting=f'{role} = "{matches[0].name}"'
            ),
        )
    return matches[0] if matches else None


def newest(folder: Path, pattern: str) -> tuple[Path | None, list[Path]]:
    """The newest file matching a glob (by modification time, then name), and the others.

    A shop names each export after its date (`customer_2026-12-01_101500.csv`), so
    the folder fills up with them; the last one downloaded is the one meant.
    """
    matches = [p for p in folder.glob(pattern) if p.is_file()]
    if not matches:
        return None, []
    matches.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    return matches[0], matches[1:]


def is_glob(name: str) -> bool:
    return any(c in GLOB_CHARS for c in name)


def default_files(folder: Path, role: Role) -> list[Path]:
    """`contacts.csv`, `Contacts.xlsx`...: the files a source without a name reads."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.stem.casefold() == role and p.suffix.lower() in ALL_SUFFIXES
    )
