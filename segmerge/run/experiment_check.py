"""Refuse, before anything is pulled twice or written, an experiment the destination
cannot honour.

A holdout or an A/B test that is silently ignored is worse than none: the
marketer reads a verdict about groups that were never formed. A destination
honours one when Segmerge either sends each letter itself (smtp, outbox) or
puts each group in its own tag or list on the platform that mails them
(files, Brevo, Mailchimp, HubSpot): see docs/experiments.md. Anything else is a
configuration error naming the setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.ports.connector import Destination
from segmerge.workspace.config import CampaignConfig, Workspace


def check_experiment(
    ws: Workspace,
    name: str,
    cfg: CampaignConfig,
    destination: Destination,
    tag_destination: Destination | None,
    variants: Mapping[str, Sequence[str]],
) -> None:
    """Raise a ConfigError when the campaign's holdout or variants would be ignored."""
    tested = sorted(s for s, names in variants.items() if names)
    if not cfg.holdout and not tested:
        return
    if "send" in destination.accepts:
        return  # Segmerge sends each letter itself and keeps the holdout out
    field = f"campaigns.{name}.holdout" if cfg.holdout else f"campaigns.{name}.templates"
    what = (
        _("holdout = {share}").format(share=cfg.holdout)
        if cfg.holdout
        else _("A/B variants of {segments}").format(segments=", ".join(tested))
    )
    if tag_destination is None:
        raise ConfigError(
            _(
                "{what} cannot be honoured: destination {dest} does not send the letters "
                "and no tags or lists are pushed to tell its groups apart"
            ).format(what=what, dest=destination.name),
            file=ws.config_file,
            field=field if cfg.push_tags else f"campaigns.{name}.push_tags",
            hint=_(
                "set push_tags = true on a source that takes tags (files, brevo, mailchimp, "
                "hubspot), send through an smtp or outbox destination, or remove the holdout "
                "and variants"
            ),
        )
    if "create_campaign" in destination.accepts and destination is not tag_destination:
        raise ConfigError(
            _(
                "{what} cannot be honoured: the drafts go to {dest} but the groups' tags "
                "go to {tags}, so {dest} would mail lists Segmerge does not fill"
            ).format(what=what, dest=destination.name, tags=tag_destination.name),
            file=ws.config_file,
            field=field,
            hint=_("use the same platform as source and destination"),
        )
