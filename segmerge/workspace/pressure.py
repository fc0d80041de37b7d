"""`[pressure]` in segmerge.toml, without pandas: the workspace loads it for every command.

With no `max_messages`, the default cap applies: one message per address per
day, all campaigns together. A workspace with several campaigns on their own
schedules otherwise mails the same inbox three times on a Monday morning, and
nobody chose that; `max_messages = 0` says "no cap" on purpose.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from segmerge.i18n import _, ngettext, number

DAYS = {
    "mon": 0,
    "lun": 0,
    "lundi": 0,
    "monday": 0,
    "tue": 1,
    "mar": 1,
    "mardi": 1,
    "tuesday": 1,
    "wed": 2,
    "mer": 2,
    "mercredi": 2,
    "wednesday": 2,
    "thu": 3,
    "jeu": 3,
    "jeudi": 3,
    "thursday": 3,
    "fri": 4,
    "ven": 4,
    "vendredi": 4,
    "friday": 4,
    "sat": 5,
    "sam": 5,
    "samedi": 5,
    "saturday": 5,
    "sun": 6,
    "dim": 6,
    "dimanche": 6,
    "sunday": 6,
}
_SPAN = re.compile(r"^\s*(\d{1,2})[:h](\d{2})\s*-\s*(\d{1,2})[:h](\d{2})\s*$")
#: the cap when the workspace names none: one message per address per day
DEFAULT_MAX_MESSAGES = 1
DEFAULT_PER_DAYS = 1


class PressureConfig(BaseModel):
    """``[pressure]`` in segmerge.toml; every key optional. Without ``max_messages`` the
    default cap (one message per address per day) applies; ``max_messages = 0``: no cap."""

    model_config = ConfigDict(extra="forbid")

    max_messages: int | None = Field(default=None, ge=0)
    per_days: int = Field(default=7, ge=1)
    quiet_hours: str | None = None  # "21:00-08:00", local time
    quiet_days: list[str] = Field(default_factory=list)  # ["dimanche"] or ["sun"]

    @field_validator("quiet_hours")
    @classmethod
    def _span(cls, v: str | None) -> str | None:
        if v is not None:
            m = _SPAN.match(v)
            if not m or int(m[1]) > 23 or int(m[3]) > 23 or int(m[2]) > 59 or int(m[4]) > 59:
                raise ValueError(
                    _("{value} is not a span of hours like '21:00-08:00'").format(value=repr(v))
                )
        return v

    @field_validator("quiet_days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        unknown = [d for d in v if d.strip().lower() not in DAYS]
        if unknown:
            raise ValueError(
                ngettext(
                    "unknown day {days} (e.g. 'dimanche' or 'sun')",
                    "unknown days {days} (e.g. 'dimanche' or 'sun')",
                    len(unknown),
                ).format(days=", ".join(repr(d) for d in unknown))
            )
        return v

    _default_cap: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _cap(self) -> PressureConfig:
        if self.max_messages is None:  # not set: the default cap, said by `validate`
            self.max_messages = DEFAULT_MAX_MESSAGES
            if "per_days" not in self.model_fields_set:
                self.per_days = DEFAULT_PER_DAYS
            self._default_cap = True
        elif self.max_messages == 0:  # "no cap", on purpose
            self.max_messages = None
        return self

    @property
    def default_cap(self) -> bool:
        """The cap is Segmerge's default, not the workspace's own setting."""
        return self._default_cap

    @property
    def active(self) -> bool:
        return bool(self.max_messages or self.quiet_hours or self.quiet_days)

    def describe(self) -> str:
        """The policy in one line (English: it goes into the ledger's details too)."""
        parts = []
        if self.max_messages:
            parts.append(f"at most {self.max_messages} message(s) per {self.per_days} day(s)")
        if self.quiet_hours:
            parts.append(f"quiet {self.quiet_hours}")
        if self.quiet_days:
            parts.append(f"quiet on {', '.join(self.quiet_days)}")
        return "; ".join(parts)

    def shown(self) -> str:
        """The policy in one line in the command's language (describe() stays English for
        the ledger, whose details are data)."""
        parts = []
        if self.max_messages:
            most = ngettext("at most {n} message", "at most {n} messages", self.max_messages)
            per = ngettext("per {n} day", "per {n} days", self.per_days)
            parts.append(
                most.format(n=number(self.max_messages)) + " " + per.format(n=number(self.per_days))
            )
        if self.quiet_hours:
            parts.append(_("quiet {hours}").format(hours=self.quiet_hours))
        if self.quiet_days:
            parts.append(_("quiet on {days}").format(days=", ".join(self.quiet_days)))
        return "; ".join(parts)
