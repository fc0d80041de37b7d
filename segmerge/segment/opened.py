"""Which source a command reads, and opening it: no engine imported.

Kept apart from segmerge.segment.segmentation (which imports the metrics, the rules
and the cache) so that `segment` can open its source and start the source's own
checks while the engine still imports (segmerge.cli.early).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.ports import registry
from segmerge.ports.connector import ConnectorContext, Source
from segmerge.workspace.config import Workspace


def connector_context(ws: Workspace, name: str, kind: str) -> ConnectorContext:
    table = ws.config.sources if kind == "source" else ws.config.destinations
    ref = table[name]
    return ConnectorContext(
        name=name,
        settings=ref.settings(),
        root=ws.root,
        config_file=ws.config_file,
        timezone=ws.tz,
        locale=ws.config.locale,
        secret=lambda: _secrets().lookup(name, ws.root),
        secret_origin=lambda: _secrets().where(name, ws.root),
    )


def _secrets() -> ModuleType:
    """keyring's imports (~65 ms of CPU) paid only by a connector that asks for its secret."""
    from segmerge.workspace import secrets

    return secrets


def open_source(ws: Workspace, name: str) -> Source:
    if name not in ws.config.sources:
        known = ", ".join(sorted(ws.config.sources)) or _("none")
        raise ConfigError(
            _("no source {name!r} (sources: {known})").format(name=name, known=known),
            file=ws.config_file,
        )
    ref = ws.config.sources[name]
    conn = registry.create(ref.connector, connector_context(ws, name, "source"))
    if not isinstance(conn, Source):
        raise ConfigError(
            _("connector {connector!r} cannot be a source").format(connector=ref.connector),
            file=ws.config_file,
            field=f"sources.{name}.connector",
        )
    return conn


def default_source_for(ws: Workspace, rules_path: Path) -> str:
    """`segment RULES` without `--source`: the source of a campaign using that rule set."""
    for c in ws.config.campaigns.values():
        if ws.path(c.rules).resolve() == rules_path.resolve():
            return c.source
    if len(ws.config.sources) == 1:
        return next(iter(ws.config.sources))
    raise ConfigError(
        _("no campaign uses {name} and the workspace has several sources").format(
            name=rules_path.name
        ),
        hint=_("pass --source NAME"),
    )
