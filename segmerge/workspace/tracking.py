"""``[tracking]``: the opens and clicks of our own sends (smtp, outbox), served by `serve`.

Both are asked for, never assumed: ``clicks = true`` rewrites every link of
every letter to go through `serve`, so a reverse proxy that forwards only the
unsubscribe path (as docs/deploy.md long said) would break every link a shop
sends; the open pixel (``opens = true``) also needs the recipient's consent in
the CNIL's reading (docs/tracking.md). Links go through ``base_url``, by default
the scheme and host of ``[mail] unsubscribe_url``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrackingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clicks: bool = False
    opens: bool = False
    #: where `/t/c/<token>` and `/t/o/<token>.gif` are served from; default: the origin
    #: of `[mail] unsubscribe_url`
    base_url: str | None = None
    #: a hit this many seconds or less after delivery is a security scanner, not a person
    min_delay: float = Field(default=10.0, ge=0, le=3600)
    #: this many different links of one letter clicked within `burst_seconds` (or every
    #: link of a letter with fewer, from two) is a link scanner
    burst_links: int = Field(default=3, ge=2, le=100)
    burst_seconds: float = Field(default=5.0, ge=0, le=600)

    @field_validator("base_url")
    @classmethod
    def _https(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"must be an https:// address without ? or #, got {v!r}")
        if any(c in v for c in " <>\"'\r\n\t"):
            raise ValueError(f"must not contain spaces, quotes or < >, got {v!r}")
        return v.rstrip("/")


def base_url(tracking: TrackingConfig, unsubscribe_url: str) -> str:
    """Where the letters' tracked links point."""
    if tracking.base_url:
        return tracking.base_url
    parts = urlsplit(unsubscribe_url)
    return f"{parts.scheme}://{parts.netloc}"
