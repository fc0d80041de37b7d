"""Credentials: the system keyring, then the environment, then `.env`.

Secrets never live in `segmerge.toml`; this module is the only place that
reads them, and it never logs or returns them in messages. A headless server
often has no keyring backend, so a missing keyring is a fallback, not an error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import keyring
from keyring.errors import KeyringError, PasswordDeleteError

from .errors import ConfigError

SERVICE = "segmerge"


def env_var(name: str) -> str:
    """`shop` -> `SEGMERGE_SHOP_TOKEN` (non-alphanumerics become `_`)."""
    return f"SEGMERGE_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_TOKEN"


def read_dotenv(path: Path) -> dict[str, str]:
    """Minimal `.env` reader: KEY=VALUE lines, `#` comments, optional quotes, `export` prefix."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def lookup(name: str, root: Path) -> str | None:
    """The secret of source or destination `name`, or None when none is configured."""
    try:
        value = keyring.get_password(SERVICE, name)
    except (KeyringError, RuntimeError):
        value = None
    if value:
        return value
    value = os.environ.get(env_var(name))
    if value:
        return value
    return read_dotenv(root / ".env").get(env_var(name)) or None


def where(name: str, root: Path) -> str | None:
    """Which store holds the secret (for `validate`), without revealing it."""
    try:
        if keyring.get_password(SERVICE, name):
            return "keyring"
    except (KeyringError, RuntimeError):
        pass
    if os.environ.get(env_var(name)):
        return f"environment ({env_var(name)})"
    if read_dotenv(root / ".env").get(env_var(name)):
        return f".env ({env_var(name)})"
    return None


def store(name: str, secret: str) -> None:
    try:
        keyring.set_password(SERVICE, name, secret)
    except (KeyringError, RuntimeError) as exc:
        raise ConfigError(
            f"no usable system keyring ({type(exc).__name__})",
            hint=f"set the environment variable {env_var(name)} or put it in the workspace's .env",
        ) from None


def remove(name: str) -> bool:
    try:
        keyring.delete_password(SERVICE, name)
    except PasswordDeleteError:
        return False
    except (KeyringError, RuntimeError) as exc:
        raise ConfigError(f"no usable system keyring ({type(exc).__name__})") from None
    return True
