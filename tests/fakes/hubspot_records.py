"""What the HubSpot fake holds: contacts and static lists, and HubSpot's two time formats."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .hubspot_contract import DEFAULT_PROPS

#: when the fake's own records (properties, deals, lists) were created
EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def iso(when: dt.datetime) -> str:
    return (
        when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


@dataclass
class Contact:
    id: int
    props: dict[str, str | None]
    created: dt.datetime
    modified: dt.datetime

    def as_json(self, wanted: list[str] | None) -> dict[str, Any]:
        names = list(dict.fromkeys([*DEFAULT_PROPS, *(wanted or [])]))
        props: dict[str, Any] = {n: self.props.get(n) for n in names}
        props.update(
            {
                "hs_object_id": str(self.id),
                "createdate": iso(self.created),
                "lastmodifieddate": iso(self.modified),
            }
        )
        return {
            "id": str(self.id),
            "properties": props,
            "createdAt": iso(self.created),
            "updatedAt": iso(self.modified),
            "archived": False,
        }


@dataclass
class HubList:
    id: int
    name: str
    processing: str
    members: set[int] = field(default_factory=set)
