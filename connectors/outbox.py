"""The `outbox` destination: one RFC 5322 `.eml` file per message, written atomically.

For a dry run with real data, a hand-off to another mailer, or an archive of
what went out. Files live at ``<path>/<campaign>/<run_id>/<contact_id>-<segment>.eml``,
so redoing an action never writes a second file: a file already holding the
same Message-ID counts as done (the destination is idempotent), and a file
holding another one is never overwritten.

Each file is written to a temporary name in the same folder, flushed to disk
(fsync), then renamed over its final name (``os.replace``, atomic on POSIX and
Windows): a reader never sees half a message, and a write killed halfway
leaves only the temporary file, which the next attempt for the same message
overwrites and renames. A disk that is full or read-only stops the push with
a :class:`~segmerge.workspace.storage.StorageError` naming the file (exit 1): the batch
stays planned, and the next run redoes it (a file already written counts as
done); any other OS error fails that message alone.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import os
import re
import unicodedata
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from typing import ClassVar

from segmerge.ports import (
    Action,
    ConnectorError,
    ConnectorSettings,
    Destination,
    Outcome,
    StorageError,
    _,
    is_disk_error,
)

_SAFE = re.compile(r"[A-Za-z0-9@+_-][A-Za-z0-9@+._-]{0,99}")
_UNSAFE = re.compile(r"[^A-Za-z0-9@+._-]+")
_REQUIRED = ("run_id", "segment", "campaign")


class OutboxSettings(ConnectorSettings):
    path: str = "outbox"


def safe_name(part: str) -> str:
    """A file-system-safe name for one path component, distinct for distinct inputs.

    A name that is already safe is kept; any other (accents, '/', '..', spaces, a
    leading dot) is folded to ASCII and suffixed with a hash of the original, so
    that two contact ids never share a file.
    """
    if _SAFE.fullmatch(part):
        return part
    ascii_part = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("_", ascii_part).strip("._")[:80] or "_"
    return f"{cleaned}~{hashlib.sha256(part.encode('utf-8')).hexdigest()[:8]}"


class OutboxConnector(Destination):
    Settings = OutboxSettings
    description = "writes one RFC 5322 .eml file per message into a folder"
    accepts: ClassVar[frozenset[str]] = frozenset({"send"})
    idempotent: ClassVar[bool] = True
    batch_size = 200

    @property
    def folder(self) -> Path:
        assert isinstance(self.settings, OutboxSettings)
        return self.ctx.path(self.settings.path)

    def check(self) -> list[str]:
        """The folder can be created and written (without leaving anything behind)."""
        folder = self.folder
        try:
            if folder.exists():
                if not folder.is_dir():
                    raise OSError(f"{folder} exists and is not a folder")
                probe = folder / f".segmerge-probe-{os.getpid()}"
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
                try:
                    os.write(fd, b"probe")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                    probe.unlink(missing_ok=True)
            else:
                parent = next(p for p in folder.parents if p.exists())
                if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                    raise OSError(f"cannot create folders in {parent}")
        except OSError as exc:
            raise ConnectorError(
                _("the outbox folder {folder} cannot be written: {problem}").format(
                    folder=self._shown(folder), problem=exc.strerror or exc
                ),
                file=self.ctx.config_file,
                field=f"{self.name}.path",
            ) from None
        return []

    def path_for(self, action: Action) -> Path:
        p = action.payload
        name = f"{safe_name(str(action.contact_id))}-{safe_name(str(p['segment']))}.eml"
        return self.folder / safe_name(str(p["campaign"])) / safe_name(str(p["run_id"])) / name

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        written: set[Path] = set()
        for action in actions:
            outcome, folder = self._write(action)
            outcomes.append(outcome)
            if folder is not None:
                written.add(folder)
        for folder in written:  # the renames themselves reach the disk
            _fsync_dir(folder)
        return outcomes

    def _write(self, action: Action) -> tuple[Outcome, Path | None]:
        problem = _invalid(action)
        if problem:
            return Outcome(action.key, "failed", problem), None
        msg = action.message
        assert msg is not None
        target = self.path_for(action)
        shown = self._shown(target)
        message_id = str(msg["Message-ID"]).strip()
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            if target.exists():
                existing = _message_id(target)
                if existing == message_id:
                    return Outcome(action.key, "done", shown), None
                return Outcome(
                    action.key,
                    "failed",
                    f"{shown} already holds another message ({existing}); not overwritten",
                ), None
            data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if is_disk_error(exc):  # every next message would fail alike: stop, name the file
                raise StorageError(
                    _("cannot write: {problem}").format(problem=exc.strerror),
                    file=shown,
                    hint=_("free some space, then run again"),
                ) from None
            return Outcome(action.key, "failed", f"{shown}: {exc.strerror or exc}"), None
        return Outcome(action.key, "done", shown), target.parent

    def _shown(self, path: Path) -> str:
        """The path as the user reads it: relative to the workspace when inside it."""
        try:
            return path.relative_to(self.ctx.root).as_posix()
        except ValueError:
            return str(path)


def _invalid(action: Action) -> str | None:
    if action.kind != "send":
        return f"the outbox only sends messages, it cannot {action.kind}"
    if not isinstance(action.message, Message):
        return "no message to write"
    if action.message["Message-ID"] is None:
        return "the message has no Message-ID"
    missing = [k for k in _REQUIRED if not action.payload.get(k)]
    if missing or not action.contact_id:
        return f"the action lacks {', '.join(missing or ['contact_id'])}"
    return None


def _message_id(path: Path) -> str | None:
    with open(path, "rb") as fh:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parse(fh)
    value = headers["Message-ID"]
    return str(value).strip() if value is not None else None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
