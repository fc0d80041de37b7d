"""`doctor` and `validate` check that tracked links reach `segmerge serve`, against the real
endpoint on 127.0.0.1 (the workspace's https base_url is sent to the local port, as the
reverse proxy would)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tracking_setup import AS_OF, Site, site_factory  # noqa: F401  (fixture)

from segmerge.cli.console import out
from segmerge.cli.doctor import _report
from segmerge.serve.endpoint import reachability as tracking_check
from segmerge.serve.endpoint.reachability import check_tracking, probe


def via(port: int):
    """A probe that reaches https://boutique.fr/... on a local port, with a real request."""

    def ask(url: str):
        assert url == "https://boutique.fr/t/c/check"
        return probe(url.replace("https://boutique.fr", f"http://127.0.0.1:{port}"), timeout=10)

    return ask


class _Website(BaseHTTPRequestHandler):
    """The shop's web site, which knows nothing of /t/: a proxy with no /t/ block."""

    server_version = "nginx"

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def website() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Website)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_serve_behind_the_url_passes_and_doctor_is_healthy(site_factory):  # noqa: F811
    site: Site = site_factory()
    reach = check_tracking(site.ws, via(site.server.port))
    assert reach is not None and reach.ok and reach.fix == ""
    with out.capture() as cap:
        healthy = _report(site.ws, via(site.server.port))
    assert healthy, cap.get()
    assert "tracked links reach segmerge serve" in cap.get()


def test_a_site_without_the_proxy_block_is_a_doctor_problem(site_factory, website):  # noqa: F811
    site: Site = site_factory()
    reach = check_tracking(site.ws, via(website))
    assert reach is not None and not reach.ok
    assert "https://boutique.fr/t/c/check gave HTTP 404 from server nginx" in reach.what
    assert "location /t/ { proxy_pass http://127.0.0.1:8058;" in reach.fix
    with out.capture() as cap:
        assert _report(site.ws, via(website)) is False  # doctor exits 2
    assert "do not reach segmerge serve" in cap.get() and "location /t/" in cap.get()


def test_nothing_listening_is_named_and_tracking_off_is_not_checked(site_factory):  # noqa: F811
    site: Site = site_factory()
    site.server.stop()
    reach = check_tracking(site.ws, via(site.server.port))
    assert reach is not None and not reach.ok and "no answer" in reach.what
    asked = []
    site.ws.config.tracking.clicks = False
    assert check_tracking(site.ws, lambda url: asked.append(url) or (403, "segmerge", "")) is None
    assert asked == []


def test_validate_warns_with_the_url_and_the_proxy_line(site_factory, website, monkeypatch):  # noqa: F811
    from segmerge.cli.validate import validate_workspace

    site: Site = site_factory()
    monkeypatch.setattr(tracking_check, "probe", lambda url, timeout=10.0: via(website)(url))
    with out.capture() as cap:
        validate_workspace(site.ws, "a", AS_OF)  # a warning, not a failure
    text = cap.get()
    assert "! tracked links do not reach segmerge serve: https://boutique.fr/t/c/check" in text
    assert "location /t/ {" in text
