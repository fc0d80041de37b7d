"""Finding connectors: the entry-point group every connector, built-in or not, registers in.

Kept apart from the interfaces (ports/connector.py) so that a plugin's module, which
imports only the interfaces, never pulls in the machinery that discovers plugins;
the engine alone calls :func:`create`, and a plugin is installed like any other
package (``[project.entry-points."segmerge.connectors.v1"]``).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.ports.connector import Connector, ConnectorContext

__all__ = ["ENTRY_POINT_GROUP", "available", "create", "load_class"]

ENTRY_POINT_GROUP = "segmerge.connectors.v1"

#: the group's entry points, under the import path (each folder and its mtime) they were read on
_READ: dict[tuple[tuple[str, int], ...], tuple[EntryPoint, ...]] = {}


def _stamp(path: str) -> tuple[str, int]:
    try:
        path = path or os.getcwd()  # "" on the import path: the working directory
        return path, os.stat(path).st_mtime_ns
    except OSError:
        return path, -1


def _entry_points() -> tuple[EntryPoint, ...]:
    """Why not read them each time: a reading opens every installed distribution's
    metadata (7 ms with 110 of them), and a command looks connectors up several times.
    Installing or removing a package adds or removes a folder on the import path, which
    changes that folder's mtime: the key, and the cached reading is dropped."""
    key = tuple(map(_stamp, sys.path))
    if key not in _READ:
        _READ.clear()
        _READ[key] = tuple(entry_points(group=ENTRY_POINT_GROUP))
    return _READ[key]


def available() -> dict[str, str]:
    """Installed connectors, name -> ``module:Class``."""
    return {ep.name: ep.value for ep in _entry_points()}


def load_class(
    connector: str, *, file: Path | None = None, field_name: str | None = None
) -> type[Connector]:
    """The class registered as ``connector``; a name nobody registered, or a class that is
    not a :class:`Connector`, is a configuration error naming the setting."""
    eps = {ep.name: ep for ep in _entry_points()}
    if connector not in eps:
        known = ", ".join(sorted(eps)) or _("none")
        raise ConfigError(
            _("unknown connector {connector!r} (installed: {known})").format(
                connector=connector, known=known
            ),
            file=file,
            field=field_name,
            hint=_(
                "`segmerge connectors` lists them; a plugin registers under the "
                "entry-point group {entry_point_group}"
            ).format(entry_point_group=ENTRY_POINT_GROUP),
        )
    cls = eps[connector].load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(
            _("connector {connector!r} is not a segmerge Connector").format(connector=connector),
            file=file,
        )
    return cls


def create(connector: str, ctx: ConnectorContext) -> Connector:
    """An instance of the connector a workspace names, given its context."""
    cls = load_class(connector, file=ctx.config_file, field_name=f"{ctx.name}.connector")
    instance: Connector = cls(ctx)
    return instance
