"""The plugin API: everything a connector imports, and nothing else.

A connector (built in, under ``connectors/``, or a third-party package) writes
``from segmerge.ports import Source, Tables, HttpClient, ...`` and never reaches
into the engine's modules, so the engine can be reorganised without breaking a
plugin, and what a plugin may rely on is this list: a name missing here is not
part of the contract. import-linter checks that ``connectors/`` imports nothing
of ``segmerge`` but this package; docs/plugins.md describes each name.

The submodules (``segmerge.ports.connector``, ``.schema``, ``.http``...) are where
the names live; the engine imports them directly, a plugin imports this package.
Importing it loads neither pandas (a table loads it when it is built) nor the
libraries only connectors need (requests, keyring): the HTTP names and
``secret_env_var`` are imported at their first use (:data:`_LAZY`), so the engine,
which imports ``segmerge.ports.*`` everywhere and never speaks HTTP itself, does
not pay for them in every command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from segmerge.errors import (
    BadAnswer,
    ConfigError,
    ConnectorError,
    CredentialError,
    DataError,
    SegmergeError,
)
from segmerge.i18n import _, ngettext, number
from segmerge.ports.addresses import AddressError, normalise, normalise_column, normalised_or_none
from segmerge.ports.connector import (
    Action,
    ActionKind,
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Destination,
    Outcome,
    OutcomeStatus,
    PullInstead,
    Source,
)
from segmerge.ports.creating import create_once, failure_status
from segmerge.ports.locks import file_lock
from segmerge.ports.rate_limit import RateLimit
from segmerge.ports.schema import (
    CONTACT_COLUMNS,
    EVENT_COLUMNS,
    EVENT_KINDS,
    ORDER_COLUMNS,
    ORDER_OPTIONAL,
    STRING,
    UTC,
    Tables,
    conform,
    empty_events,
    empty_orders,
    frame_from_arrow,
    vendor_times,
)
from segmerge.ports.sql import quote_name, text_literal
from segmerge.workspace.storage import StorageError, is_disk_error

if TYPE_CHECKING:  # what _LAZY loads at first use, seen by the type checker at once
    from segmerge.ports.http import HttpClient, batched
    from segmerge.ports.http_answers import field_of, retry_after, vendor_reason
    from segmerge.ports.rate_headers import brevo_budget, hubspot_budget
    from segmerge.workspace.secrets import env_var as secret_env_var

__all__ = [
    # the interfaces
    "Action",
    "ActionKind",
    "Connector",
    "ConnectorContext",
    "ConnectorSettings",
    "Destination",
    "Outcome",
    "OutcomeStatus",
    "PullInstead",
    "Source",
    # the canonical tables
    "CONTACT_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "ORDER_COLUMNS",
    "ORDER_OPTIONAL",
    "STRING",
    "UTC",
    "Tables",
    "conform",
    "empty_events",
    "empty_orders",
    "frame_from_arrow",
    "vendor_times",
    # SQL a source's database reads
    "quote_name",
    "text_literal",
    # talking to a platform
    "HttpClient",
    "RateLimit",
    "batched",
    "brevo_budget",
    "create_once",
    "failure_status",
    "field_of",
    "hubspot_budget",
    "retry_after",
    "vendor_reason",
    # e-mail addresses
    "AddressError",
    "normalise",
    "normalise_column",
    "normalised_or_none",
    # files and credentials
    "StorageError",
    "file_lock",
    "is_disk_error",
    "secret_env_var",
    # errors a connector raises
    "BadAnswer",
    "ConfigError",
    "ConnectorError",
    "CredentialError",
    "DataError",
    "SegmergeError",
    # sentences the user reads
    "_",
    "ngettext",
    "number",
]

#: name -> (module, name there) of what is imported at its first use
_LAZY = {
    "HttpClient": ("segmerge.ports.http", "HttpClient"),
    "batched": ("segmerge.ports.http", "batched"),
    "field_of": ("segmerge.ports.http_answers", "field_of"),
    "retry_after": ("segmerge.ports.http_answers", "retry_after"),
    "vendor_reason": ("segmerge.ports.http_answers", "vendor_reason"),
    "brevo_budget": ("segmerge.ports.rate_headers", "brevo_budget"),
    "hubspot_budget": ("segmerge.ports.rate_headers", "hubspot_budget"),
    "secret_env_var": ("segmerge.workspace.secrets", "env_var"),
}

if not TYPE_CHECKING:  # the type checker takes the imports above, and flags any other name

    def __getattr__(name: str) -> object:
        """A lazy name's object, imported now and kept here for the next lookup."""
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module, there = _LAZY[name]
        value = importlib.import_module(module).__dict__[there]
        globals()[name] = value
        return value
