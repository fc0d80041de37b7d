"""One contact's message, exactly as a run would build it, for `segmerge render`."""

from __future__ import annotations

from email.header import decode_header, make_header
from pathlib import Path

import numpy as np

from .campaign import open_campaign
from .consent import signing_key
from .errors import DataError
from .pipeline import run_id_for
from .workspace import Workspace

SHOWN_HEADERS = ("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
                 "List-Unsubscribe-Post", "X-Segmerge-Segment", "X-Segmerge-Variant")  # fmt: skip


def _readable(value: str) -> str:
    """Headers as a person reads them: RFC 2047 words decoded, folding undone."""
    return " ".join(str(make_header(decode_header(value))).split())


def render_one(
    ws: Workspace, campaign: str, contact_id: str, *, as_of: str | None = None, text: bool = False
) -> tuple[list[tuple[str, str]], str]:
    camp = open_campaign(ws, campaign, as_of=as_of)
    try:
        frame = camp.seg.frame
        rows = np.flatnonzero((frame["contact_id"].astype(str) == contact_id).to_numpy())
        if not len(rows):
            raise DataError(f"no contact {contact_id!r} in source {camp.config.source}",
                            field="--contact")  # fmt: skip
        i = int(rows[0])
        seg_name = camp.seg.assignment.primary.iat[i]
        if seg_name is None or seg_name is np.nan or str(seg_name) in ("<NA>", "nan"):
            raise DataError(
                f"contact {contact_id} is in no segment of {camp.seg.ruleset.name}",
                hint=f"`segmerge explain {camp.config.rules} {contact_id}` says why",
            )
        contact = frame.iloc[i].to_dict()
        key = signing_key(ws.state_dir, create=False)
        ctx = camp.render_context(contact_id, key)
        letter, variant = camp.letter_of(i, str(seg_name))
        r = camp.templates.render(letter, contact, ctx)
        run_id = run_id_for(campaign, camp.seg.as_of, ws)
        msg = camp.message(r, to=str(contact.get("email") or "(no e-mail)"), contact=contact,
                           key=f"{run_id}|{contact_id}|send", unsubscribe_url=ctx.unsubscribe_url,
                           segment=str(seg_name), variant=variant)  # fmt: skip
        headers = [(h, _readable(str(msg[h]))) for h in SHOWN_HEADERS if msg[h] is not None]
        headers.append(("Template", ws.relative(Path(camp.templates.template_for(letter)))))
        if camp.groups()[0][i]:
            headers.append(("Holdout", "yes: a run sends this contact nothing"))
        return headers, (r.text if text else r.html)
    finally:
        camp.close()
