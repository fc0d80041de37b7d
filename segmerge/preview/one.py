"""One contact's message, exactly as a run would build it, for `segmerge render`."""

from __future__ import annotations

import numpy as np

from segmerge.errors import DataError
from segmerge.i18n import _
from segmerge.preview.pages import message_for
from segmerge.run.campaign import open_campaign
from segmerge.workspace.config import Workspace

SHOWN_HEADERS = (
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "X-Segmerge-Segment",
    "X-Segmerge-Variant",
)


def render_one(
    ws: Workspace, campaign: str, contact_id: str, *, as_of: str | None = None, text: bool = False
) -> tuple[list[tuple[str, str]], str]:
    camp = open_campaign(ws, campaign, as_of=as_of)
    try:
        frame = camp.seg.frame
        rows = np.flatnonzero((frame["contact_id"].astype(str) == contact_id).to_numpy())
        if not len(rows):
            raise DataError(
                _("no contact {contact_id!r} in source {source}").format(
                    contact_id=contact_id, source=camp.config.source
                ),
                field="--contact",
            )
        i = int(rows[0])
        seg_name = camp.seg.assignment.primary.iat[i]
        if seg_name is None or seg_name is np.nan or str(seg_name) in ("<NA>", "nan"):
            raise DataError(
                _("contact {contact_id} is in no segment of {name}").format(
                    contact_id=contact_id, name=camp.seg.ruleset.name
                ),
                hint=_("`segmerge explain {rules} {contact_id}` says why").format(
                    rules=camp.config.rules, contact_id=contact_id
                ),
            )
        shown = message_for(camp, i)
        values = dict(shown.headers)
        headers = [(h, values[h]) for h in SHOWN_HEADERS if h in values]
        headers.append(("Template", shown.template))
        if camp.groups()[0][i]:
            headers.append(("Holdout", "yes: a run sends this contact nothing"))
        return headers, (shown.text if text else shown.html)
    finally:
        camp.close()
