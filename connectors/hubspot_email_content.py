"""A marketing e-mail's body as HubSpot's drag-and-drop editor holds it.

HubSpot's editor shows an e-mail as modules placed in sections: ``content.flexAreas``
says where each module sits and ``content.widgets`` holds each module's fields. A body
sent anywhere else (a bare ``widgets`` entry the layout does not place) is not shown
by the editor, and the marketer opens an empty e-mail. So a draft is written in the
documented structure: a rich-text module holding the letter, HubSpot's e-mail footer
module (the CAN-SPAM address and unsubscribe links every marketing e-mail needs) and
the ``preview_text`` widget for the inbox preview line.

The structure, the module paths and their ``module_id`` are those of the example
content in HubSpot's reference for ``POST /marketing/v3/emails``
(https://developers.hubspot.com/docs/api-reference/marketing-marketing-emails-v3-v3/marketing-emails/post-marketing-v3-emails-):
``module-0-1-1`` is ``@hubspot/rich_text`` (module 1155639, ``body.html``),
``module-1-1-1`` is ``@hubspot/email_footer`` (module 2869621), ``preview_text`` is a
``text`` widget with ``body.value``. The fields are those of ``PublicEmailContent`` in
HubSpot/hubspot-api-python@a2a528a97f4c1131d7f65d0303bfbd2e523a8eba
(hubspot/marketing/emails/models/public_email_content.py).
"""

from __future__ import annotations

import html as entities
import re
from typing import Any

RICH_TEXT = "@hubspot/rich_text"
FOOTER = "@hubspot/email_footer"
#: HubSpot's drag-and-drop "plain text" layout, whose modules the documented example uses
DEFAULT_TEMPLATE = "@hubspot/email/dnd/plain_text.html"
BODY_WIDGET = "module-0-1-1"
FOOTER_WIDGET = "module-1-1-1"
PREVIEW_WIDGET = "preview_text"

_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.IGNORECASE | re.DOTALL)


def body_html(html: str) -> str:
    """What goes in the rich-text module: a whole document's ``<body>``, or the fragment.

    HubSpot wraps a module in its own document (head, styles, footer), so a second
    ``<html>`` inside it would be dropped or mangled by the editor.
    """
    found = _BODY.search(html)
    return found.group(1).strip() if found else html.strip()


def _widget(
    wid: str, order: int, kind: str, body: dict[str, Any], module_id: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "body": body,
        "child_css": {},
        "css": {},
        "id": wid,
        "name": wid,
        "order": order,
        "styles": {},
        "type": kind,
    }
    if module_id is not None:
        out["module_id"] = module_id
    return out


def _section(n: int, widget: str, padding: str) -> dict[str, Any]:
    return {
        "columns": [{"id": f"column-{n}-1", "widgets": [widget], "width": 12}],
        "id": f"section-{n}",
        "style": {
            "backgroundColor": "",
            "backgroundType": "CONTENT",
            "paddingBottom": padding,
            "paddingTop": padding,
        },
    }


def new_content(
    html: str, text: str | None, preheader: str | None, template_path: str | None
) -> dict[str, Any]:
    """``content`` of a new draft: the letter in a rich-text module, then HubSpot's footer."""
    content: dict[str, Any] = {
        "templatePath": template_path or DEFAULT_TEMPLATE,
        "flexAreas": {
            "main": {
                "boxed": False,
                "isSingleColumnFullWidth": False,
                "sections": [_section(0, BODY_WIDGET, "40px"), _section(1, FOOTER_WIDGET, "0px")],
            }
        },
        "widgets": {
            PREVIEW_WIDGET: _widget(PREVIEW_WIDGET, 0, "text", {"value": preheader or ""}),
            BODY_WIDGET: _widget(
                BODY_WIDGET,
                1,
                "module",
                {
                    "css_class": "dnd-module",
                    "html": body_html(html),
                    "path": RICH_TEXT,
                    "schema_version": 2,
                },
                1155639,
            ),
            FOOTER_WIDGET: _widget(
                FOOTER_WIDGET,
                2,
                "module",
                {
                    "align": "center",
                    "css_class": "dnd-module",
                    "path": FOOTER,
                    "schema_version": 2,
                    "unsubscribe_link_type": "both",
                },
                2869621,
            ),
        },
    }
    if text:
        content["plainTextVersion"] = text
    return content


def rich_text_ids(content: Any) -> list[str]:
    """Ids of the rich-text modules the layout places, in the order the editor shows them.

    A module is placed when a ``flexAreas`` column lists it; a coded template (no
    ``flexAreas``) shows every widget it has, so all rich-text widgets count then.
    """
    widgets = content.get("widgets") if isinstance(content, dict) else None
    if not isinstance(widgets, dict):
        return []
    rich = [
        wid
        for wid, w in widgets.items()
        if isinstance(w, dict)
        and isinstance(w.get("body"), dict)
        and w["body"].get("path") == RICH_TEXT
    ]
    placed = _placed(content.get("flexAreas"))
    if placed is None:
        return sorted(rich, key=lambda wid: _order(widgets[wid]))
    return [wid for wid in placed if wid in rich]


def _placed(areas: Any) -> list[str] | None:
    if not isinstance(areas, dict) or not areas:
        return None
    out: list[str] = []
    for area in areas.values():
        for section in (area.get("sections") or []) if isinstance(area, dict) else []:
            for column in (section.get("columns") or []) if isinstance(section, dict) else []:
                if isinstance(column, dict):
                    out += [str(w) for w in column.get("widgets") or []]
    return out


def _order(widget: dict[str, Any]) -> int:
    order = widget.get("order")
    return order if isinstance(order, int) else 1_000_000


def shown_html(email: Any) -> str:
    """The HTML the editor shows in the e-mail's first placed rich-text module ('' if none)."""
    content = email.get("content") if isinstance(email, dict) else None
    for wid in rich_text_ids(content):
        html = content["widgets"][wid]["body"].get("html")  # type: ignore[index]
        if isinstance(html, str) and html.strip():
            return html
    return ""


def _words(markup: str) -> str:
    """The text a reader sees in some HTML: tags and entities gone, spaces collapsed."""
    return " ".join(entities.unescape(re.sub(r"<[^>]*>", " ", markup)).split())


def holds_letter(email: Any, html: str) -> bool:
    """Whether the editor shows this letter in the e-mail (not an empty or another body).

    Compared by the first words a reader sees, so that HubSpot re-encoding an accent
    or re-wrapping a tag does not count as a missing body.
    """
    shown = shown_html(email)
    if not shown:
        return False
    start = _words(body_html(html))[:60]
    return start in _words(shown)


def with_letter(
    content: dict[str, Any], html: str, text: str | None, preheader: str | None
) -> dict[str, Any] | None:
    """A cloned template's ``content`` with the letter in its first placed rich-text module.

    Only the widgets are sent back (HubSpot merges ``content`` fields on update), so the
    template's layout and styles stay as the marketer designed them. None when the
    template has no rich-text module to hold the letter.
    """
    ids = rich_text_ids(content)
    if not ids:
        return None
    widgets = dict(content["widgets"])
    first = dict(widgets[ids[0]])
    first["body"] = {**first["body"], "html": body_html(html)}
    widgets[ids[0]] = first
    preview = widgets.get(PREVIEW_WIDGET)
    if preheader and isinstance(preview, dict) and isinstance(preview.get("body"), dict):
        widgets[PREVIEW_WIDGET] = {**preview, "body": {**preview["body"], "value": preheader}}
    out: dict[str, Any] = {"widgets": widgets}
    if text:
        out["plainTextVersion"] = text
    return out
