"""Reading what a vendor answered: its wait, its reason for refusing, a checked field.

Kept apart from the client because none of it sends anything: these read a header or
a body already in hand, so a connector's own parsers reach for the same checks.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, TypeVar

import requests

from segmerge import redact
from segmerge.errors import BadAnswer, ConnectorError, CredentialError
from segmerge.i18n import _

#: answers worth asking again: a timeout, the rate limit, a server having a bad moment
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

T = TypeVar("T")


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def vendor_reason(resp: requests.Response) -> str:
    """The human part of a vendor's error body, whatever its shape; the raw text otherwise."""
    try:
        body = redact.redact_value(resp.json())  # before cutting: a cut secret is not found
    except ValueError:
        text = redact.redact(resp.text.strip())
        if "<html" in text[:200].lower():
            return f"an HTML page ({resp.headers.get('Content-Type', 'text/html')})"
        return _snippet(text)
    if isinstance(body, dict):
        parts = [
            str(body[k])
            for k in ("message", "title", "detail", "error", "category", "code")
            if body.get(k)
        ]
        for k in ("errors", "context"):
            if body.get(k):
                parts.append(_snippet(str(body[k])))
        return "; ".join(dict.fromkeys(parts)) or _snippet(str(body))
    return _snippet(str(body))


def field_of(body: Any, key: str, kind: type[T], *, endpoint: str, source: str = "") -> T:
    """``body[key]`` checked to be a ``kind``: an API changing a field's type is reported."""
    who = f"{source}: " if source else ""
    if not isinstance(body, dict):
        raise BadAnswer(
            _("{who}{endpoint} answered {kind}, expected an object with {key!r}").format(
                who=who, endpoint=endpoint, kind=type(body).__name__, key=key
            ),
            field=source or None,
        )
    if key not in body:
        raise BadAnswer(
            _("{who}{endpoint}: the answer has no {key!r} field").format(
                who=who, endpoint=endpoint, key=key
            ),
            field=source or None,
        )
    value = body[key]
    if not isinstance(value, kind):
        raise BadAnswer(
            _("{who}{endpoint}: field {key!r} is {kind}, expected {expected}").format(
                who=who,
                endpoint=endpoint,
                key=key,
                kind=type(value).__name__,
                expected=kind.__name__,
            ),
            field=source or None,
        )
    return value


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def refusal(
    resp: requests.Response, endpoint: str, attempt: int, source: str, credential_hint: str | None
) -> ConnectorError:
    """What a refusal the client will not retry means to the user: a refused or too narrow
    credential, a platform still failing after its retries, or an answer we do not know."""
    status = resp.status_code
    reason = vendor_reason(resp)
    where = _("{source}: {endpoint} answered {status}").format(
        source=source, endpoint=endpoint, status=status
    )
    if status == 401:
        return CredentialError(
            _("{where}: the credential was refused{reason}").format(
                where=where, reason=_colon(reason)
            ),
            field=source,
            hint=_(
                "the key{origin} is wrong, expired or revoked: `segmerge auth set "
                "{source}` stores a new one"
            ).format(origin=_from(credential_hint), source=source),
        )
    if status == 403:
        return CredentialError(
            _("{where}: the credential lacks a permission{reason}").format(
                where=where, reason=_colon(reason)
            ),
            field=source,
            hint=_(
                "give the key{origin} the scope named above, or store another with "
                "`segmerge auth set {source}`"
            ).format(origin=_from(credential_hint), source=source),
        )
    if status in RETRY_STATUSES:
        return ConnectorError(
            _("{where} {attempts} time(s), giving up{reason}").format(
                where=where, attempts=attempt + 1, reason=_colon(reason)
            ),
            field=source,
            hint=_(
                "the platform is overloaded or down; the next run picks up where this one stopped"
            ),
        )
    return BadAnswer(where + _colon(reason), field=source)


def _colon(reason: str) -> str:
    return _(": {reason}").format(reason=reason) if reason else ""


def _from(hint: str | None) -> str:
    return _(" (from {hint})").format(hint=hint) if hint else ""
