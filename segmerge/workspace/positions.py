"""Where a setting sits in segmerge.toml, for error messages that name the line.

tomllib gives values, not positions; these find the line of a key or table the
way a reader would, best effort, so that every configuration error says where.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path


def locate_setting(config_file: Path, name: str, keys: list[str]) -> int | None:
    """The line of a connector's setting (``[sources.<name>]`` or ``[destinations.<name>]``).

    For errors raised where only the connector's name is known; None when the file
    cannot be read again.
    """
    try:
        text = config_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for table in ("sources", "destinations"):
        line = locate_key(text, [table, name, *keys])
        if line is not None:
            return line
    return None


def locate_key(text: str, path: list[str]) -> int | None:
    """Best-effort line of a dotted key in TOML text, for error messages.

    Looks for the deepest `[table]` header that is a prefix of the path, then
    for the key below it; falls back to the table header's line.
    """
    lines = text.splitlines()
    best_line: int | None = None
    header_re = re.compile(r"^\s*\[\[?([^\]]+)\]\]?\s*(#.*)?$")  # [table], [[array]]
    current: list[str] = []
    for i, raw in enumerate(lines, start=1):
        m = header_re.match(raw)
        if m:
            current = [p.strip().strip('"') for p in m.group(1).split(".")]
            if current == path[: len(current)]:
                best_line = i
            continue
        if current == path[:-1] and path:
            key = raw.split("=", 1)[0].strip().strip('"')
            if "=" in raw and key == path[-1]:
                return i
        if not current and len(path) == 1 and raw.split("=", 1)[0].strip() == path[0]:
            return i
    return best_line


def first_line(text: str, test: Callable[[str], bool]) -> int | None:
    """The first line of ``text`` that passes ``test`` (to place errors tomllib cannot)."""
    return next((i for i, raw in enumerate(text.splitlines(), start=1) if test(raw)), None)


def toml_position(msg: str) -> tuple[int | None, int | None]:
    m = re.search(r"line (\d+), column (\d+)", msg)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def strip_position(msg: str) -> str:
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
