"""What the preview pages show: plain values for the templates in ``preview_assets/``.

Kept apart from the HTTP plumbing of :mod:`segmerge.preview.app` so that each
page is a function of the opened campaign and the query string, testable
without a socket. No HTML is built here: the templates escape every value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.header import decode_header, make_header
from html import escape
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from segmerge.errors import SegmergeError
from segmerge.i18n import _, day, label, percent
from segmerge.ledger.health import signing_key
from segmerge.ledger.keys import send_key
from segmerge.mail.consent import said
from segmerge.preview.view import CampaignView
from segmerge.run.campaign import OpenCampaign
from segmerge.run.pipeline import run_id_for

log = logging.getLogger("segmerge.preview")
SAMPLE, MAX_SAMPLE = 20, 500
_PLUMBING = {"MIME-Version", "Content-Type", "Content-Transfer-Encoding"}


def error_info(exc: BaseException, root: Path | None = None) -> dict[str, Any]:
    """What the page shows of an error: file (relative to the workspace), line, message, hint."""
    if not isinstance(exc, SegmergeError):
        log.error("preview: unexpected error", exc_info=exc)
        return {
            "file": None,
            "line": None,
            "column": None,
            "field": None,
            "hint": None,
            "kind": _("Unexpected error"),
            "message": f"{type(exc).__name__}: {exc}",
            "excerpt": None,
        }
    file, excerpt = exc.file, None
    if file and exc.line:
        try:
            lines = Path(file).read_text(encoding="utf-8-sig").splitlines()
            excerpt = lines[exc.line - 1].strip()[:300] if exc.line <= len(lines) else None
        except (OSError, UnicodeDecodeError):
            excerpt = None
    if file and root is not None and Path(file).resolve().is_relative_to(root.resolve()):
        file = str(Path(file).resolve().relative_to(root.resolve()))
    return {
        "file": file,
        "line": exc.line,
        "column": exc.column,
        "field": exc.field,
        "hint": exc.hint,
        "kind": type(exc).__name__,
        "message": exc.message,
        "excerpt": excerpt,
    }


@dataclass
class Shown:
    """One contact's message as the run would send it, split for the page."""

    subject: str
    preheader: str
    html: str  # the text/html part, preheader included
    text: str
    headers: list[tuple[str, str]]
    template: str
    variant: str | None  # the variant shown
    assigned: str | None  # the variant the contact is assigned


def _readable(value: str) -> str:
    return " ".join(str(make_header(decode_header(value))).split())


def message_for(camp: OpenCampaign, row: int, variant: str | None = None) -> Shown:
    """The message of a contact row, built like `segmerge.run.pipeline` does (same headers).

    ``segmerge render`` (:func:`segmerge.preview.render_one`) shows it too;
    ``variant`` shows another A/B variant than the contact's own.
    """
    ws, frame = camp.ws, camp.seg.frame
    segment = str(camp.seg.assignment.primary.iat[row])
    contact = frame.iloc[row].to_dict()
    cid = str(contact["contact_id"])
    ctx = camp.render_context(cid, signing_key(ws.state_dir, create=False))
    letter, assigned = camp.letter_of(row, segment)
    shown = assigned
    if variant is not None and variant != assigned:
        letter, shown = camp.templates.letter_key(segment, variant), variant
    r = camp.templates.render(letter, contact, ctx)
    run_id = run_id_for(camp.name, camp.seg.as_of, ws)
    msg = camp.message(
        r,
        to=str(contact.get("email") or _("(no e-mail)")),
        contact=contact,
        key=send_key(run_id, cid),
        unsubscribe_url=ctx.unsubscribe_url,
        segment=segment,
        variant=shown,
    )
    text, html = (_decoded(p) for p in msg.get_payload())
    headers = [(k, _readable(str(v))) for k, v in msg.items() if k not in _PLUMBING]
    return Shown(
        r.subject, r.preheader, html, text, headers, ws.relative(Path(r.template)), shown, assigned
    )


def _decoded(part: Any) -> str:
    """A MIME part's body as the recipient's client decodes it."""
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)


# -- pages -----------------------------------------------------------------------------------


def summary(view: CampaignView) -> dict[str, Any]:
    """A campaign's card: its segments with sizes, or the error that keeps it from opening."""
    out: dict[str, Any] = {"name": view.name, "error": view.error, "segments": []}
    camp = view.camp
    if camp is None:
        return out
    seg, ws = camp.seg, camp.ws
    total = len(seg.frame)
    sizes = seg.assignment.sizes()
    out.update(
        description=camp.config.description or seg.ruleset.description,
        rules=ws.relative(seg.ruleset.path),
        mode=seg.ruleset.mode,
        total=total,
        templates=ws.relative(camp.templates.folder),
        holdout=camp.config.holdout,
        excluded=int(seg.assignment.excluded.sum()),
        none=int(seg.assignment.primary.isna().sum()),
        warnings=seg.ruleset.warnings(),
        day=day(seg.as_of.tz_convert(ws.tz)),
    )
    for s in seg.ruleset.segments:
        n = sizes.get(s.name, 0)
        out["segments"].append(
            {
                "name": s.name,
                "label": s.label,
                "description": s.description,
                "members": n,
                "recipients": len(view.rows(s.name)),
                "share": percent(n / max(total, 1)),
                "ratio": n / max(total, 1),
                "variants": camp.templates.variants(s.name),
            }
        )
    return out


class Campaigns(Protocol):
    """What the index page reads of the preview (:class:`segmerge.preview.live.Preview`)."""

    def names(self) -> list[str]: ...

    def campaign(self, name: str) -> CampaignView | None: ...


def index(preview: Campaigns) -> dict[str, Any]:
    cards = []
    for name in preview.names():
        view = preview.campaign(name)
        if view is not None:
            cards.append(summary(view))
    return {"campaigns": cards}


def _name(rec: dict[str, Any]) -> str:
    return " ".join(str(rec[k]) for k in ("first_name", "last_name") if isinstance(rec.get(k), str))


def _contact(view: CampaignView, row: int) -> dict[str, Any]:
    assert view.camp is not None and view.reasons is not None
    rec = view.camp.seg.frame.iloc[row]
    holdout, variants = view.camp.groups()
    v, reason = variants.iat[row], view.reasons.iat[row]
    email = rec.get("email")
    return {
        "id": str(rec["contact_id"]),
        "name": _name(rec.to_dict()),
        "email": str(email) if isinstance(email, str) else "",
        "holdout": bool(holdout[row]),
        "variant": str(v) if v is not None else None,
        "reason": None if reason is None or str(reason) == "<NA>" else _reason_said(str(reason)),
    }


def _reason_said(reason: str) -> str:
    """A not-mailable reason in the page's language (an unknown one as it is)."""
    return said(reason)


def _search(view: CampaignView, rows: Any, q: str) -> Any:
    """Rows whose id, e-mail or name contains the query (any case)."""
    assert view.camp is not None
    frame = view.camp.seg.frame.iloc[rows]
    needle = q.strip().casefold()
    hay = frame["contact_id"].astype(str).str.casefold()
    hit = hay.str.contains(needle, regex=False)
    for col in ("email", "first_name", "last_name"):
        if col in frame.columns:
            hit |= (
                frame[col]
                .astype("string")
                .str.casefold()
                .str.contains(needle, regex=False)
                .fillna(False)
                .to_numpy(dtype=bool)
            )
    return rows[hit.to_numpy(dtype=bool)]


def _where(view: CampaignView, contact_id: str) -> tuple[int | None, str | None]:
    """A contact's row and first segment in the whole base (None, None if unknown)."""
    assert view.camp is not None
    ids = view.camp.seg.frame["contact_id"].astype(str).to_numpy()
    found = (ids == contact_id).nonzero()[0]
    if not len(found):
        return None, None
    seg = view.camp.seg.assignment.primary.iat[int(found[0])]
    return int(found[0]), None if seg is None or str(seg) == "<NA>" else str(seg)


def segment_page(
    view: CampaignView, segment: str | None, query: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """A segment of a campaign: its first contacts, and the chosen one's message."""
    card = summary(view)
    values: dict[str, Any] = {
        "title": view.name,
        "campaign": card,
        "segment": None,
        "contacts": [],
        "q": query.get("q", ""),
        "selected": None,
        "shown": None,
        "render_error": None,
        "notes": [],
        "variants": [],
        "variant": None,
        "count": 0,
        "elsewhere": [],
        "device": device_of(query),
    }
    if view.camp is None:
        return 200, values
    names = [s["name"] for s in card["segments"]]
    if segment is None:
        segment = next((s["name"] for s in card["segments"] if s["recipients"]), names[0])
    if segment not in names:
        values["notes"].append(
            _("No segment “{segment}” in {campaign}.").format(segment=segment, campaign=view.name)
        )
        return 404, values
    values["segment"] = next(s for s in card["segments"] if s["name"] == segment)
    values["title"] = f"{view.name} · {segment}"
    rows = view.rows(segment)
    values["count"] = len(rows)
    if values["q"].strip():
        rows = _search(view, rows, values["q"])
    try:
        n = max(1, min(int(query.get("n", SAMPLE)), MAX_SAMPLE))
    except ValueError:
        n = SAMPLE
    values["contacts"] = [_contact(view, int(r)) for r in rows[:n]]
    values["matches"] = len(rows)
    if values["q"].strip() and not len(rows):
        found = _search(view, np.arange(len(view.camp.seg.frame)), values["q"])[:10]
        values["elsewhere"] = [
            (c["id"], c["name"], _where(view, c["id"])[1])
            for c in (_contact(view, int(r)) for r in found)
        ]
    wanted = query.get("contact") or (values["contacts"][0]["id"] if values["contacts"] else None)
    if wanted is None:
        return 200, values
    row, seg_of = _where(view, wanted)
    if row is None or seg_of != segment:
        values["notes"].append(_elsewhere(view, wanted, row, seg_of))
        return 404, values
    values["selected"] = _contact(view, row)
    variants = view.camp.templates.variants(segment)
    values["variants"] = variants
    variant = query.get("variant") or values["selected"]["variant"]
    if variants and variant not in variants:
        values["notes"].append(
            _("No variant “{variant}” for {segment}.").format(variant=variant, segment=segment)
        )
        return 404, values
    values["variant"] = variant
    try:
        values["shown"] = message_for(view.camp, row, variant)
    except SegmergeError as exc:
        values["render_error"] = error_info(exc, view.camp.ws.root)
    return 200, values


def device_of(query: dict[str, str]) -> str:
    """The width the letter is shown at: "mobile" (375 px, a phone) or "desktop" (600 px
    and more). Kept in the query string, not in a cookie, so it works without script
    and a link shows what the sender saw."""
    return "mobile" if query.get("device") == "mobile" else "desktop"


def _elsewhere(view: CampaignView, wanted: str, row: int | None, seg_of: str | None) -> str:
    if row is None:
        return _("No contact “{id}” in the source of {campaign}.").format(
            id=wanted, campaign=view.name
        )
    if seg_of is None:
        return _("Contact {id} is in no segment: the campaign does not write to it.").format(
            id=wanted
        )
    return _("Contact {id} gets the letter of segment “{segment}”.").format(
        id=wanted, segment=seg_of
    )


def letter(view: CampaignView, segment: str, query: dict[str, str]) -> tuple[int, str]:
    """The HTML part alone, for the sandboxed frame; an error is a short escaped page."""
    code, values = segment_page(view, segment, query)
    shown = values["shown"]
    if shown is not None:
        return 200, shown.html
    err = values["render_error"] or (view.error if view.camp is None else None)
    if err:
        line = err["line"] and _("line {n}").format(n=err["line"])
        where = ", ".join(str(x) for x in (err["file"], line) if x)
        text = f"{label(where)} {err['message']}" if where else err["message"]
    else:
        text = " ".join(values["notes"]) or _("No contact to show.")
        code = code if code != 200 else 404
    return code if code != 200 else 422, (
        f'<!doctype html><meta charset="utf-8"><p>{escape(text)}</p>'
    )
