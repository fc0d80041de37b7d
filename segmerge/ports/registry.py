"""Finding connectors: the entry-point group every connector, built-in or not, registers in.

Kept apart from the interfaces (ports/connector.py) so that a plugin's module, which
imports only the interfaces, never pulls in the machinery that discovers plugins;
the engine alone calls :func:`create`, and a plugin is installed like any other
package (``[project.entry-points."segmerge.connectors.v1"]``).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.ports.connector import Connector, ConnectorContext

__all__ = ["ENTRY_POINT_GROUP", "available", "create", "load_class"]

ENTRY_POINT_GROUP = "segmerge.connectors.v1"


def available() -> dict[str, str]:
    """Installed connectors, name -> ``module:Class``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_class(
    connector: str, *, file: Path | None = None, field_name: str | None = None
) -> type[Connector]:
    """The class registered as ``connector``; a name nobody registered, or a class that is
    not a :class:`Connector`, is a configuration error naming the setting."""
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
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
