"""The plugin API: everything a connector imports, and nothing else.

A connector (built in, under ``connectors/``, or a third-party package) writes
``from segmerge.ports import Source, Tables, HttpClient, ...`` and never reaches
into the engine's modules, so the engine can be reorganised without breaking a
plugin, and what a plugin may rely on is this list: a name missing here is not
part of the contract. import-linter checks that ``connectors/`` imports nothing
of ``segmerge`` but this package; docs/plugins.md describes each name.

The submodules (``segmerge.ports.connector``, ``.schema``, ``.http``...) are where
the names live; the engine imports them directly, a plugin imports this package.
"""

from __future__ import annotations

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
    Source,
)
from segmerge.ports.http import HttpClient, batched
from segmerge.ports.http_answers import field_of, retry_after, vendor_reason
from segmerge.ports.locks import file_lock
from segmerge.ports.rate_headers import brevo_budget, hubspot_budget
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
    vendor_times,
)
from segmerge.workspace.secrets import env_var as secret_env_var
from segmerge.workspace.storage import StorageError, is_disk_error

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
    "vendor_times",
    # talking to a platform
    "HttpClient",
    "RateLimit",
    "batched",
    "brevo_budget",
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
