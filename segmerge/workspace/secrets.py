"""Credentials: the system keyring, then the environment, then `.env`.

Secrets never live in `segmerge.toml`; this module is the only place that
reads them, and it never logs or returns them in messages: each one it returns
is registered with :mod:`segmerge.redact`, which hides it from every output. A headless server
often has no keyring backend, so a missing keyring is a fallback, not an error.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

import keyring
from keyring.errors import KeyringError, PasswordDeleteError

from segmerge import redact
from segmerge.errors import ConfigError
from segmerge.i18n import _

SERVICE = "segmerge"


def env_var(name: str) -> str:
    """`shop` -> `SEGMERGE_SHOP_TOKEN` (non-alphanumerics become `_`)."""
    return f"SEGMERGE_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_TOKEN"


def read_dotenv(path: Path) -> dict[str, str]:
    """Minimal `.env` reader: KEY=VALUE lines, `#` comments, optional quotes, `export` prefix."""
    return {k: v for k, (v, _) in dotenv_entries(path).items()}


def dotenv_entries(path: Path) -> dict[str, tuple[str, int]]:
    """`.env` values with the line each is on, so a bad one can be pointed at, not shown."""
    values: dict[str, tuple[str, int]] = {}
    if not path.is_file():
        return values
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = (
            "it is not UTF-8 text"
            if isinstance(exc, UnicodeDecodeError)
            else (exc.strerror or type(exc).__name__)
        )
        raise ConfigError(
            _("cannot read the credentials file: {reason}").format(reason=reason), file=path
        ) from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = (value, number)
    return values


@dataclass(frozen=True)
class Found:
    """A secret and where it was read: the origin goes into messages, the value never."""

    value: str
    origin: str
    file: Path | None = None
    line: int | None = None
    hint: str = ""
    #: "keyring", "environment" or ".env": which store, whatever the language of ``origin``
    store: str = ""


def find(name: str, root: Path) -> Found | None:
    """The secret of `name` and its store: keyring, then environment, then `.env`."""
    try:
        value = keyring.get_password(SERVICE, name)
    except (KeyringError, RuntimeError):
        value = None
    if value:
        return Found(
            value,
            _("the keyring (service {service}, user {name})").format(service=SERVICE, name=name),
            hint=_("store it again with `segmerge auth set {name}`").format(name=name),
            store="keyring",
        )
    var = env_var(name)
    value = os.environ.get(var)
    if value:
        return Found(
            value,
            _("the environment variable {var}").format(var=var),
            hint=_("set {var} again, without the stray character").format(var=var),
        )
    path = root / ".env"
    entry = dotenv_entries(path).get(var)
    if entry and entry[0]:
        return Found(
            entry[0],
            f".env ({var})",
            file=path,
            line=entry[1],
            hint=_("correct line {line} of {path}").format(line=entry[1], path=path),
        )
    return None


def lookup(name: str, root: Path) -> str | None:
    """The secret of source or destination `name`, or None when none is configured.

    Every secret returned is registered with :mod:`segmerge.redact` first, and a
    malformed one (a pasted space or newline, a non-ASCII character) is refused
    here with its store named: sent on, it would make `requests` fail with a
    message quoting the whole header.
    """
    found = find(name, root)
    if found is None:
        return None
    redact.add(found.value)
    problem = malformed(found.value)
    if problem:
        raise ConfigError(
            _("the credential of {name} in {origin} {problem}").format(
                name=name, origin=found.origin, problem=problem
            ),
            file=found.file,
            line=found.line,
            field=name,
            hint=found.hint,
        )
    return found.value


def malformed(value: str) -> str | None:
    """What is wrong with a credential's characters (never the characters themselves)."""
    if value != value.lstrip():
        return _("starts with a space or a line break")
    if value != value.rstrip():
        return _("ends with a space or a line break")
    for i, ch in enumerate(value, 1):
        if ch in "\r\n":
            return _("contains a line break (character {i})").format(i=i)
        if ord(ch) < 32 or 127 <= ord(ch) < 160:
            return _("contains a control character (character {i})").format(i=i)
        if ord(ch) > 127:
            return _(
                "contains a non-ASCII character (character {i}); API keys, tokens "
                "and SMTP passwords are ASCII"
            ).format(i=i)
    return None


def where(name: str, root: Path) -> str | None:
    """Which store holds the secret (for `validate`), without revealing it."""
    found = find(name, root)
    if found is None:
        return None
    if found.file is not None:
        return f".env ({env_var(name)})"
    return "keyring" if found.store == "keyring" else f"environment ({env_var(name)})"


def exposure_warnings(root: Path) -> list[str]:
    """Credential files other users of the machine can read: `.env`, a keyring's own file."""
    files = [root / ".env", *_keyring_files()]
    notes = []
    for path in files:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & 0o077:
            said = _(
                "{path} holds credentials and other users of this machine can change "
                "it (mode {mode}): run chmod 600 {quoted}"
            )
            if mode & 0o044:
                said = _(
                    "{path} holds credentials and other users of this machine can read "
                    "it (mode {mode}): run chmod 600 {quoted}"
                )
            notes.append(
                said.format(
                    path=path, mode=f"{stat.S_IMODE(mode):o}", quoted=shlex.quote(str(path))
                )
            )
    return notes


def _keyring_files() -> list[Path]:
    """The file of a file-based keyring backend (keyrings.alt's plaintext or encrypted one)."""
    try:
        backend = keyring.get_keyring()
    except Exception:  # no usable keyring is not a warning
        return []
    backends = list(getattr(backend, "backends", None) or [backend])
    out = []
    for b in backends:
        try:
            path = getattr(b, "file_path", None)
        except Exception:  # a backend computing its path lazily may fail: nothing to check
            path = None
        if isinstance(path, str | os.PathLike):
            out.append(Path(path))
    return out


def store(name: str, secret: str) -> None:
    problem = malformed(secret)
    if problem:
        raise ConfigError(
            _("the secret typed for {name} {problem}; nothing was stored").format(
                name=name, problem=problem
            ),
            field=name,
            hint=_("run `segmerge auth set {name}` again").format(name=name),
        )
    try:
        keyring.set_password(SERVICE, name, secret)
    except (KeyringError, RuntimeError) as exc:
        raise ConfigError(
            _("no usable system keyring ({kind})").format(kind=type(exc).__name__),
            hint=_("set the environment variable {value} or put it in the workspace's .env").format(
                value=env_var(name)
            ),
        ) from None


def remove(name: str) -> bool:
    try:
        keyring.delete_password(SERVICE, name)
    except PasswordDeleteError:
        return False
    except (KeyringError, RuntimeError) as exc:
        raise ConfigError(
            _("no usable system keyring ({kind})").format(kind=type(exc).__name__)
        ) from None
    return True
