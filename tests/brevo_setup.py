"""What the Brevo connector's tests share: a spec-checked fake, a connector pointed at it,
and the actions a campaign pushes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.brevo import BrevoConnector
from segmerge.ports.connector import Action, ConnectorContext
from tests.fakes import specs
from tests.fakes.brevo import KEY, BrevoFake

#: limits far above the fake's, so that only the tests about the budget wait
FAST = {"contacts_requests_per_second": 200.0, "other_requests_per_hour": 360_000.0}


def serve() -> Iterator[BrevoFake]:
    """A `fake` fixture's body: the fake with roomy limits; any violation fails the test."""
    server = BrevoFake(specs.brevo(), contacts_limit=1000, other_limit=1000, other_window=1.0)
    server.start()
    yield server
    server.stop()
    assert not server.violations, server.violations


def make(
    fake: BrevoFake,
    tmp_path: Path,
    key: str | None = KEY,
    *,
    cursors: dict[str, str] | None = None,
    done: list[tuple[str, Any, str | None]] | None = None,
    **settings: Any,
) -> BrevoConnector:
    """The connector on ``fake``; ``done`` collects what it hands over with ``stream_done``."""
    collected = done if done is not None else []
    ctx = ConnectorContext(
        name="shop",
        settings={"base_url": fake.url, **FAST, **settings},
        root=tmp_path,
        config_file=tmp_path / "segmerge.toml",
        secret=lambda: key,
        cursors=dict(cursors or {}),
        stream_done=lambda stream, rows, cursor: collected.append((stream, rows, cursor)),
    )
    return BrevoConnector(ctx)


def tag(cid: str, name: str, kind: str = "tag", email: str | None = None) -> Action:
    field = "list" if kind.endswith("list") else "tag"
    payload = {field: name, "segment": name.split(":")[-1], "email": email}
    return Action(f"run|{cid}|{kind}:{name}", kind, cid, payload)  # type: ignore[arg-type]


def by_key(outcomes: list[Any]) -> dict[str, Any]:
    return {o.key: o for o in outcomes}
