"""Which `Host` headers the preview answers: its defence against DNS rebinding.

The preview shows contacts' data without a password, trusting that only this
computer can reach 127.0.0.1. A web page the user visits can break that trust:
it points its own name (`evil.example`) at 127.0.0.1 with a short-lived DNS
record, and the browser, judging by the name, lets the page's scripts read the
answers. Such requests carry `Host: evil.example`, which no legitimate visit
does, so the preview answers only the names a person types to reach it:
`127.0.0.1`, `localhost`, `[::1]`, the address it listens on, and the names
given with `--allow-host` (for a machine reached by its own name, or a proxy
that keeps the Host). With the server's port or none; anything else gets 421
and no data.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from segmerge.errors import ConfigError
from segmerge.i18n import _

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?|[0-9a-f:.]+")


def normalise(name: str) -> str:
    """A host name as compared: lower case, no brackets around IPv6, no final dot."""
    name = name.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.rstrip(".") if name not in (".", "") else name


def allowed_names(listen: str, extra: Iterable[str]) -> frozenset[str]:
    """The names the preview answers to; a malformed `--allow-host` is an exit-2 error."""
    names = set(LOOPBACK)
    bound = normalise(listen)
    if not _wildcard(bound):
        names.add(bound)
    for raw in extra:
        name = normalise(raw)
        if not _NAME.fullmatch(name):
            raise ConfigError(
                _("--allow-host expects a host name or an address, got {raw!r}").format(raw=raw),
                field="--allow-host",
                hint=_("e.g. --allow-host atelier.local (no scheme, port or path)"),
            )
        names.add(name)
    return frozenset(names)


def host_ok(header: str | None, names: frozenset[str], port: int) -> bool:
    """True when `header` (the request's Host) is one of `names`, with `port` or no port."""
    if not header:
        return False
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return False
        host, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return False
        given = rest[1:] if rest else ""
    else:
        host, sep, given = value.rpartition(":")
        if not sep:
            host, given = value, ""
        if ":" in host:  # an IPv6 address must be bracketed
            return False
    if given and given != str(port):
        return False
    return normalise(host) in names


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
