"""`segmerge test-send`: every letter of a campaign, once, to the marketer's own inbox.

Before a campaign goes to thousands, someone looks at each letter in a real
mail client. One message per segment and variant goes to the seed address,
filled with a real contact of that segment (its fullest record), through the
campaign's own destination, so what arrives is what customers will get —
except that it says so: ``[TEST]`` in the subject and an ``X-Segmerge-Test``
header. Test sends are recorded in the ledger under their own run
(``campaign@test-…``) with the kind ``test``: never counted as sends, in KPIs
or in contact pressure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.ledger.health import signing_key
from segmerge.ledger.keys import parse_key, test_key, test_run_id
from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.mail.tokens import test_unsubscribe_token
from segmerge.ports.addresses import AddressError, normalise
from segmerge.ports.connector import Action, Destination
from segmerge.run.campaign import open_campaign, open_destination, sample_contacts
from segmerge.workspace.config import Workspace


def test_send(
    ws: Workspace,
    campaign: str,
    to: str,
    *,
    as_of: str | None = None,
    destination: str | None = None,
) -> list[tuple[str, str, str]]:
    """Send the test messages; (letter, status, detail) for each."""
    camp = open_campaign(ws, campaign, as_of=as_of)
    dest: Destination = camp.destination
    try:
        if destination:
            dest = open_destination(ws, destination, camp.source, camp.config.source)
        if "send" not in dest.accepts:
            raise ConfigError(
                _("destination {name!r} does not send messages, it cannot deliver a test").format(
                    name=dest.name
                ),
                field="--destination",
                hint=_("pass --destination with an smtp or outbox destination"),
            )
        try:
            seed = normalise(to)
        except AddressError as exc:
            raise ConfigError(
                _("{to!r} cannot be used as a seed address: {exc}").format(to=to, exc=exc),
                field="--to",
            ) from None
        existing = Ledger.open_existing(ws.ledger_path)
        if existing is not None:
            with existing:
                suppressed = existing.suppressed_addresses()
            if seed in suppressed:
                raise ConfigError(
                    _("{to} is on the suppression list: it is never mailed, tests included").format(
                        to=to
                    ),
                    field="--to",
                    hint=_("`segmerge suppress list` shows why; use another seed address"),
                )
        run_id = test_run_id(campaign, datetime.now(UTC))
        key = signing_key(ws.state_dir, create=True)
        assert key is not None
        # the link is bound to the seed, never to the sample contact: a tester who clicks
        # it (or a mail filter that follows it) must not unsubscribe a real customer
        test_url = ws.config.mail.unsubscribe_url.replace(
            "{token}", test_unsubscribe_token(key, seed)
        )
        frame = camp.seg.frame
        plans: list[PlannedAction] = []
        actions: list[Action] = []
        for seg, row in sample_contacts(camp).items():
            if row is None:
                continue
            contact = frame.iloc[row].to_dict()
            cid = str(contact["contact_id"])
            ctx = replace(camp.render_context(cid, key), unsubscribe_url=test_url)
            for letter in camp.templates.letter_keys(seg):
                r = camp.templates.render(letter, contact, ctx)
                r = replace(r, subject=f"[TEST] {r.subject}")
                k = test_key(run_id, letter)
                variant = letter.split(".", 1)[1] if "." in letter else None
                marked = {"X-Segmerge-Test": f"letter {letter}, contact {cid}"}
                msg = camp.message(
                    r,
                    to=seed,
                    contact=None,
                    key=k,
                    unsubscribe_url=ctx.unsubscribe_url,
                    segment=seg,
                    variant=variant,
                    extra_headers=marked,
                )
                plans.append(PlannedAction(k, cid, "test", dest.name, seg, seed, variant=variant))
                payload = {
                    "run_id": run_id,
                    "segment": letter.replace(".", "-"),
                    "to": seed,
                    "campaign": campaign,
                }
                actions.append(Action(k, "send", f"test-{cid}", payload, msg))
        with Ledger(ws.ledger_path) as ledger:
            ledger.begin_run(run_id, campaign, camp.seg.as_of.isoformat())
            ledger.plan(run_id, plans)
            ledger.mark_in_flight([a.key for a in actions])
            outcomes = dest.push(actions)
            ledger.record([(o.key, o.status, o.detail) for o in outcomes])
            status = "done" if all(o.status == "done" for o in outcomes) else "partial"
            ledger.end_run(run_id, status, {"test_send": True, "to": to})
        by_key = {o.key: o for o in outcomes}
        return [
            (
                parse_key(p.key).subject,
                by_key[p.key].status if p.key in by_key else "retry",
                by_key[p.key].detail if p.key in by_key else "",
            )
            for p in plans
        ]
    finally:
        if dest is not camp.destination and dest is not camp.source:
            dest.close()
        camp.close()
