"""The Mailchimp fake's audience as tests build it: members, merge fields, tags (static
segments), campaign reports, stores and orders. A mixin of :class:`MailchimpFake`, which
holds the dicts these fill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.mailchimp_wire import iso, subscriber_hash


class MailchimpState:
    @property
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self.skew

    def add_merge_field(self, tag: str, name: str, kind: str = "text") -> None:
        self.merge_fields.append(
            {
                "merge_id": len(self.merge_fields) + 1,
                "tag": tag,
                "name": name,
                "type": kind,
                "required": False,
                "default_value": "",
                "public": True,
                "display_order": len(self.merge_fields) + 1,
                "list_id": self.list_id,
            }
        )

    def add_member(
        self,
        email: str,
        first: str = "",
        last: str = "",
        *,
        status: str = "subscribed",
        tags: tuple[str, ...] | list[str] = (),
        merge: dict[str, Any] | None = None,
        changed: datetime | None = None,
        **extra: Any,
    ) -> str:
        mid = subscriber_hash(email)
        when = changed or self.now - timedelta(days=1)
        fields = {"FNAME": first, "LNAME": last}
        for f in self.merge_fields:
            fields.setdefault(f["tag"], "")
        fields.update(merge or {})
        self.members[mid] = {
            "id": mid,
            "email_address": email,
            "unique_email_id": mid[:10],
            "email_type": "html",
            "status": status,
            "merge_fields": fields,
            "timestamp_signup": iso(when - timedelta(days=30)),
            "timestamp_opt": iso(when - timedelta(days=30)),
            "member_rating": 3,
            "last_changed": iso(when),
            "language": "fr",
            "vip": False,
            "list_id": self.list_id,
            **extra,
        }
        self.changes += 1
        if mid not in self.member_segments:
            self.order.append(mid)
            self.member_segments[mid] = set()
        for t in tags:
            self.member_segments[mid].add(self.segment_named(t, create=True)["id"])
        return mid

    def touch(self, mid: str, when: datetime | None = None, **changes: Any) -> None:
        m = self.members[mid]
        m.update(changes)
        m["last_changed"] = iso(when or self.now)
        self.changes += 1

    def in_order(self, ids: list[str], field: str | None, direction: str | None) -> list[str]:
        """``ids`` sorted as ``sort_field``/``sort_dir`` ask (ties in the order members were
        added, as a database's index would keep them). Timestamps all have the same
        format (:func:`iso`), so the text sorts as the time. Kept until a member
        changes: the benchmark asks a hundred pages of the same order."""
        if not field:
            return ids
        key = (field, direction, len(self.order), self.changes)
        if ids is self.order and self._sorted is not None and self._sorted[0] == key:
            return self._sorted[1]
        ordered = sorted(
            ids, key=lambda i: self.members[i][field] or "", reverse=direction == "DESC"
        )
        if ids is self.order:  # a filtered list is new at each request: not kept
            self._sorted = (key, ordered)
        return ordered

    def segment_named(self, name: str, *, create: bool = False) -> dict[str, Any]:
        for s in self.segments.values():
            if s["name"] == name:
                return s
        if not create:
            raise KeyError(name)
        sid = next(self._ids)
        self.segments[sid] = {
            "id": sid,
            "name": name,
            "type": "static",
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "list_id": self.list_id,
        }
        return self.segments[sid]

    def tags_of(self, mid: str) -> list[str]:
        return sorted(self.segments[s]["name"] for s in self.member_segments[mid])

    def by_email(self, email: str) -> str | None:
        mid = subscriber_hash(email)
        return mid if mid in self.members else None

    def add_campaign_report(
        self,
        cid: str,
        sent_at: datetime,
        activity: dict[str, list[tuple[str, datetime]]],
        unsubscribed: dict[str, datetime] | None = None,
    ) -> None:
        """A sent campaign; ``activity`` maps each recipient e-mail to its (action, time)s."""
        self.campaigns[cid] = {
            "id": cid,
            "web_id": next(self._ids),
            "type": "regular",
            "create_time": iso(sent_at - timedelta(hours=2)),
            "status": "sent",
            "emails_sent": len(activity),
            "send_time": iso(sent_at),
            "recipients": {"list_id": self.list_id},
            "settings": {"title": f"campaign {cid}", "subject_line": "hello"},
        }
        self.activity[cid] = [
            {
                "campaign_id": cid,
                "list_id": self.list_id,
                "list_is_active": True,
                "email_id": subscriber_hash(email),
                "email_address": email,
                "activity": [
                    {
                        "action": a,
                        "timestamp": iso(t),
                        "ip": "192.0.2.1",
                        **({"type": "hard"} if a == "bounce" else {}),
                        **({"url": "https://shop.example/"} if a == "click" else {}),
                    }
                    for a, t in acts
                ],
            }
            for email, acts in activity.items()
        ]
        self.unsubscribes[cid] = [
            {
                "email_id": subscriber_hash(e),
                "email_address": e,
                "timestamp": iso(t),
                "reason": "N/A (Unsubscribed from campaign)",
                "campaign_id": cid,
                "list_id": self.list_id,
                "list_is_active": True,
            }
            for e, t in (unsubscribed or {}).items()
        ]

    def add_store(self, store_id: str, currency: str = "EUR", list_id: str | None = None) -> None:
        self.stores[store_id] = {
            "id": store_id,
            "list_id": list_id or self.list_id,
            "name": f"store {store_id}",
            "platform": "custom",
            "currency_code": currency,
        }
        self.orders.setdefault(store_id, [])

    def add_order(
        self,
        store_id: str,
        order_id: str,
        email: str,
        total: float,
        at: datetime,
        *,
        cancelled: bool = False,
        **extra: Any,
    ) -> None:
        order = {
            "id": order_id,
            "store_id": store_id,
            "customer": {
                "id": subscriber_hash(email),
                "email_address": email,
                "opt_in_status": True,
            },
            "currency_code": self.stores[store_id]["currency_code"],
            "order_total": total,
            "financial_status": "paid",
            "processed_at_foreign": iso(at),
            "updated_at_foreign": iso(at),
            "lines": [{"id": "l1", "product_id": "p1", "quantity": 1, "price": total}],
            **extra,
        }
        if cancelled:
            order["cancelled_at_foreign"] = iso(at + timedelta(hours=1))
        self.orders[store_id].append(order)
