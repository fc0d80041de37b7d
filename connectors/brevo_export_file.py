"""A Brevo recipients export, from the process's ``export_url`` to a column of e-mails.

Brevo documents neither the file's columns nor its delimiter: the API reference of
``POST /emailCampaigns/{campaignId}/exportRecipients`` only says it "returns a processId
to track the export status" (https://developers.brevo.com/reference/email-export-recipients),
and the process answers ``export_url``, given by the spec's own example as an HTML anchor
(``getProcess`` in getbrevo/brevo-php@c795929468ec9892a5c6c90764c5ffd68a8523f0:
swagger_definition_v3.yml: ``<a href="https://export-url.com/upload/file-name.csv"
target="_blank">filename.csv</a>``) and by its schema as a plain URL. Brevo's contact
files use the attribute names as headers (``EMAIL``, ``FIRSTNAME``...) separated by a
semicolon, a comma or a tab (https://help.brevo.com/hc/en-us/articles/208729849). So the
parser accepts both URL shapes, finds the delimiter from the header line and the e-mail
column by name, whatever its case; a file without one is a :class:`BadAnswer` naming the
columns it has, never an empty result.
"""

from __future__ import annotations

import gzip
import html
import io
import os
import re
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from segmerge.ports import BadAnswer, _

ANCHOR = re.compile(
    r"""^\s*<a\s[^>]*?href\s*=\s*(["'])(?P<url>[^"']+)\1[^>]*>.*?</a>\s*$""",
    re.IGNORECASE | re.DOTALL,
)
#: header names of the e-mail column (compared lower case, without spaces, dashes, dots)
EMAIL_HEADERS = ("email", "emailaddress", "emailid", "mail", "courriel", "adresseemail")
DELIMITERS = (";", ",", "\t", "|")


def export_url(value: object, *, source: str, endpoint: str) -> str:
    """The download URL of a completed export: a bare http(s) URL or Brevo's HTML anchor."""
    if isinstance(value, str):
        m = ANCHOR.match(value)
        url = html.unescape(m.group("url")) if m else value.strip()
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in url):
            return url
    raise BadAnswer(
        _(
            "{source}: {endpoint}: field 'export_url' is {value!r}, expected a "
            'URL or an <a href="..."> link'
        ).format(source=source, endpoint=endpoint, value=str(value)[:120]),
        field=source,
    )


def emails_of(data: bytes, *, source: str, what: str) -> pd.Series:
    """The e-mail column of an export file (zip, gzip or plain CSV), as written."""
    text = _text(_unpack(data, source=source, what=what))
    lines = text.lstrip().splitlines()
    if not lines:
        return pd.Series([], dtype="string")
    header = lines[0]
    sep = max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","
    frame = pd.read_csv(
        io.StringIO(text.lstrip()),
        sep=sep,
        dtype="string",
        keep_default_na=False,
        skip_blank_lines=True,
    )
    wanted = {re.sub(r"[\s_.\-]", "", str(c)).lower(): c for c in frame.columns}
    column = next((wanted[h] for h in EMAIL_HEADERS if h in wanted), None)
    if column is None:
        raise BadAnswer(
            _("{source}: the export of {what} has no e-mail column (columns: {value})").format(
                source=source, what=what, value=", ".join(map(str, frame.columns[:12])) or _("none")
            ),
            field=source,
            hint=_("Brevo changed its export format? report it with the file's header line"),
        )
    return frame[column].astype("string")


def _unpack(data: bytes, *, source: str, what: str) -> bytes:
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise BadAnswer(
                        _(
                            "{source}: the export of {what} is a zip of {value} files, expected one"
                        ).format(source=source, what=what, value=len(names)),
                        field=source,
                    )
                return z.read(names[0])
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise BadAnswer(
            _("{source}: the export of {what} is a damaged archive ({exc})").format(
                source=source, what=what, exc=exc
            ),
            field=source,
        ) from None
    if data[:1] == b"<" or b"\x00" in data[:512]:
        raise BadAnswer(
            _("{source}: the export of {what} is no CSV file (starts {value!r})").format(
                source=source, what=what, value=data[:40]
            ),
            field=source,
        )
    return data


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Brevo's other documented encoding


class ExportCache:
    """Export files kept in the workspace's state folder, by campaign, kind and counter.

    A counter that did not move means the same recipients, so a file already fetched
    for it is read again instead of exported again: ``validate`` then ``run`` pay the
    hourly budget once. The files hold e-mail addresses, like the snapshots beside them
    (``.segmerge/``); files of other counters and of campaigns out of the window go."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _path(self, campaign: int, kind: str, count: int) -> Path | None:
        return self.folder / f"c{campaign}-{kind}-{count}.csv" if self.folder else None

    def get(self, campaign: int, kind: str, count: int) -> bytes | None:
        path = self._path(campaign, kind, count)
        try:
            return path.read_bytes() if path is not None else None
        except OSError:
            return None

    def put(self, campaign: int, kind: str, count: int, data: bytes) -> None:
        path = self._path(campaign, kind, count)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:  # a cache that cannot be written only costs the next pull calls
            return

    def keep_only(self, wanted: set[tuple[int, str, int]]) -> None:
        if self.folder is None or not self.folder.is_dir():
            return
        names = {f"c{c}-{k}-{n}.csv" for c, k, n in wanted}
        for f in self.folder.iterdir():
            if f.name not in names:
                f.unlink(missing_ok=True)
