"""The `outbox` destination: one RFC 5322 `.eml` file per message, written atomically.

Files are named by campaign, run and contact, so redoing an action rewrites
nothing: a file already holding the same Message-ID counts as done. That makes
the outbox idempotent, and a crash mid-write leaves only a temp file that the
next attempt replaces.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from segmerge.connector import Action, ConnectorSettings, Destination, Outcome
from segmerge.errors import ConfigError


class OutboxSettings(ConnectorSettings):
    path: str = "outbox"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", part)[:120] or "_"


class OutboxConnector(Destination):
    Settings = OutboxSettings
    description = "one .eml file per message in a folder"
    accepts: ClassVar[frozenset[str]] = frozenset({"send"})
    idempotent: ClassVar[bool] = True
    batch_size = 200

    @property
    def folder(self) -> Path:
        assert isinstance(self.settings, OutboxSettings)
        return self.ctx.path(self.settings.path)

    def check(self) -> list[str]:
        probe = self.folder
        while not probe.exists():
            probe = probe.parent
        if not os.access(probe, os.W_OK):
            raise ConfigError(f"cannot write to {probe}", file=self.ctx.config_file,
                              field=f"{self.name}.path")  # fmt: skip
        return []

    def path_for(self, action: Action) -> Path:
        p = action.payload
        return (self.folder / _safe(str(p["campaign"])) / _safe(str(p["run_id"]))
                / f"{_safe(str(action.contact_id))}-{_safe(str(p['segment']))}.eml")  # fmt: skip

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        return [self._write(a) for a in actions]

    def _write(self, action: Action) -> Outcome:
        if action.kind != "send" or action.message is None:
            return Outcome(action.key, "failed", f"outbox cannot do {action.kind}")
        target = self.path_for(action)
        rel = os.path.relpath(target, self.ctx.root)
        data = action.message.as_bytes()
        try:
            if target.exists():
                old = email.message_from_bytes(target.read_bytes())
                if old["Message-ID"] == action.message["Message-ID"]:
                    return Outcome(action.key, "done", rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            return Outcome(action.key, "failed", f"{rel}: {exc.strerror or exc}")
        return Outcome(action.key, "done", rel)
