"""The shared HTTP layer against a real HTTP server on loopback.

What a connector relies on: transient failures are retried and end well,
vendor pacing headers are obeyed, and every failure that reaches the user
names the source, the endpoint and the status, without the secret.
"""

from __future__ import annotations

import email.utils
import re
import time

import pytest
import requests

from segmerge.errors import BadAnswer, ConnectorError, CredentialError
from segmerge.ports.http import HttpClient, batched, field_of, retry_after
from segmerge.ports.rate_headers import brevo_budget, hubspot_budget
from segmerge.ports.rate_limit import RateLimit
from tests.fakes.base import FakeServer, Reply, WindowLimiter
from tests.virtual_clock import Clock

SECRET = "xkeysib-0123456789abcdef-SECRET"


class Echo(FakeServer):
    base_path = "/v1"

    def __init__(self) -> None:
        super().__init__(None)
        self.items = [{"id": i} for i in range(23)]
        self.route("GET", "/ping", lambda r: Reply(200, {"ok": True}))
        self.route("POST", "/things", lambda r: Reply(201, {"got": r.json}))
        self.route("GET", "/items", self._items)
        self.route("GET", "/cursor", self._cursor)
        self.route("GET", "/loop", lambda r: Reply(200, {"results": [{"id": 1}], "next": "same"}))

    def _items(self, req):
        limit, offset = req.int_arg("limit", 10), req.int_arg("offset", 0)
        return Reply(200, {"items": self.items[offset : offset + limit], "total": len(self.items)})

    def _cursor(self, req):
        start = int(req.arg("after") or 0)
        page = self.items[start : start + 10]
        nxt = start + 10
        body = {"results": page}
        if nxt < len(self.items):
            body["paging"] = {"next": {"after": str(nxt)}}
        return Reply(200, body)


@pytest.fixture
def server():
    with Echo() as s:
        yield s
    assert not s.violations, s.violations


def client(server, **kw) -> HttpClient:
    kw.setdefault("backoff", 0.01)
    return HttpClient("shop", server.url, headers={"api-key": SECRET}, **kw)


def test_transient_5xx_are_retried_until_success(server):
    server.fail_next(503, times=2)
    c = client(server)
    assert c.get("/ping") == {"ok": True}
    assert c.stats.retries == 2 and c.stats.requests == 3


def test_gives_up_after_max_retries_naming_source_endpoint_status(server):
    server.fail_next(502, times=10, body={"message": "bad gateway"})
    c = client(server, max_retries=2)
    with pytest.raises(ConnectorError) as info:
        c.get("/ping")
    err = info.value
    assert err.exit_code == 1
    assert "shop: GET /ping answered 502 3 time(s)" in str(err)
    assert "bad gateway" in str(err)


def test_retry_after_seconds_is_honoured(server):
    server.fail_next(429, headers={"Retry-After": "1"})
    c = client(server)
    assert c.get("/ping") == {"ok": True}
    assert c.stats.throttled == 1
    assert c.stats.waited_seconds >= 1.0


def test_retry_after_http_date_is_parsed():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after(when) <= 31
    assert retry_after("7") == 7.0
    assert retry_after("garbage") is None and retry_after(None) is None


def test_vendor_wait_hint_used_when_no_retry_after(server):
    server.fail_next(429, headers={"x-sib-ratelimit-reset": "1"})

    def hint(r):
        return (
            float(r.headers["x-sib-ratelimit-reset"])
            if "x-sib-ratelimit-reset" in r.headers
            else None
        )

    c = client(server, wait_hint=hint)
    c.get("/ping")
    assert c.stats.waited_seconds >= 1.0


def test_401_is_a_credential_error_without_the_secret(server):
    server.fail_next(401, body={"code": "unauthorized", "message": "Key not found"})
    c = client(server, credential_hint="SEGMERGE_SHOP_TOKEN")
    with pytest.raises(CredentialError) as info:
        c.get("/ping")
    text = str(info.value)
    assert info.value.exit_code == 2
    assert "shop: GET /ping answered 401" in text and "Key not found" in text
    assert "segmerge auth set shop" in text and "SEGMERGE_SHOP_TOKEN" in text
    assert SECRET not in text


def test_403_names_the_missing_scope(server):
    server.fail_next(
        403,
        body={
            "status": "error",
            "category": "MISSING_SCOPES",
            "message": "requires crm.objects.contacts.write",
        },
    )
    with pytest.raises(CredentialError) as info:
        client(server).request("POST", "/things", json={})
    assert "crm.objects.contacts.write" in str(info.value)
    assert "POST /things answered 403" in str(info.value)


def test_html_page_instead_of_json_is_a_bad_answer(server):
    server.fail_next(200, body="<html><body>Maintenance</body></html>", content_type="text/html")
    with pytest.raises(BadAnswer) as info:
        client(server).get("/ping")
    assert info.value.exit_code == 2
    assert "GET /ping answered 200 with text/html, not JSON" in str(info.value)


def test_html_error_page_is_summarised(server):
    server.fail_next(404, body="<!doctype html><html>" + "x" * 5000, content_type="text/html")
    with pytest.raises(BadAnswer) as info:
        client(server).get("/ping")
    assert "an HTML page" in str(info.value) and len(str(info.value)) < 400


def test_read_timeout_is_retried(server):
    server.fail_next(200, delay=1.5, body={"late": True})
    c = client(server, timeout=0.5)
    assert c.get("/ping") == {"ok": True}
    assert c.stats.retries == 1


def test_unreachable_host_is_a_clear_connector_error():
    c = HttpClient("shop", "http://127.0.0.1:9", max_retries=1, backoff=0.01)
    with pytest.raises(ConnectorError) as info:
        c.get("/ping")
    assert "shop: GET /ping unreachable after 2 attempt(s)" in str(info.value)


def test_no_retry_when_asked(server):
    server.fail_next(503)
    with pytest.raises(ConnectorError):
        client(server).request("POST", "/things", json={"a": 1}, retry=False)
    assert server.log[-1][2] == 503 and len(server.log) == 1


def test_offset_paging_reads_every_item_once(server):
    pages = list(
        client(server).pages_offset("/items", items_key="items", limit=10, total_key="total")
    )
    assert [len(p) for p in pages] == [10, 10, 3]
    assert [i["id"] for p in pages for i in p] == list(range(23))


def test_cursor_paging_and_a_looping_server(server):
    c = client(server)
    nxt = lambda b: b.get("paging", {}).get("next", {}).get("after")  # noqa: E731
    ids = [
        i["id"] for p in c.pages_cursor("/cursor", items_key="results", next_cursor=nxt) for i in p
    ]
    assert ids == list(range(23))
    with pytest.raises(BadAnswer, match="same paging cursor twice"):
        list(c.pages_cursor("/loop", items_key="results", next_cursor=lambda b: b["next"]))


def test_field_changing_type_is_reported():
    with pytest.raises(BadAnswer, match="field 'contacts' is str, expected list"):
        field_of({"contacts": "oops"}, "contacts", list, endpoint="GET /contacts", source="shop")
    with pytest.raises(BadAnswer, match="no 'contacts' field"):
        field_of({}, "contacts", list, endpoint="GET /contacts")


def window_limit(window: WindowLimiter):
    """A server-side fixed window answering 429 with Retry-After, as vendors do."""

    def limited(req):
        allowed, _, reset = window.hit()
        if allowed:
            return None
        return Reply(429, {"message": "slow down"}, {"Retry-After": f"{reset:.3f}"})

    return limited


def test_client_pacing_keeps_under_a_fixed_window_limit(server):
    window = WindowLimiter(limit=10, window=0.5)

    server.rate_limit = window_limit(window)
    c = client(server, rate=RateLimit(10, 0.5))
    for _ in range(30):
        c.get("/ping")
    assert window.total_429 == 0 and c.stats.throttled == 0


def test_after_a_429_the_client_waits_for_the_window(server):
    window = WindowLimiter(limit=5, window=0.5)

    server.rate_limit = window_limit(window)
    c = client(server)  # no client-side pacing: bursts, then obeys the server
    for _ in range(15):
        c.get("/ping")
    assert window.total_429 >= 1
    assert window.max_consecutive_429 == 1


def test_batched():
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(batched([], 3)) == []


def test_a_wait_hint_of_infinity_gives_up_at_once(server):
    server.fail_next(429, times=5, body={"message": "daily limit reached"})
    c = client(server, wait_hint=lambda r: float("inf"))
    with pytest.raises(ConnectorError, match="daily limit reached") as info:
        c.get("/ping")
    assert info.value.status == 429 and c.stats.requests == 1 and c.stats.retries == 0


# the vendor's budget ----------------------------------------------------------------
# Brevo's headers as its "Rate limit headers" page documents them
# (https://developers.brevo.com/docs/limit-headers): sent on every answer, 429 included.


def sib(remaining: str, reset: str) -> dict[str, str]:
    return {
        "x-sib-ratelimit-limit": "100",
        "x-sib-ratelimit-remaining": remaining,
        "x-sib-ratelimit-reset": reset,
    }


def budget_client(server, clock: Clock, told: list[str], **kw) -> HttpClient:
    rate = RateLimit(100, 3600, 95, clock=clock, sleep=clock.sleep)
    kw.setdefault("max_retries", 0)  # a budget wait must not need a retry
    return client(
        server,
        rate=rate,
        budget_hint=brevo_budget,
        notify=told.append,
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


def test_a_spent_budget_on_an_ordinary_answer_holds_the_next_call_and_says_until_when(server):
    clock, told = Clock(), []
    c = budget_client(server, clock, told)
    server.fail_next(200, body={"ok": True}, headers=sib("0", "1380"))
    assert c.get("/ping") == {"ok": True}  # the answer itself is good
    assert told == [] and clock.slept == []
    assert c.get("/ping") == {"ok": True}
    assert clock.slept == [pytest.approx(1380)]  # waited for the reset, not paced or 429'd
    assert len(told) == 1
    assert re.fullmatch(
        r"shop: the platform's request budget is spent \(GET /ping\); "
        r"resuming at \d\d:\d\d:\d\d UTC \(in 23 min\)",
        told[0],
    )
    assert server.log[-1][2] == 200 and c.stats.throttled == 0


def test_an_hourly_429_is_waited_out_in_full_without_using_up_the_retries(server):
    clock, told = Clock(), []
    c = budget_client(server, clock, told)
    server.fail_next(
        429,
        times=2,
        headers=sib("0", "1500"),
        body={"code": "too_many_requests", "message": "rate limit exceeded"},
    )
    assert c.get("/ping") == {"ok": True}  # max_retries=0, and two 25-minute windows
    assert sum(clock.slept) >= 3000  # was: capped at 60 s, 5 retries burnt, then a failure
    assert len(told) == 2 and all("(in 25 min)" in t for t in told)
    assert c.stats.throttled == 2
    waited = len(clock.slept)
    for _ in range(94):  # the new hour's budget is whole: a burst again, not one call per 36 s
        c.get("/ping")
    assert len(clock.slept) == waited


def test_a_budget_resetting_beyond_max_wait_stops_at_once_saying_when(server):
    clock, told = Clock(), []
    c = budget_client(server, clock, told, max_wait=1800)
    server.fail_next(
        429,
        times=5,
        headers=sib("0", "7200"),
        body={"code": "too_many_requests", "message": "rate limit exceeded"},
    )
    with pytest.raises(ConnectorError) as info:
        c.get("/ping")
    text = str(info.value)
    assert re.search(
        r"shop: GET /ping: the platform's request budget is spent until "
        r"\d\d:\d\d:\d\d UTC \(in 2 h 00 min\); a run waits at most "
        r"30 min for one call: rate limit exceeded",
        text,
    ), text
    assert "the next run resumes where this one stopped" in text
    assert info.value.exit_code == 1 and info.value.status == 429
    assert len(server.log) == 1 and clock.slept == []


def test_an_ordinary_answer_announcing_a_wait_too_long_stops_before_the_next_call(server):
    clock, told = Clock(), []
    c = budget_client(server, clock, told, max_wait=600)
    server.fail_next(200, body={"ok": True}, headers=sib("0", "3000"))
    c.get("/ping")
    with pytest.raises(ConnectorError, match=r"in 50 min\); a run waits at most 10 min"):
        c.get("/ping")
    assert len(server.log) == 1  # nothing sent that would only earn a 429


def test_a_garbled_budget_is_ignored_and_the_documented_pace_stays(server):
    clock, told = Clock(), []
    c = budget_client(server, clock, told)
    server.fail_next(200, body={"ok": True}, headers=sib("none", "1380"))
    server.fail_next(200, body={"ok": True}, headers=sib("0", "-3"))
    for _ in range(3):
        c.get("/ping")
    assert clock.slept == [] and told == []  # the burst of 95 is still there


def test_a_short_budget_wait_is_not_announced(server):
    clock, told = Clock(), []
    c = budget_client(server, clock, told)
    server.fail_next(429, headers=sib("0", "2"), body={"message": "slow down"})
    c.get("/ping")
    assert clock.slept == [pytest.approx(2.0)] and told == []


def test_the_default_notice_is_a_segmerge_warning(server, caplog):
    clock = Clock()
    rate = RateLimit(100, 3600, 95, clock=clock, sleep=clock.sleep)
    c = client(server, rate=rate, budget_hint=brevo_budget, clock=clock, sleep=clock.sleep)
    server.fail_next(429, headers=sib("0", "600"), body={"message": "slow down"})
    with caplog.at_level("WARNING", logger="segmerge"):
        c.get("/ping")
    assert [r.name for r in caplog.records] == ["segmerge.ports.http"]
    assert "resuming at" in caplog.records[0].getMessage()


class Answer:
    """Only what the header parsers read."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = requests.structures.CaseInsensitiveDict(headers)


def test_budget_parsers_read_the_vendors_headers_and_ignore_garbage():
    assert brevo_budget(Answer(sib("37", "1200"))) == (37, 1200.0)
    assert brevo_budget(
        Answer({"X-Sib-RateLimit-Remaining": "0", "X-Sib-RateLimit-Reset": "1"})
    ) == (0, 1.0)
    for bad in (
        sib("", "1"),
        sib("1.5", "3"),
        sib("-1", "3"),
        sib("3", "nan"),
        sib("3", "soon"),
        {"x-sib-ratelimit-remaining": "3"},
        {},
    ):
        assert brevo_budget(Answer(bad)) is None, bad
    hubspot = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "12",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    assert hubspot_budget(Answer(hubspot)) == (12, 10.0)
    assert hubspot_budget(Answer({**hubspot, "X-HubSpot-RateLimit-Remaining": "x"})) is None
    assert hubspot_budget(Answer({"X-HubSpot-RateLimit-Remaining": "12"})) is None
