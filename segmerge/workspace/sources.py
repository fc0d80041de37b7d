"""How segmerge.toml names a connector: `[sources.NAME]` and `[destinations.NAME]`.

A table holds `connector` and that connector's own settings, which the
connector validates itself (its Settings model); a source table also holds the
engine's settings of every source, declared here once so that no connector has
to know them (see docs/orders.md).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_PREFIX = re.compile(r"^wc[-_ ]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalise(word: str) -> str:
    """Fold a status word: case, accents, the ``wc-`` prefix, punctuation and spaces.

    Here, with the settings that list status words, so that reading the workspace checks
    them without loading the order rules (segment/order_status.py, which uses it too).
    """
    text = unicodedata.normalize("NFKD", word)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold().strip()
    text = _PREFIX.sub("", text)
    return _NOT_WORD.sub(" ", text).strip()


class ConnectorRef(BaseModel):
    """A source or destination table: `connector` plus that connector's own settings."""

    model_config = ConfigDict(extra="allow")
    connector: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SourceRef(ConnectorRef):
    """A source table: the connector's settings, plus the engine's own settings of every
    source, declared here once so that no connector has to know them.

    They are not passed to the connector (:meth:`settings` is the connector's part
    only) and they do not void an API source's snapshot: the snapshot keeps every
    order, and these rules are applied to the whole base each time it is read.
    """

    #: status words whose orders count for no metric, besides the cancelled, refunded
    #: and failed ones (segmerge/segment/order_status.py), e.g. ["En attente de paiement"]
    exclude_statuses: list[str] = Field(default_factory=list)
    #: status words that count although they would be left out, e.g. ["Remboursé"]
    include_statuses: list[str] = Field(default_factory=list)
    #: more than 1 % of orders naming no contact is an error ("error"), or a warning
    on_unmatched_orders: Literal["error", "warn"] = "error"

    @model_validator(mode="after")
    def _statuses(self) -> SourceRef:
        for key, words in (
            ("exclude_statuses", self.exclude_statuses),
            ("include_statuses", self.include_statuses),
        ):
            for word in words:
                if not normalise(word):
                    raise ValueError(f"{key}: {word!r} is not a status word")
        both = {normalise(w) for w in self.exclude_statuses} & {
            normalise(w) for w in self.include_statuses
        }
        if both:
            word = next(w for w in self.include_statuses if normalise(w) in both)
            raise ValueError(f"{word!r} is both in exclude_statuses and include_statuses")
        return self
