"""Brevo campaign engagement in bulk: per campaign and kind, not per contact.

``events = "campaign_exports"`` (the default). One ``GET /emailCampaigns?status=sent``
lists the campaigns sent in the events window with their counters
(``statistics.globalStats``: ``uniqueViews``, ``uniqueClicks``, ``hardBounces``,
``softBounces``, ``unsubscriptions``). For each campaign and kind whose counter is above
zero and changed since the previous pull (the counters are the events stream's cursor),
``POST /emailCampaigns/{id}/exportRecipients`` starts an export (202 ``processId``);
``GET /processes?limit=50`` polls every pending export at once; each finished file is
downloaded from ``export_url`` (Brevo's file host, not the API: no key, no budget) and its
e-mails matched to the contacts. The cost is per campaign, not per contact: about
``1 + exports + polls`` calls of the 100-an-hour bucket, however large the base.

What it cannot say: **when**. An export lists who opened (clicked, bounced,
unsubscribed), not the time, so every event is dated at the campaign's ``sentDate``.
"opened campaign X" is exact; "opened within N days" counts from the send. Exports
carry no ``sent`` events (that would be the "all" export, every recipient).

The budget is counted before anything starts: when the exports and the polls they need
exceed what Brevo says remains (``x-sib-ratelimit-remaining`` of the listing's answer),
the most recent campaigns are exported first and a note names those that wait. Their
counters are not recorded, so the next pull exports them: nothing is recorded as done
that was not done, and nothing is capped silently.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd

from segmerge.ports import (
    STRING,
    BadAnswer,
    ConnectorError,
    CredentialError,
    HttpClient,
    _,
    empty_events,
    field_of,
    number,
)

from .brevo_export_file import ExportCache, emails_of, export_url
from .brevo_sent import KINDS, Campaign, list_sent

#: the bounce's kind in the ``detail`` column, as ``contact_stats`` writes it
DETAILS = {"hardBounces": "hard", "softBounces": "soft"}
PROCESS_PAGE = 50  # GET /processes maximum
#: calls of the hourly bucket left for the push (a draft costs one or two)
KEEP_FOR_PUSH = 5
CURSOR_VERSION = 1


@dataclass
class Engagement:
    """What the events stream of one pull gives: rows, notes and its own cursor."""

    events: pd.DataFrame = field(default_factory=empty_events)
    notes: list[str] = field(default_factory=list)
    #: the events stream's cursor (None: keep the pull's own cursor)
    cursor: str | None = None


@dataclass
class Job:
    campaign: Campaign
    kind: str
    process: int | None = None
    url: str | None = None


@dataclass
class ExportSettings:
    days: int
    #: most seconds the pull waits for Brevo to finish its exports
    wait: float = 600.0
    #: seconds between two polls (grows by half each round, at most 60 s)
    poll: float = 3.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def read_cursor(value: str | None) -> dict[str, dict[str, int]]:
    """Per-campaign counters recorded by the previous pull; another cursor (a date from
    ``contact_stats``, an older format) means none, so every campaign is exported."""
    if not value or not value.lstrip().startswith("{"):
        return {}
    try:
        body = json.loads(value)
    except ValueError:
        return {}
    counts = body.get("campaigns") if isinstance(body, dict) else None
    if not isinstance(counts, dict) or body.get("v") != CURSOR_VERSION:
        return {}
    return {
        str(k): {str(n): int(c) for n, c in v.items() if isinstance(c, int)}
        for k, v in counts.items()
        if isinstance(v, dict)
    }


def write_cursor(counts: dict[str, dict[str, int]]) -> str:
    return json.dumps({"v": CURSOR_VERSION, "campaigns": counts}, sort_keys=True)


def pull_exports(
    client: HttpClient,
    files: HttpClient,
    contacts: pd.DataFrame,
    *,
    previous: str | None,
    budget_fallback: int,
    resolve: Callable[[set[str]], dict[str, str]] | None,
    settings: ExportSettings,
    source: str,
    cache: ExportCache | None = None,
) -> Engagement:
    """The events of the campaigns sent in the window whose counters moved.

    ``resolve`` maps e-mails that are no pulled contact (an incremental pull holds only
    the modified ones) to contact ids; ``budget_fallback`` is what remains of the hourly
    bucket when Brevo's answer does not say."""
    cache = cache or ExportCache(None)
    campaigns, remaining = list_sent(client, settings.days, source)
    if remaining is None:
        remaining = budget_fallback
    seen = read_cursor(previous)
    counts = {str(c.id): dict(seen.get(str(c.id), {})) for c in campaigns}
    jobs: list[Job] = []
    cached: list[tuple[Job, bytes]] = []
    for c in sorted(campaigns, key=lambda c: (c.sent, c.id), reverse=True):  # newest first
        for kind in KINDS:
            n = c.counts[kind]
            if n == 0:
                counts[str(c.id)][kind] = 0
            elif seen.get(str(c.id), {}).get(kind) != n:
                data = cache.get(c.id, kind, n)
                if data is None:
                    jobs.append(Job(c, kind))
                else:
                    cached.append((Job(c, kind), data))
    notes: list[str] = []
    fits = _affordable(len(jobs), remaining - KEEP_FOR_PUSH)
    waiting = jobs[fits:]
    jobs = jobs[:fits]
    if waiting:
        names = _names(j.campaign for j in waiting)
        notes.append(
            _(
                "{source}: the hourly API budget ({left} call(s) left) covers {n} of {total} "
                "campaign export(s); {names} wait for the next pull (their engagement is not "
                "recorded yet)"
            ).format(
                source=source,
                left=number(max(remaining, 0)),
                n=number(len(jobs)),
                total=number(len(jobs) + len(waiting)),
                names=names,
            )
        )
    done = _run(client, jobs, remaining - len(jobs) - KEEP_FOR_PUSH, settings, source, notes)
    frames: list[pd.DataFrame] = []
    for job, data in cached:
        what = _("campaign {id} ({kind}, cached)").format(id=job.campaign.id, kind=job.kind)
        frames.append(_frame(emails_of(data, source=source, what=what), job))
        counts[str(job.campaign.id)][job.kind] = job.campaign.counts[job.kind]
    lost: list[Job] = []
    for job in done:
        assert job.url is not None
        what = _("campaign {id} ({kind})").format(id=job.campaign.id, kind=job.kind)
        try:
            data = files.request("GET", job.url).content
        except CredentialError:
            raise
        except ConnectorError:  # an expired or unreachable link: exported again next pull
            lost.append(job)
            continue
        frames.append(_frame(emails_of(data, source=source, what=what), job))
        n = job.campaign.counts[job.kind]
        counts[str(job.campaign.id)][job.kind] = n
        cache.put(job.campaign.id, job.kind, n, data)
    cache.keep_only({(c.id, k, n) for c in campaigns for k, n in c.counts.items() if n})
    if lost:
        notes.append(
            _(
                "{source}: {n} export file(s) could not be downloaded ({names}): exported "
                "again next pull"
            ).format(source=source, n=number(len(lost)), names=_names(j.campaign for j in lost))
        )
    events = _match(frames, contacts, resolve, source, notes)
    if campaigns:
        notes.append(
            _(
                "{source}: engagement of {n} sent campaign(s) from {exports} recipient "
                "export(s) and {kept} kept from an earlier pull, dated at each campaign's "
                "send date"
            ).format(
                source=source,
                n=number(len(campaigns)),
                exports=number(len(done) - len(lost)),
                kept=number(len(cached)),
            )
        )
    return Engagement(events, notes, write_cursor(counts))


def _affordable(jobs: int, calls: int) -> int:
    """How many exports fit in ``calls``, keeping one poll per 50 pending and round."""
    best = 0
    for n in range(jobs + 1):
        if n + (_polls(n) if n else 0) <= calls:
            best = n
    return best


def _polls(n: int) -> int:
    """Polls budgeted for ``n`` exports: three rounds of one call per 50 pending."""
    return 3 * math.ceil(n / PROCESS_PAGE)


def _run(
    client: HttpClient,
    jobs: list[Job],
    spare: int,
    settings: ExportSettings,
    source: str,
    notes: list[str],
) -> list[Job]:
    """Start every export, then poll until each is finished, the wait or the budget ends."""
    for job in jobs:
        path = f"/emailCampaigns/{job.campaign.id}/exportRecipients"
        body = client.json("POST", path, json={"recipientsType": job.kind}, ok=(202,))
        job.process = field_of(body, "processId", int, endpoint=f"POST {path}", source=source)
    pending = {j.process: j for j in jobs if j.process is not None}
    polls = max(0, spare)  # _affordable kept at least _polls(len(jobs)) of them
    deadline = settings.clock() + settings.wait
    pause = settings.poll
    while pending and polls > 0:
        if settings.clock() + pause > deadline:
            break
        settings.sleep(pause)
        pause = min(pause * 1.5, 60.0)
        polls -= _poll(client, pending, source)
    if pending:
        names = _names(j.campaign for j in pending.values())
        notes.append(
            _(
                "{source}: {n} export(s) not finished by Brevo in time ({names}): their "
                "engagement waits for the next pull"
            ).format(source=source, n=number(len(pending)), names=names)
        )
    return [j for j in jobs if j.url is not None]


def _poll(client: HttpClient, pending: dict[int, Job], source: str) -> int:
    """One round: ``GET /processes`` for the 50 newest, by id for older ones; the calls."""
    endpoint = "GET /processes"
    body = client.get("/processes", {"limit": PROCESS_PAGE, "offset": 0, "sort": "desc"})
    items = field_of(body, "processes", list, endpoint=endpoint, source=source)
    calls = 1
    listed = {x.get("id"): x for x in items if isinstance(x, dict)}
    for pid in list(pending):
        item = listed.get(pid)
        ep = endpoint
        if item is None and len(items) >= PROCESS_PAGE:  # older than the 50 newest
            ep = f"GET /processes/{pid}"
            item = client.get(f"/processes/{pid}")
            calls += 1
        if item is None:
            continue  # not listed yet: Brevo registers a process a moment after the 202
        status = item.get("status") if isinstance(item, dict) else None
        if status in ("queued", "in_process"):
            continue
        if status != "completed":
            raise BadAnswer(
                _(
                    "{source}: {ep}: process {pid} has status {status!r}, expected "
                    "queued, in_process or completed"
                ).format(source=source, ep=ep, pid=pid, status=status),
                field=source,
            )
        pending.pop(pid).url = export_url(item.get("export_url"), source=source, endpoint=ep)
    return calls


def _frame(emails: pd.Series, job: Job) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email": emails.str.strip().str.lower(),
            "campaign_id": str(job.campaign.id),
            "event": KINDS[job.kind][1],
            "at": job.campaign.sent,
            "detail": DETAILS.get(job.kind),
        }
    )


def _match(
    frames: list[pd.DataFrame],
    contacts: pd.DataFrame,
    resolve: Callable[[set[str]], dict[str, str]] | None,
    source: str,
    notes: list[str],
) -> pd.DataFrame:
    """Rows to contact ids by normalised e-mail, whole columns; unmatched rows are noted."""
    rows = pd.concat(frames, ignore_index=True) if frames else None
    if rows is None or rows.empty:
        return empty_events().assign(detail=pd.Series(dtype=STRING), url=pd.Series(dtype=STRING))
    blank = rows["email"].isna() | (rows["email"] == "")
    if blank.any():
        notes.append(
            _("{source}: {n} export row(s) without an e-mail left out").format(
                source=source, n=number(int(blank.sum()))
            )
        )
        rows = rows[~blank]
    known = contacts.dropna(subset=["email"])
    by_email = dict(zip(known["email"].str.strip().str.lower(), known["contact_id"], strict=True))
    emails = rows["email"].astype(object)
    missing = set(emails[~emails.isin(by_email.keys())])
    if missing and resolve is not None:
        by_email.update(resolve(missing))
    ids = emails.map(by_email).astype(STRING)
    unknown = ids.isna()
    if unknown.any():
        notes.append(
            _(
                "{source}: {n} export row(s) of {addresses} address(es) that are no Brevo "
                "contact left out"
            ).format(
                source=source,
                n=number(int(unknown.sum())),
                addresses=number(rows.loc[unknown, "email"].nunique()),
            )
        )
    kept = rows[~unknown]
    out = pd.DataFrame(
        {
            "contact_id": ids[~unknown].astype(STRING),
            "campaign_id": kept["campaign_id"].astype(STRING),
            "event": kept["event"].astype(STRING),
            "at": pd.to_datetime(kept["at"], utc=True),
            "detail": kept["detail"].astype(STRING),
            "url": pd.Series(pd.NA, index=kept.index, dtype=STRING),  # exports name no link
        }
    )
    return out.drop_duplicates().reset_index(drop=True)


def _names(campaigns: Iterable[Campaign]) -> str:
    unique = {c.id: c for c in campaigns}
    shown = [f"{c.name!r} ({c.id})" for c in list(unique.values())[:5]]
    more = f" and {len(unique) - 5} more" if len(unique) > 5 else ""
    return ", ".join(shown) + more
