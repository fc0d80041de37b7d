"""The Brevo fake's sent e-mail campaigns, their recipient exports and the export files.

Installed by :class:`~tests.fakes.brevo.BrevoFake` (``self.sent = SentCampaigns(self)``).
What it answers, from Brevo's spec (getbrevo/brevo-php@c795929468ec9892a5c6c90764c5ffd68a8523f0:
swagger_definition_v3.yml, as every answer of the fake is validated against it):

- ``GET /emailCampaigns?status=sent&startDate=&endDate=&statistics=globalStats``:
  ``getEmailCampaigns`` (``campaigns[].statistics.globalStats`` with ``uniqueViews``,
  ``uniqueClicks``, ``hardBounces``, ``softBounces``, ``unsubscriptions``..., and
  ``sentDate``, "only available if 'status' of the campaign is 'sent'"), filtered on the
  send date; other statuses go to the drafts listing of ``brevo_lists``;
- ``POST /emailCampaigns/{campaignId}/exportRecipients`` ``{recipientsType}`` -> 202
  ``{processId}`` (``createdProcessId``), 404 for an unknown campaign;
- ``GET /processes`` (``limit`` <= 50, newest first) and ``GET /processes/{processId}``:
  ``getProcess`` ``{id, name, status: queued | in_process | completed, export_url}``; an
  export is ``queued``, then ``in_process`` from its first poll, ``completed`` from its
  ``polls_to_complete``-th; ``export_url`` is the spec example's HTML anchor
  (``<a href="..." target="_blank">file.csv</a>``) or, with ``bare_urls``, a plain URL;
- the export file itself on the same loopback server under ``/files/`` (Brevo's file
  host, not the API: no key checked, no spec, not counted in the rate limit). Brevo does
  not document its columns; the fake writes contact-export style headers (``EMAIL``,
  ``FIRSTNAME``, ``LASTNAME``), separated by ``sep`` (``;`` by default).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .base import Reply, Request
from .brevo_dates import parse, stamp

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from .brevo import BrevoFake

#: recipientsType -> the globalStats counter it is the list of
COUNTERS = {
    "openers": "uniqueViews",
    "clickers": "uniqueClicks",
    "hardBounces": "hardBounces",
    "softBounces": "softBounces",
    "unsubscribed": "unsubscriptions",
}


@dataclass
class Sent:
    id: int
    name: str
    sent_at: dt.datetime
    recipients: int
    lists: dict[str, list[str]] = field(default_factory=dict)  # recipientsType -> e-mails


@dataclass
class Process:
    id: int
    campaign: int
    kind: str
    polls: int = 0
    file: str | None = None


class SentCampaigns:
    def __init__(self, fake: BrevoFake, *, polls_to_complete: int = 2) -> None:
        self.fake = fake
        self.polls_to_complete = polls_to_complete
        self.bare_urls = False
        self.sep = ";"
        self.processes: dict[int, Process] = {}
        self.files: dict[str, bytes] = {}
        self.exports: list[tuple[int, str]] = []  # (campaign, recipientsType) asked
        self.downloads: list[str] = []  # file names fetched
        self.file_override: dict[int, bytes] = {}  # campaign id -> the bytes its files hold
        self._ids = itertools.count(1000)
        routes = [
            ("GET", "/emailCampaigns", self.get_campaigns),
            ("POST", "/emailCampaigns/{campaignId}/exportRecipients", self.post_export),
            ("GET", "/processes", self.get_processes),
            ("GET", "/processes/{processId}", self.get_process),
        ]
        for method, pattern, handler in routes:
            fake.route(method, pattern, handler)
        # first match wins: these go before the fake's own GET /emailCampaigns (drafts)
        mine = fake._routes[-len(routes) :]
        del fake._routes[-len(routes) :]
        fake._routes[:0] = mine
        self._api = fake._handle
        fake._handle = self._handle  # type: ignore[method-assign]

    # state ------------------------------------------------------------------
    def add(
        self, name: str, sent_at: dt.datetime, *, recipients: int = 0, **lists: list[str]
    ) -> int:
        """A sent campaign; ``lists`` by recipientsType (openers=[...], clickers=[...])."""
        unknown = set(lists) - set(COUNTERS)
        assert not unknown, f"no such recipientsType {unknown}"
        cid = max(self.fake.campaigns, default=0) + 1
        self.fake.campaigns[cid] = {
            "id": cid,
            "name": name,
            "subject": name,
            "status": "sent",
            "sender": {"email": "shop@boutique.example", "name": "La Boutique"},
            "createdAt": stamp(sent_at - dt.timedelta(days=1)),
            "recipients": {"listIds": [1]},
            "sent": Sent(cid, name, sent_at, recipients, {k: list(v) for k, v in lists.items()}),
        }
        return cid

    def campaign(self, cid: int) -> Sent:
        return self.fake.campaigns[cid]["sent"]

    def add_process(self, name: str = "IMPORTUSER") -> int:
        """A process of something else (an import): the account's processes are not ours."""
        pid = next(self._ids)
        self.processes[pid] = Process(pid, 0, name, polls=self.polls_to_complete)
        return pid

    # GET /emailCampaigns ----------------------------------------------------------
    def get_campaigns(self, req: Request) -> Reply:
        if req.arg("status") != "sent":
            return self.fake.get_campaigns(req)
        paging = self.fake._paging(req, 100, 50)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        start, end = req.arg("startDate"), req.arg("endDate")
        if (start is None) != (end is None):
            return Reply(
                400, {"code": "missing_parameter", "message": "startDate and endDate go together"}
            )
        rows = [c for c in self.fake.campaigns.values() if c["status"] == "sent"]
        if start and end:
            lo, hi = parse(start), parse(end)
            rows = [c for c in rows if lo <= c["sent"].sent_at <= hi]
        if req.arg("sort", "desc") == "desc":
            rows = rows[::-1]
        html = req.arg("excludeHtmlContent") != "true"
        out = []
        for c in rows[offset : offset + limit]:
            body = self.fake._campaign_json(c, html)
            s: Sent = c["sent"]
            body["sentDate"] = stamp(s.sent_at)
            stats = body["statistics"]["globalStats"] = dict(body["statistics"]["globalStats"])
            stats.update(sent=s.recipients, delivered=s.recipients)
            for kind, counter in COUNTERS.items():
                stats[counter] = len(s.lists.get(kind, []))
            stats["viewed"] = stats["trackableViews"] = stats["uniqueViews"]
            stats["clickers"] = stats["uniqueClicks"]
            out.append(body)
        return Reply(200, {"campaigns": out, "count": len(rows)})

    # exports and processes -------------------------------------------------------------
    def post_export(self, req: Request) -> Reply:
        cid = int(req.groups["campaignId"])
        c = self.fake.campaigns.get(cid)
        if c is None:
            return Reply(404, {"code": "document_not_found", "message": "Campaign ID not found"})
        kind = (req.json or {}).get("recipientsType")
        if c["status"] != "sent" or kind not in COUNTERS:
            return Reply(
                400,
                {
                    "code": "invalid_parameter",
                    "message": "campaign not sent or recipientsType not served",
                },
            )
        pid = next(self._ids)
        self.processes[pid] = Process(pid, cid, kind)
        self.exports.append((cid, kind))
        return Reply(202, {"processId": pid})

    def _process_json(self, p: Process, *, poll: bool) -> dict[str, Any]:
        if p.campaign == 0:  # somebody else's process
            return {"id": p.id, "status": "completed", "name": p.kind}
        if poll:
            p.polls += 1
        status = (
            "completed"
            if p.polls >= self.polls_to_complete
            else "in_process"
            if p.polls
            else "queued"
        )
        body: dict[str, Any] = {"id": p.id, "status": status, "name": "EMAIL_CAMPAIGN_EXPORT"}
        if status == "completed":
            if p.file is None:
                p.file = f"campaign-{p.campaign}-{p.kind}-{p.id}.csv"
                self.files[p.file] = self._csv(p)
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.fake.url))
            url = f"{origin}/files/{p.file}"
            body["export_url"] = (
                url if self.bare_urls else f'<a href="{url}" target="_blank">{p.file}</a>'
            )
        return body

    def _csv(self, p: Process) -> bytes:
        if p.campaign in self.file_override:
            return self.file_override[p.campaign]
        lines = [self.sep.join(("EMAIL", "FIRSTNAME", "LASTNAME"))]
        for email in self.campaign(p.campaign).lists.get(p.kind, []):
            cid = self.fake.by_email.get(email.lower())
            attrs = self.fake.contacts[cid].attributes if cid else {}
            lines.append(
                self.sep.join(
                    (email, str(attrs.get("FIRSTNAME", "")), str(attrs.get("LASTNAME", "")))
                )
            )
        return ("\n".join(lines) + "\n").encode()

    def get_processes(self, req: Request) -> Reply:
        paging = self.fake._paging(req, 50, 10)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        ids = sorted(self.processes, reverse=req.arg("sort", "desc") == "desc")
        rows = [
            self._process_json(self.processes[i], poll=True) for i in ids[offset : offset + limit]
        ]
        return Reply(200, {"processes": rows, "count": len(ids)})

    def get_process(self, req: Request) -> Reply:
        p = self.processes.get(int(req.groups["processId"]))
        if p is None:
            return Reply(404, {"code": "invalid_parameter", "message": "processId is invalid"})
        return Reply(200, self._process_json(p, poll=True))

    # the file host -------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        if not path.startswith("/files/"):
            self._api(h)
            return
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        name = path[len("/files/") :]
        with self.fake.lock:
            data = self.files.get(name)
            self.downloads.append(name)
        if h.headers.get("api-key"):  # the API key must never travel to a file host
            with self.fake.lock:
                self.fake.violations.append(f"the API key was sent to the file host ({name})")
        h.send_response(200 if data is not None else 404)
        body = data if data is not None else b"<html>NoSuchKey</html>"
        h.send_header("Content-Type", "text/csv" if data is not None else "text/html")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
