"""The shared HTTP layer against a real HTTP server on loopback.

What a connector relies on: transient failures are retried and end well,
vendor pacing headers are obeyed, and every failure that reaches the user
names the source, the endpoint and the status, without the secret.
"""

from __future__ import annotations

import email.utils
import time

import pytest

from segmerge.errors import BadAnswer, ConnectorError, CredentialError
from segmerge.http import HttpClient, batched, field_of, retry_after
from segmerge.rate_limit import RateLimit
from tests.fakes.base import FakeServer, Reply, WindowLimiter

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
