"""Reading suppression lists exported from other tools, in the one address form that
consent compares (:mod:`segmerge.ports.addresses`)."""

from __future__ import annotations

import csv
import io
from email.utils import parseaddr
from pathlib import Path

import pandas as pd

from segmerge.errors import DataError
from segmerge.i18n import _
from segmerge.ports.addresses import normalise_column


def read_addresses(path: Path) -> list[str]:
    """Addresses from a CSV with an `email`-like column, or from a plain one-per-line file."""
    if not path.is_file():
        raise DataError(_("file not found"), file=path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
        delim = dialect.delimiter
    except csv.Error:
        delim = ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim))
    header = [h.strip().lower() for h in rows[0]]
    col = next(
        (
            i
            for i, h in enumerate(header)
            if h in ("email", "e-mail", "mail", "address", "adresse", "courriel")
        ),
        None,
    )
    body = rows[1:] if col is not None else rows
    col = col or 0
    out: list[str] = []
    for n, r in enumerate(body, start=2 if body is not rows else 1):
        value = r[col].strip().lower() if col < len(r) else ""
        if not value:
            continue
        if "@" not in value:
            raise DataError(
                _("expected an e-mail address, got {value}").format(value=repr(value)),
                file=path,
                line=n,
            )
        if value.endswith(">") and "<" in value:  # `Alice Martin <alice@example.org>`
            value = parseaddr(value)[1] or value
        out.append(value)
    # one spelling per mailbox (segmerge.ports.addresses); one that cannot be normalised is kept
    # as written: it can never be mailed anyway, and nothing the user gave is dropped
    normal, _bad = normalise_column(pd.Series(out, dtype="string"))
    return [n if isinstance(n, str) else v for n, v in zip(normal.tolist(), out, strict=True)]
