"""Render a segment's letter once, as a platform draft campaign with its merge tags.

A draft campaign in Brevo, Mailchimp or HubSpot is one message for a whole
list: the platform fills in each recipient's name itself from its own merge
tags (``*|FNAME|*``, ``{{ contact.FIRSTNAME }}``). So the letter is rendered
with a stand-in contact whose fields *are* those merge tags, given by the
destination's ``merge_tag(column)``. Values only Segmerge knows (a revenue, a
days-since-last-order) have no merge tag: they are undefined in a draft, so a
letter that guards them with ``is defined`` still renders, and one that needs
them is reported with the field named, never filled with another contact's
data.

A merge tag must reach the platform unchanged: it is markup-safe (no
escaping) and every filter applied to it (``capitalize_name``, ``default``,
``upper``...) passes it through, since the platform formats the value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from markupsafe import Markup

from segmerge.errors import TemplateError
from segmerge.i18n import _
from segmerge.render.templates import RenderContext, Rendered, TemplateSet


class MergeTag(Markup):
    """A platform merge tag: never escaped, never changed by a filter or a string method."""

    def _same(self, *args: Any, **kwargs: Any) -> MergeTag:
        return self

    title = upper = lower = capitalize = strip = lstrip = rstrip = casefold = _same
    swapcase = _same


def _pass_merge_tags(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for a in args[:2]:  # (value) or (context/env, value) for pass_* filters
            if isinstance(a, MergeTag):
                return a
        return fn(*args, **kwargs)

    return wrapper


def draft_templates(templates: TemplateSet) -> TemplateSet:
    """The same compiled letters, in an environment whose filters let merge tags through."""
    return templates.with_filters(_pass_merge_tags)


def merge_contact(columns: Iterable[str], merge_tag: Callable[[str], str | None]) -> dict:
    """The stand-in contact: each column the platform can fill, as its merge tag."""
    out: dict[str, Any] = {}
    for col in columns:
        tag = merge_tag(col)
        if tag:
            out[col] = MergeTag(tag)
    return out


def render_draft(
    templates: TemplateSet,
    segment: str,
    columns: Iterable[str],
    merge_tag: Callable[[str], str | None],
    ctx: RenderContext,
    platform: str,
    variant: str | None = None,
) -> Rendered:
    """The draft of one group: a segment's letter, or the given A/B variant of it (each
    variant is its own draft, aimed at its own list)."""
    contact = merge_contact(columns, merge_tag)
    segment = (
        templates.letter_key(segment, variant) if variant else templates.letter_keys(segment)[0]
    )
    unsubscribe = merge_tag("unsubscribe_url") or ctx.unsubscribe_url
    draft_ctx = RenderContext(campaign=ctx.campaign, today=ctx.today, unsubscribe_url=unsubscribe)
    try:
        return templates.render(segment, contact, draft_ctx)
    except TemplateError as exc:
        exc.hint = _(
            "a draft campaign on {platform} can only carry the platform's own fields "
            "(merge tags); values computed by Segmerge differ per contact: guard them with "
            "`{{% if contact.x is defined %}}` or send through an smtp/outbox destination"
        ).format(platform=platform)
        raise
