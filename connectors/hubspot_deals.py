"""Won deals as orders, on any pipeline, with every associated contact.

A deal is won when HubSpot says so, not when its stage id happens to be ``closedwon``
(that is the default pipeline's id only; every other pipeline has numeric stage ids):

- ``hs_is_closed_won``, the calculated deal property, when HubSpot fills it;
- else the stage's own definition from ``GET /crm/v3/pipelines/deals``: a closed stage
  with probability 1.0 (``metadata`` ``isClosed`` / ``probability``, strings, as in
  ``PipelineStage`` of HubSpot/hubspot-api-python@a2a528a9,
  hubspot/crm/pipelines/models/pipeline_stage.py). Read once, only when needed;
- ``won_stages`` in the settings, when given, decides alone (a user's own definition).

A deal read with ``associations=contacts`` carries its first associations only, and
says ``paging.next`` when there are more (``CollectionResponseAssociatedId``,
hubspot/crm/deals/models/collection_response_associated_id.py): the rest come from the
v4 associations API, 500 a page ("Limit 500 per call",
hubspot/crm/associations/v4/api/basic_api.py), so a deal shared by 150 contacts is an
order of each of them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from segmerge.ports import STRING, BadAnswer, HttpClient, _, empty_orders, field_of

from .hubspot_client import LIST_PAGE, next_after
from .hubspot_pull import when

DEALS = "/crm/v3/objects/deals"
PIPELINES = "/crm/v3/pipelines/deals"
DEAL_PROPERTIES = ("amount", "closedate", "dealstage", "pipeline", "dealname", "hs_is_closed_won")
ASSOCIATION_PAGE = 500


def won_stage_ids(client: HttpClient) -> set[str]:
    """Ids of the closed stages with probability 1.0, in every deal pipeline."""
    body = client.get(PIPELINES)
    endpoint = f"GET {PIPELINES}"
    won: set[str] = set()
    for p in field_of(body, "results", list, endpoint=endpoint, source=client.source):
        stages = p.get("stages") if isinstance(p, dict) else None
        if not isinstance(stages, list):
            raise BadAnswer(
                _("{source}: {endpoint}: pipeline {value!r} has no 'stages' list").format(
                    source=client.source,
                    endpoint=endpoint,
                    value=p.get("id") if isinstance(p, dict) else p,
                ),
                field=client.source,
            )
        for s in stages:
            meta = s.get("metadata") if isinstance(s, dict) else None
            if not isinstance(meta, dict) or "id" not in s:
                raise BadAnswer(
                    _("{source}: {endpoint}: a stage has no 'id' or no 'metadata' object").format(
                        source=client.source, endpoint=endpoint
                    ),
                    field=client.source,
                )
            try:
                probability = float(meta.get("probability", "nan"))
            except (TypeError, ValueError):
                raise BadAnswer(
                    _(
                        "{source}: {endpoint}: stage {value} metadata.probability is "
                        "{value2!r}, not a number"
                    ).format(
                        source=client.source,
                        endpoint=endpoint,
                        value=s["id"],
                        value2=meta.get("probability"),
                    ),
                    field=client.source,
                ) from None
            closed = str(meta.get("isClosed", "true")).lower() == "true"
            if closed and probability >= 1.0:
                won.add(str(s["id"]))
    return won


class WonDeals:
    """Reads the won deals of an account into the canonical orders table."""

    def __init__(self, client: HttpClient, won_stages: list[str] | None) -> None:
        self.client = client
        self.fixed = set(won_stages) if won_stages else None
        self._stages: set[str] | None = None

    def is_won(self, props: dict[str, Any]) -> bool:
        if self.fixed is not None:
            return props.get("dealstage") in self.fixed
        flag = props.get("hs_is_closed_won")
        if flag not in (None, ""):
            return str(flag).lower() == "true"
        if self._stages is None:
            self._stages = won_stage_ids(self.client)
        return props.get("dealstage") in self._stages

    def frame(self) -> pd.DataFrame:
        """Won deals as orders: one row per (deal, associated contact).

        A deal shared by two contacts counts as an order of each; ``order_id`` is
        ``<dealId>:<contactId>`` so that the rows stay distinct and stable.
        """
        params = {
            "limit": LIST_PAGE,
            "properties": ",".join(DEAL_PROPERTIES),
            "associations": "contacts",
            "archived": "false",
        }
        ids: list[str] = []
        contacts: list[list[str]] = []
        props_rows: list[dict[str, Any]] = []
        for page in self.client.pages_cursor(
            DEALS, items_key="results", next_cursor=next_after, params=params
        ):
            for deal in page:
                props = deal.get("properties") if isinstance(deal, dict) else None
                if not isinstance(props, dict) or "id" not in deal:
                    raise BadAnswer(
                        _(
                            "{source}: GET {deals}: a deal has no 'id' or no 'properties' object"
                        ).format(source=self.client.source, deals=DEALS),
                        field=self.client.source,
                    )
                if not self.is_won(props):
                    continue
                ids.append(str(deal["id"]))
                contacts.append(self._contacts(deal))
                props_rows.append(props)
        if not ids:
            return empty_orders()
        deals = pd.DataFrame.from_records(props_rows, columns=["closedate", "amount", "pipeline"])
        deals["deal_id"] = ids
        deals["contact_id"] = contacts
        df = deals.explode("contact_id").dropna(subset=["contact_id"])
        out = pd.DataFrame(
            {
                "contact_id": df["contact_id"].astype(STRING),
                "order_id": (df["deal_id"] + ":" + df["contact_id"]).astype(STRING),
                "ordered_at": when(df["closedate"]),
                "amount": pd.to_numeric(df["amount"], errors="coerce")
                .fillna(0.0)
                .astype("float64"),
                "category": df["pipeline"].astype(STRING),
            }
        )
        return out[out["ordered_at"].notna()].reset_index(drop=True)

    def _contacts(self, deal: dict[str, Any]) -> list[str]:
        """Every contact id of a deal: the inline ones, then the v4 pages when there are more."""
        assoc = (deal.get("associations") or {}).get("contacts")
        if assoc is None:
            return []
        linked = assoc.get("results") if isinstance(assoc, dict) else None
        if not isinstance(linked, list):
            raise BadAnswer(
                _(
                    "{source}: GET {deals}: deal {value} associations.contacts.results "
                    "is not a list"
                ).format(source=self.client.source, deals=DEALS, value=deal["id"]),
                field=self.client.source,
            )
        if next_after(assoc) is not None:
            return self._all_contacts(str(deal["id"]))
        return list(dict.fromkeys(str(a["id"]) for a in linked if _has(a, "id", DEALS, self)))

    def _all_contacts(self, deal_id: str) -> list[str]:
        path = f"/crm/v4/objects/deals/{deal_id}/associations/contacts"
        out: list[str] = []
        for page in self.client.pages_cursor(
            path, items_key="results", next_cursor=next_after, params={"limit": ASSOCIATION_PAGE}
        ):
            out += [
                str(a["toObjectId"])
                for a in page
                if _has(
                    a, "toObjectId", "/crm/v4/objects/deals/{dealId}/associations/contacts", self
                )
            ]
        return list(dict.fromkeys(out))


def _has(item: Any, key: str, endpoint: str, reader: WonDeals) -> bool:
    """An association without its id is a changed shape: said, never skipped."""
    value = item.get(key) if isinstance(item, dict) else None
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return True
    raise BadAnswer(
        _("{source}: GET {endpoint}: an association has no {key!r} ({item!r:.80})").format(
            source=reader.client.source, endpoint=endpoint, key=key, item=item
        ),
        field=reader.client.source,
    )
