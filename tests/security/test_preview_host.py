"""`segmerge preview` against DNS rebinding: only its own names get an answer, only GET.

A page on `evil.example` that points its name at 127.0.0.1 makes the browser
send `Host: evil.example` to the preview; these tests send exactly such
requests, over a real socket to the real server on the demo workspace, and
check that no contact's data comes back, while the same request with the
preview's own name (or a name given with `--allow-host`) is served.
"""

from __future__ import annotations

import csv
import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli import segmerge
from test_preview_server import make_workspace

from segmerge.preview.app import PreviewServer, refused_host

AS_OF = "2026-12-01"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("preview-host") / "ws")


@pytest.fixture(scope="module")
def emails(demo: Path) -> list[str]:
    """Every contact's address: none may appear in a refused answer."""
    with (demo / "examples" / "demo" / "contacts.csv").open(encoding="utf-8-sig") as fh:
        return [row["E-mail"] for row in csv.DictReader(fh, delimiter=";") if row["E-mail"]]


@pytest.fixture(scope="module")
def server(demo: Path) -> Iterator[PreviewServer]:
    with PreviewServer(
        demo, port=0, as_of=AS_OF, allow_hosts=["atelier.local"], interval=3600
    ) as srv:  # read only: no file to watch
        yield srv


def request(
    srv: PreviewServer, path: str, host: str | None, method: str = "GET"
) -> tuple[int, dict[str, str], str]:
    """One request on a fresh connection, with exactly the Host header given (None: none)."""
    port = srv.httpd.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host.replace("PORT", str(port)))
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8")
    finally:
        conn.close()


def first_contact(srv: PreviewServer) -> tuple[str, str]:
    """A segment page's first contact and its body, asked for the right way."""
    code, _, body = request(srv, "/c/profils/zens", "127.0.0.1:PORT")
    assert code == 200
    m = re.search(r'data-contact="([^"]+)"', body)
    assert m is not None
    return m.group(1), body


def test_a_rebinding_host_gets_no_contact_data(server: PreviewServer, emails: list[str]) -> None:
    contact, page = first_contact(server)
    assert any(e in page for e in emails)  # the page does show contacts' data...
    paths = [
        "/",
        "/c/profils/zens",
        f"/c/profils/zens?contact={contact}",
        f"/letter/profils/{contact}",
        "/_version",
        "/assets/preview.js",
    ]
    hosts = [
        "evil.example",
        "evil.example:PORT",
        "127.0.0.1.evil.example:PORT",
        "localhost.evil.example",
        "localhost:1",
        "[::1]:1",
        "127.0.0.1:PORT@evil.example",
        "",
        None,
    ]
    for path in paths:
        for host in hosts:
            code, headers, body = request(server, path, host)
            assert code == 421, (path, host, code)
            assert body == refused_host(server.preview), (
                path,
                host,
            )  # ...and never to another name
            assert not any(e in body for e in emails) and contact not in body
            assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:PORT",
        "localhost:PORT",
        "LOCALHOST",
        "[::1]:PORT",
        "atelier.local:PORT",
        "Atelier.Local.",
    ],
)
def test_its_own_names_and_allowed_ones_are_served(
    server: PreviewServer, emails: list[str], host: str
) -> None:
    code, headers, body = request(server, "/c/profils/zens", host)
    assert code == 200, host
    assert any(e in body for e in emails)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_methods_other_than_get_are_refused(server: PreviewServer, emails: list[str]) -> None:
    contact, _ = first_contact(server)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        code, headers, body = request(
            server, f"/letter/profils/{contact}", "localhost:PORT", method
        )
        assert code == 405, method
        assert headers["Allow"] == "GET" and body == ""
    code, _, body = request(server, "/", "evil.example", "POST")  # the Host check comes first
    assert code == 421 and body == refused_host(server.preview)


def test_a_malformed_allow_host_is_a_usage_error(demo: Path) -> None:
    p = segmerge("preview", "-w", str(demo), "--port", "0", "--allow-host", "http://atelier.local/")
    assert p.returncode == 2, p.stdout + p.stderr
    assert "--allow-host" in p.stderr and "Traceback" not in p.stderr
