"""A stateful fake of the Mailchimp Marketing API 3.0 on 127.0.0.1.

It behaves as Mailchimp documents the parts Segmerge uses, so that the
connector is tested against the real contract, not against itself:

- HTTP Basic auth, any user, the API key as password; a wrong or revoked key
  answers 401 with Mailchimp's ``application/problem+json`` body
  (``type, title, status, detail, instance``);
- at most ``max_connections`` (10) simultaneous requests per key: the 11th
  concurrent one answers 429 "Too Many Requests" (no rate headers, no
  Retry-After: Mailchimp documents none). ``occupied`` simulates another app
  holding connections with the same key. The fake counts total and
  consecutive 429s and integrates the number of requests in flight over time,
  which the benchmark reports as achieved concurrency;
- offset paging (``count`` ≤ 1000, validated by the spec), ``total_items``,
  ``fields=`` projections (dotted paths, comma separated), ``since_last_changed``
  and ``sort_field``/``sort_dir`` on members (ties in the order members were
  added), ``since`` on e-mail activity, ``since_send_time`` on campaigns;
- answers lost after the change was made (``lose_segment_answers``,
  ``lose_campaign_answers``) and requests stalled until the client asks again
  (``stall_until_retried``), see ``mailchimp_faults``;
- tags are static segments: a member's ``tags`` are the static segments holding
  it; ``POST /lists/{id}/segments/{sid}`` adds/removes up to 500 e-mails per
  field and reports the ones it could not handle in ``errors`` (unknown e-mails,
  or those in ``reject_emails``), as Mailchimp does;
- campaigns are created as drafts (``status: save``); nothing is ever sent.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from tests.fakes.base import FakeServer, Reply, Request
from tests.fakes.mailchimp_cap import ConnectionCap
from tests.fakes.mailchimp_faults import LostAnswers
from tests.fakes.mailchimp_state import MailchimpState
from tests.fakes.mailchimp_wire import (
    API_KEY,
    LIST_ID,
    PROBLEM,
    iso,
    mailchimp_openapi,
    parse_iso,
    problem,
    project,
    subscriber_hash,
)

__all__ = ["API_KEY", "LIST_ID", "PROBLEM", "MailchimpFake", "subscriber_hash"]


class MailchimpFake(LostAnswers, ConnectionCap, MailchimpState, FakeServer):
    base_path = "/3.0"

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        list_id: str = LIST_ID,
        max_connections: int = 10,
        check_responses: bool = True,
        validate_requests: bool = True,
        latency: float = 0.0,
        validate_first: int | None = None,
        encode_once: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(
            mailchimp_openapi() if validate_requests else None,
            check_responses=check_responses,
            seed=seed,
        )
        if not validate_requests:
            self.check_responses = False
        self.api_key = api_key
        self.list_id = list_id
        self.max_connections = max_connections
        self.latency = latency  # seconds each answer takes (a real API is not instant)
        #: (FakeServer.validate_first) openapi-core takes ~14 ms a request: at 10
        #: simultaneous connections that, not the client, would bound a benchmark
        self.validate_first = validate_first
        #: keep each member's JSON, encoded for a ``fields`` projection, until the member
        #: changes (its last_changed or its tags): for benchmarks, where this fake's own
        #: encoding (12 ms a page of 1,000, under one interpreter lock for all 10
        #: connections) would otherwise be what bounds a pull, which real Mailchimp's
        #: servers are not. Off for tests, which edit ``members`` in place.
        self.encode_once = encode_once
        self._encoded: dict[tuple[str, str], tuple[tuple[Any, ...], str]] = {}
        self.occupied = 0  # connections held by another app using the same key
        self.reject_emails: dict[str, str] = {}  # email -> error the segment call reports
        self.batch_only_reject: set[str] = set()  # rejected in a batch, fine one by one
        self.lose_campaign_answers = 0  # create the draft, then answer 504 (answer lost)
        #: create the tag, then lose the answer: "drop", "503" or "stall" (mailchimp_faults)
        self.lose_segment_answers: list[str] = []
        self._init_lost_answers()
        self.queries: list[tuple[str, str, dict[str, str]]] = []  # (method, path, params)
        self.writes: list[tuple[str, str]] = []  # (method, path) of every accepted change
        # concurrency accounting
        self._conc = threading.Lock()
        self.active = 0  # requests being answered (what the cap counts)
        self.open = 0  # requests not yet fully answered (what the benchmark measures)
        self.peak = 0
        #: (method, path with ids as {id}) -> most of its requests answered at once
        self.endpoint_peak: dict[tuple[str, str], int] = {}
        self._in_endpoint: dict[tuple[str, str], int] = {}
        self._gathering: dict[tuple[str, str], int] = {}  # see ConnectionCap.gather_at
        self._gathered = threading.Condition(self._conc)
        self.total_429 = 0
        self.consecutive_429 = 0
        self.max_consecutive_429 = 0
        self._busy = 0.0  # integral of `active` over time
        self._since = time.monotonic()
        # state
        #: the platform's clock runs ``skew`` ahead of ours (tests may move it)
        self.skew = timedelta(0)
        self.members: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.changes = 0  # members added or changed (what the sorted order depends on)
        self._sorted: tuple[tuple[Any, ...], list[str]] | None = None
        self.segments: dict[int, dict[str, Any]] = {}
        self.member_segments: dict[str, set[int]] = {}
        self.merge_fields: list[dict[str, Any]] = []
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, dict[str, Any]] = {}
        self.activity: dict[str, list[dict[str, Any]]] = {}  # campaign -> email activity
        self.unsubscribes: dict[str, list[dict[str, Any]]] = {}
        self.stores: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1001)
        for tag, name, kind in (("FNAME", "First Name", "text"), ("LNAME", "Last Name", "text")):
            self.add_merge_field(tag, name, kind)
        self._routes_()

    def check_auth(self, req: Request) -> Reply | None:
        header = req.headers.get("authorization", "")
        password = None
        if header.lower().startswith("basic "):
            try:
                password = base64.b64decode(header[6:]).decode().split(":", 1)[1]
            except (ValueError, IndexError):
                password = None
        if password != self.api_key:
            return problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        return None

    # -- routes ---------------------------------------------------------------------------------

    def _routes_(self) -> None:
        r = self.route
        r("GET", "/ping", lambda q: Reply(200, {"health_status": "Everything's Chimpy!"}))
        r("GET", "/", self._root)
        r("GET", "/lists/{list_id}", self._list)
        r("GET", "/lists/{list_id}/members", self._members)
        r("GET", "/lists/{list_id}/members/{subscriber_hash}", self._member)
        r("POST", "/lists/{list_id}/members/{subscriber_hash}/tags", self._member_tags)
        r("GET", "/lists/{list_id}/merge-fields", self._merge_fields)
        r("GET", "/lists/{list_id}/segments", self._segments)
        r("POST", "/lists/{list_id}/segments", self._create_segment)
        r("POST", "/lists/{list_id}/segments/{segment_id}", self._segment_batch)
        r("GET", "/campaigns", self._campaigns)
        r("POST", "/campaigns", self._create_campaign)
        r("GET", "/campaigns/{campaign_id}/content", self._get_content)
        r("PUT", "/campaigns/{campaign_id}/content", self._put_content)
        r("GET", "/reports/{campaign_id}/email-activity", self._email_activity)
        r("GET", "/reports/{campaign_id}/unsubscribed", self._unsubscribed)
        r("GET", "/ecommerce/stores", self._stores)
        r("GET", "/ecommerce/stores/{store_id}/orders", self._orders)

    def _page(self, req: Request, key: str, items: list[Any], **extra: Any) -> Reply:
        count, offset = req.int_arg("count", 10), req.int_arg("offset", 0)
        body = {key: items[offset : offset + count], **extra, "total_items": len(items)}
        return Reply(200, project(body, req.arg("fields")))

    def _wrong_list(self, req: Request) -> Reply | None:
        if req.groups.get("list_id") != self.list_id:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        return None

    def _root(self, req: Request) -> Reply:
        body = {
            "account_id": "acc123",
            "login_id": "log123",
            "account_name": "Boutique Test",
            "email": "owner@shop.example",
            "role": "owner",
            "pricing_plan_type": "monthly",
        }
        return Reply(200, project(body, req.arg("fields")))

    def _list(self, req: Request) -> Reply:
        if (bad := self._wrong_list(req)) is not None:
            return bad
        counts = {"subscribed": 0, "unsubscribed": 0, "cleaned": 0}
        for m in self.members.values():
            if m["status"] in counts:
                counts[m["status"]] += 1
        body = {
            "id": self.list_id,
            "name": "Newsletter",
            "stats": {
                "member_count": counts["subscribed"],
                "unsubscribe_count": counts["unsubscribed"],
                "cleaned_count": counts["cleaned"],
            },
        }
        return Reply(200, project(body, req.arg("fields")))

    def _render_member(self, mid: str) -> dict[str, Any]:
        m = dict(self.members[mid])
        segs = sorted(self.member_segments[mid])
        m["tags"] = [{"id": s, "name": self.segments[s]["name"]} for s in segs]
        m["tags_count"] = len(segs)
        return m

    def _members(self, req: Request) -> Reply:
        if (bad := self._wrong_list(req)) is not None:
            return bad
        ids = self.order
        since = req.arg("since_last_changed")
        if since:
            cut = parse_iso(since)
            ids = [i for i in ids if parse_iso(self.members[i]["last_changed"]) > cut]
        status = req.arg("status")
        if status:
            ids = [i for i in ids if self.members[i]["status"] == status]
        ids = self.in_order(ids, req.arg("sort_field"), req.arg("sort_dir"))
        count, offset = req.int_arg("count", 10), req.int_arg("offset", 0)
        if self.encode_once:
            return self._encoded_members(ids[offset : offset + count], len(ids), req.arg("fields"))
        page = [self._render_member(i) for i in ids[offset : offset + count]]
        body = {"members": page, "list_id": self.list_id, "total_items": len(ids)}
        return Reply(200, project(body, req.arg("fields")))

    def encode_members(self, fields: str | None) -> None:
        """Encode every member for this ``fields`` projection now (a benchmark's set-up)."""
        self._encoded_members(self.order, len(self.order), fields)

    def _encoded_members(self, ids: list[str], total: int, fields: str | None) -> Reply:
        """The same answer as the plain path, spliced from each member's cached JSON."""
        paths = fields.split(",") if fields else ["members", "list_id", "total_items"]
        if "members" in paths:
            sub = ""
        elif any(p.startswith("members.") for p in paths):
            sub = ",".join(p[len("members.") :] for p in paths if p.startswith("members."))
        else:
            return Reply(200, project({"list_id": self.list_id, "total_items": total}, fields))
        parts = []
        for mid in ids:
            version = (self.members[mid]["last_changed"], *sorted(self.member_segments[mid]))
            hit = self._encoded.get((mid, sub))
            if hit is None or hit[0] != version:
                hit = (version, json.dumps(project(self._render_member(mid), sub or None)))
                self._encoded[(mid, sub)] = hit
            parts.append(hit[1])
        rest = json.dumps(project({"list_id": self.list_id, "total_items": total}, fields))
        tail = ", " + rest[1:] if rest != "{}" else "}"
        return Reply(200, ('{"members": [' + ", ".join(parts) + "]" + tail).encode())

    def _member(self, req: Request) -> Reply:
        mid = req.groups["subscriber_hash"]
        if (bad := self._wrong_list(req)) is not None or mid not in self.members:
            return bad or problem(
                404, "Resource Not Found", "The requested resource could not be found."
            )
        return Reply(200, project(self._render_member(mid), req.arg("fields")))

    def _member_tags(self, req: Request) -> Reply:
        mid = req.groups["subscriber_hash"]
        if (bad := self._wrong_list(req)) is not None or mid not in self.members:
            return bad or problem(
                404, "Resource Not Found", "The requested resource could not be found."
            )
        email = self.members[mid]["email_address"]
        if email in self.reject_emails:
            return problem(400, "Invalid Resource", self.reject_emails[email])
        self.writes.append(("POST", req.path))
        for t in req.json["tags"]:
            if t["status"] == "active":
                self.member_segments[mid].add(self.segment_named(t["name"], create=True)["id"])
                continue
            with contextlib.suppress(KeyError):  # removing a tag nobody has is harmless
                self.member_segments[mid].discard(self.segment_named(t["name"])["id"])
        self.touch(mid)
        return Reply(204)

    def _merge_fields(self, req: Request) -> Reply:
        return self._page(req, "merge_fields", self.merge_fields, list_id=self.list_id)

    def _segments(self, req: Request) -> Reply:
        segs = list(self.segments.values())
        if req.arg("type"):
            segs = [s for s in segs if s["type"] == req.arg("type")]
        counted = [
            {**s, "member_count": sum(s["id"] in v for v in self.member_segments.values())}
            for s in segs
        ]
        return self._page(req, "segments", counted, list_id=self.list_id)

    def _create_segment(self, req: Request) -> Reply:
        body = req.json
        name = body["name"]
        if any(s["name"] == name for s in self.segments.values()):
            return problem(400, "Invalid Resource", f'Sorry, the tag "{name}" already exists.')
        seg = self.segment_named(name, create=True)
        self.writes.append(("POST", req.path))
        if self.lose_segment_answers:
            self.lose(self.lose_segment_answers.pop(0))
        for email in body.get("static_segment", []):
            mid = self.by_email(email)
            if mid:
                self.member_segments[mid].add(seg["id"])
        return Reply(200, {**seg, "member_count": len(body.get("static_segment", []))})

    def _segment_batch(self, req: Request) -> Reply:
        sid = int(req.groups["segment_id"])
        if sid not in self.segments:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        body = req.json
        add, remove = body.get("members_to_add", []), body.get("members_to_remove", [])
        if len(add) > 500 or len(remove) > 500:
            return problem(
                400,
                "Invalid Resource",
                "Maximum allowed member items exceeded, "
                "please provide at most 500 items in members_to_add field or "
                "members_to_remove field",
            )
        self.writes.append(("POST", req.path))
        added, removed, errors = [], [], []
        for emails, into, op in ((add, added, "add"), (remove, removed, "remove")):
            for email in emails:
                mid = self.by_email(email)
                reason = self.reject_emails.get(email)
                if email in self.batch_only_reject:
                    reason = "Service temporarily unable to update this member"
                if mid is None:
                    reason = "Email address is not a member of the list"
                if reason:
                    errors.append({"email_addresses": [email], "error": reason})
                    continue
                if op == "add":
                    self.member_segments[mid].add(sid)
                else:
                    self.member_segments[mid].discard(sid)
                self.members[mid]["last_changed"] = iso(self.now)
                self.changes += 1
                into.append(
                    {"id": mid, "email_address": email, "status": self.members[mid]["status"]}
                )
        return Reply(
            200,
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(errors),
            },
        )

    def _campaigns(self, req: Request) -> Reply:
        camps = list(self.campaigns.values())
        if req.arg("status"):
            camps = [c for c in camps if c["status"] == req.arg("status")]
        if req.arg("list_id"):
            camps = [c for c in camps if c["recipients"]["list_id"] == req.arg("list_id")]
        if req.arg("since_send_time"):
            cut = parse_iso(req.arg("since_send_time") or "")
            camps = [c for c in camps if c.get("send_time") and parse_iso(c["send_time"]) > cut]
        return self._page(req, "campaigns", camps)

    def _create_campaign(self, req: Request) -> Reply:
        body = req.json
        rec = body.get("recipients", {})
        if rec.get("list_id") != self.list_id:
            return problem(400, "Invalid Resource", "The list_id is invalid.")
        saved = rec.get("segment_opts", {}).get("saved_segment_id")
        if saved is not None and saved not in self.segments:
            return problem(400, "Invalid Resource", "The saved segment does not exist.")
        cid = hashlib.md5(str(next(self._ids)).encode()).hexdigest()[:10]
        camp = {
            "id": cid,
            "web_id": next(self._ids),
            "type": body["type"],
            "create_time": iso(self.now),
            "status": "save",
            "emails_sent": 0,
            "content_type": "html",
            "recipients": rec,
            "settings": body.get("settings", {}),
        }
        self.campaigns[cid] = camp
        self.writes.append(("POST", "/campaigns"))
        if self.lose_campaign_answers > 0:
            self.lose_campaign_answers -= 1
            return problem(504, "Gateway Timeout", "The server did not answer in time.")
        return Reply(200, camp)

    def _get_content(self, req: Request) -> Reply:
        cid = req.groups["campaign_id"]
        if cid not in self.campaigns:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        return Reply(200, project(self.contents.get(cid, {}), req.arg("fields")))

    def _put_content(self, req: Request) -> Reply:
        cid = req.groups["campaign_id"]
        if cid not in self.campaigns:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        self.contents[cid] = {k: v for k, v in req.json.items() if k in ("html", "plain_text")}
        self.writes.append(("PUT", req.path))
        return Reply(200, self.contents[cid])

    def _email_activity(self, req: Request) -> Reply:
        cid = req.groups["campaign_id"]
        rows = self.activity.get(cid, [])
        if req.arg("since"):
            cut = parse_iso(req.arg("since") or "")
            rows = [
                {**r, "activity": [a for a in r["activity"] if parse_iso(a["timestamp"]) > cut]}
                for r in rows
            ]
        return self._page(req, "emails", rows, campaign_id=cid)

    def _unsubscribed(self, req: Request) -> Reply:
        cid = req.groups["campaign_id"]
        return self._page(req, "unsubscribes", self.unsubscribes.get(cid, []), campaign_id=cid)

    def _stores(self, req: Request) -> Reply:
        return self._page(req, "stores", list(self.stores.values()))

    def _orders(self, req: Request) -> Reply:
        sid = req.groups["store_id"]
        if sid not in self.stores:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        return self._page(req, "orders", self.orders[sid], store_id=sid)


def serving() -> Iterator[MailchimpFake]:
    """A started fake for one test (``fake = pytest.fixture(serving, name="fake")``);
    afterwards, nothing it answered broke Mailchimp's documented contract."""
    server = MailchimpFake().start()
    yield server
    server.stop()
    assert not server.violations, [v[:500] for v in server.violations[:3]]
