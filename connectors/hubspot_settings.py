"""The `hubspot` connector's settings: what a workspace may write under ``[sources.NAME]``
or ``[destinations.NAME]`` with ``connector = "hubspot"`` (docs/connectors/hubspot.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from segmerge.ports import ConnectorSettings, _

DEFAULT_URL = "https://api.hubapi.com"


class HubSpotSettings(ConnectorSettings):
    base_url: str = DEFAULT_URL
    #: internal name of the multiple-checkboxes contact property holding the tags
    tags_property: str = "segmerge_segments"
    tags_label: str = "Segmerge segments"
    #: HubSpot-defined properties to pull besides the core ones and all custom ones
    properties: list[str] = []
    custom_properties: bool = True
    orders: Literal["deals", "none"] = "deals"
    #: deal stages counted as won; unset: HubSpot's own (hs_is_closed_won, the pipelines)
    won_stages: list[str] | None = None
    events: bool = True
    events_days: int = Field(365, ge=1)
    #: events are read this many days at a time (a window's pages are never all held)
    events_window_days: int = Field(30, ge=1)
    #: the app's burst limit: 100 per 10 s (Free/Starter), 190 (Professional/Enterprise)
    rate_limit: int = Field(100, ge=1)
    rate_window_seconds: float = Field(10.0, gt=0)
    search_rate_limit: float = Field(4.0, gt=0)
    search_window_seconds: float = Field(1.0, gt=0)
    search_result_cap: int = Field(10_000, ge=200)
    cursor_overlap_seconds: int = Field(300, ge=0)
    timeout: float = Field(30.0, gt=0)
    email_template_path: str | None = None
    #: a marketing e-mail to clone for each draft (its design kept, its rich text replaced)
    email_template_id: str | None = None

    @field_validator("tags_property")
    @classmethod
    def _internal_name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", v):
            said = _(
                "{value} is not a HubSpot internal property name (lower case letters, digits "
                "and _, starting with a letter)"
            )
            raise ValueError(said.format(value=repr(v)))
        return v
