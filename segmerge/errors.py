"""One root error for everything a user can get wrong.

The CLI turns a :class:`SegmergeError` into one readable message and exit code 2
(bad usage / invalid input) or 1 (a run that failed). Carrying file, line,
column and field as data, not just text, lets every layer add the location it
knows without re-parsing messages, and lets tests assert on them. Messages are
redacted (:mod:`segmerge.redact`) when the error is made, in the process that
knows the secrets. The framing ("hint:") is in the command's language when
printed; the message is translated where it is raised (:mod:`segmerge.i18n`).
"""

from __future__ import annotations

from pathlib import Path

from segmerge.i18n import _, label
from segmerge.redact import redact


class SegmergeError(Exception):
    """A problem the user can fix; never a bug. Exit code 2 unless overridden."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        # a vendor's answer quoted in a message may echo the credential: hidden at birth,
        # so every printer, log line and ledger detail made from it is clean
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.field = field
        self.hint = redact(hint) if hint else hint

    def location(self) -> str:
        """`file:line:column` as far as it is known, in the compiler style editors understand."""
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
            if self.line is not None:
                parts.append(str(self.line))
                if self.column is not None:
                    parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        head = self.location()
        text = self.message
        if self.field and not text.startswith((f"{self.field}: ", f"{label(self.field)} ")):
            text = f"{label(self.field)} {text}"  # "shop: shop: GET ..." once
        if head:  # file:line:column: with plain colons, the form editors and CI parse
            text = f"{head}: {text}"
        if self.hint:
            text = f"{text}\n  {label(_('hint'))} {self.hint}"
        return text


class ConfigError(SegmergeError):
    """segmerge.toml or a campaign is invalid."""


class DataError(SegmergeError):
    """A source file or API answer cannot be read into the canonical tables."""


class RuleError(SegmergeError):
    """A rule set does not parse or does not type-check."""


class TemplateError(SegmergeError):
    """A template is missing, does not compile, or cannot be filled."""

    #: the letter ran out of its render time (the pool then gives that letter less time)
    timed_out: bool = False


class ConnectorError(SegmergeError):
    """A connector could not do its job (unreachable host, rejected credential, garbage answer)."""

    exit_code = 1
    #: the HTTP status that caused it, when there was one (connectors branch on it)
    status: int | None = None


class LedgerError(SegmergeError):
    """The ledger is locked, corrupt or unwritable."""

    exit_code = 1


class CredentialError(ConnectorError):
    """The platform refused the credential (401) or a permission it needs (403)."""

    exit_code = 2


class BadAnswer(ConnectorError):
    """The platform answered something unreadable: HTML, non-JSON, a field of the wrong type."""

    exit_code = 2
