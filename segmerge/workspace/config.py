"""The workspace: `segmerge.toml`, validated, with its paths and time zone.

Validation happens once, here, with pydantic, so that every later layer can
trust the config; each error names the file, the line of the offending key and
what was expected, because TOML parsers and pydantic alone say neither.
"""

from __future__ import annotations

import re
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.workspace.kpi import KpiConfig
from segmerge.workspace.positions import first_line, locate_key, strip_position, toml_position
from segmerge.workspace.pressure import PressureConfig
from segmerge.workspace.root import find_root as find_root  # re-exported: callers name it here
from segmerge.workspace.sources import ConnectorRef, SourceRef
from segmerge.workspace.textfile import read_user_text
from segmerge.workspace.tracking import TrackingConfig

CONFIG_NAME = "segmerge.toml"
STATE_DIR = ".segmerge"
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _mailbox(v: str | None) -> str | None:
    """`Name <addr>` or `addr`, checked when the config is read: a sender no letter can carry
    would otherwise skip every letter of a run that still looks fine at `validate`."""
    if not v:
        return v
    _name, addr = parseaddr(v)
    local, at, domain = addr.rpartition("@")
    if any(c in v for c in "\r\n\0") or not (at and local and "." in domain.strip(".")):
        raise ValueError(f"{v!r} is not an e-mail address (expected 'Shop <hello@example.org>')")
    if any(c.isspace() for c in addr):
        raise ValueError(f"{v!r} is not an e-mail address: its address has a space")
    return v


class CampaignConfig(KpiConfig):  # kpi_margin, kpi_mde...: segmerge/workspace/kpi.py
    source: str
    rules: str
    destination: str
    templates: str | None = None
    tag_prefix: str = "seg:"
    schedule: str | None = None
    from_: str = Field(default="", alias="from")
    reply_to: str | None = None
    description: str = ""
    push_tags: bool = True
    #: share of each segment that gets nothing (a control group for `kpi`), 0 to 0.5
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)
    #: a generic (unsegmented) campaign whose results `kpi` compares this one with
    baseline: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    _addresses = field_validator("from_", "reply_to")(_mailbox)


class MailConfig(_Strict):
    """Workspace-wide mail settings: sender, unsubscribe link, the domain of Message-IDs."""

    from_: str = Field(default="", alias="from")
    unsubscribe_url: str = "https://example.org/unsubscribe?token={token}"
    unsubscribe_mailto: str | None = None
    message_id_domain: str = "segmerge.local"
    #: seconds of CPU one letter may take to render, and its largest size in characters: a
    #: template that never ends or eats memory skips that contact (render_limits.py)
    render_timeout: float = Field(default=5.0, gt=0, le=600)
    max_letter_size: int = Field(default=5_000_000, ge=10_000, le=200_000_000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    _addresses = field_validator("from_", "unsubscribe_mailto")(
        lambda v: _mailbox(v.removeprefix("mailto:").partition("?")[0] if v else v) and v
    )

    @field_validator("unsubscribe_url")
    @classmethod
    def _has_token(cls, v: str) -> str:
        # One-click unsubscribe (RFC 8058) is only honoured over https; a link the letters
        # cannot carry would otherwise skip every letter of a run that still exits 0.
        if not v.startswith("https://") or len(v) <= len("https://"):
            raise ValueError(
                f"must be an https:// address (RFC 8058 one-click unsubscribe), got {v!r}"
            )
        if any(c in v for c in ' <>"\r\n\t'):
            raise ValueError(f"must not contain spaces, quotes or < >, got {v!r}")
        if "{token}" not in v:
            raise ValueError("must contain {token}, where the contact's signed token goes")
        return v


class StateConfig(_Strict):
    """Where backups of the ledger and the signing key go besides `.segmerge/backup/`."""

    backup_dir: str | None = None


class WorkspaceConfig(_Strict):
    timezone: str = "Europe/Paris"
    locale: str = "fr_FR"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    mail: MailConfig = Field(default_factory=MailConfig)
    pressure: PressureConfig = Field(default_factory=PressureConfig)
    sources: dict[str, SourceRef] = Field(default_factory=dict)
    destinations: dict[str, ConnectorRef] = Field(default_factory=dict)
    campaigns: dict[str, CampaignConfig] = Field(default_factory=dict)
    state: StateConfig = Field(default_factory=StateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                _("unknown time zone {name} (expected e.g. 'Europe/Paris')").format(name=repr(v))
            ) from None
        return v

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: str) -> str:
        try:
            Locale.parse(v)
        except (UnknownLocaleError, ValueError):
            raise ValueError(
                _("unknown locale {name} (expected e.g. 'fr_FR')").format(name=repr(v))
            ) from None
        return v


class Workspace:
    """A loaded, validated workspace folder."""

    def __init__(self, root: Path, config: WorkspaceConfig, config_file: Path) -> None:
        self.root = root
        self.config = config
        self.config_file = config_file
        self.tz = ZoneInfo(config.timezone)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def ledger_path(self) -> Path:
        """The ledger's file: the one place that names it (see :mod:`segmerge.ledger`)."""
        from segmerge.workspace.state import LEDGER_FILE  # sqlite and locks: not for loading

        return self.state_dir / LEDGER_FILE

    def path(self, value: str | Path) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    def relative(self, p: Path) -> str:
        """A path as the user wrote it: relative to the workspace when inside it."""
        try:
            return str(p.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(p)

    def campaign(self, name: str) -> CampaignConfig:
        if name not in self.config.campaigns:
            known = ", ".join(sorted(self.config.campaigns)) or _("none")
            raise ConfigError(
                _("no campaign {name} (campaigns: {known})").format(name=repr(name), known=known),
                file=self.config_file,
                line=None,
                field="campaigns",
            )
        return self.config.campaigns[name]

    def templates_dir(self, campaign: CampaignConfig) -> Path:
        if campaign.templates:
            return self.path(campaign.templates)
        return self.path(Path("templates") / Path(campaign.rules).stem)


def load(workspace: str | Path | None = None) -> Workspace:
    root = find_root(workspace)
    config_file = root / CONFIG_NAME
    if not config_file.is_file():
        raise ConfigError(
            _("no {file} in {folder}").format(file=CONFIG_NAME, folder=root),
            hint=_("run `segmerge init DIR` to create a workspace, or pass --workspace DIR"),
        )
    text = read_user_text(config_file, CONFIG_NAME, ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, col = toml_position(str(exc))
        raise ConfigError(
            _("not valid TOML: {problem}").format(problem=strip_position(str(exc))),
            file=config_file,
            line=line,
            column=col,
        ) from None
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        raise ConfigError(
            _("not valid TOML: arrays or inline tables nested too deeply"),
            file=config_file,
            line=first_line(text, lambda raw: raw.count("[") + raw.count("{") > 100),
        ) from None
    except ValueError:  # Python refuses to read integers of more than 4,300 digits
        raise ConfigError(
            _("not valid TOML: a number is too long"),
            file=config_file,
            line=first_line(text, lambda raw: re.search(r"\d{4000}", raw) is not None),
        ) from None
    try:
        config = WorkspaceConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = [str(p) for p in err["loc"]]
        raise ConfigError(
            _explain(err),
            file=config_file,
            line=locate_key(text, path),
            field=".".join(path),
        ) from None
    ws = Workspace(root, config, config_file)
    _check_references(ws, text)
    _check_outbox_paths(ws, text)
    return ws


def _explain(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return _("unknown setting (a typo?)")
    if err["type"] == "missing":
        return _("this setting is required")
    said = _pydantic_said(err)
    if said is not None:
        return said
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _pydantic_said(err: Any) -> str | None:
    """Pydantic's commonest complaints in the command's language (its own text is English);
    None for the others, whose English text is shown as is."""
    kind = str(err["type"]).removesuffix("_parsing").removesuffix("_type")
    ctx = err.get("ctx") or {}
    said = {
        "string": _("expected text"),
        "int": _("expected a whole number"),
        "float": _("expected a number"),
        "bool": _("expected true or false"),
        "dict": _("expected a table"),
        "model": _("expected a table"),
        "list": _("expected a list"),
    }.get(kind)
    if said is not None:
        return said
    if kind == "literal_error" and "expected" in ctx:
        return _("expected {values}").format(values=ctx["expected"])
    if kind == "string_pattern_mismatch" and "pattern" in ctx:
        return _("does not have the expected form {pattern}").format(pattern=repr(ctx["pattern"]))
    for key, text in (
        ("ge", _("expected {n} or more")),
        ("gt", _("expected more than {n}")),
        ("le", _("expected {n} or less")),
        ("lt", _("expected less than {n}")),
    ):
        if key in ctx and kind.startswith(("greater", "less")):
            return text.format(n=ctx[key])
    return None


def _check_references(ws: Workspace, text: str) -> None:
    """A campaign's source, destination and rules must exist before anything runs."""
    for name, c in ws.config.campaigns.items():
        if not re.match(NAME_RE, name):
            raise ConfigError(
                _("campaign names are letters, digits, - and _"),
                file=ws.config_file,
                line=locate_key(text, ["campaigns", name]),
                field=f"campaigns.{name}",
            )
        if c.source not in ws.config.sources:
            raise ConfigError(
                _("unknown source {name} (sources: {known})").format(
                    name=repr(c.source), known=", ".join(ws.config.sources) or _("none")
                ),
                file=ws.config_file,
                line=locate_key(text, ["campaigns", name, "source"]),
                field=f"campaigns.{name}.source",
            )
        if c.destination not in ws.config.destinations and c.destination not in ws.config.sources:
            known = ", ".join([*ws.config.destinations, *ws.config.sources]) or _("none")
            raise ConfigError(
                _("unknown destination {name} (known: {known})").format(
                    name=repr(c.destination), known=known
                ),
                file=ws.config_file,
                line=locate_key(text, ["campaigns", name, "destination"]),
                field=f"campaigns.{name}.destination",
            )
        if c.baseline is not None and c.baseline not in ws.config.campaigns:
            raise ConfigError(
                _("unknown baseline campaign {name}").format(name=repr(c.baseline)),
                file=ws.config_file,
                line=locate_key(text, ["campaigns", name, "baseline"]),
                field=f"campaigns.{name}.baseline",
            )
        if not ws.path(c.rules).is_file():
            raise ConfigError(
                _("rule set {path} not found").format(path=repr(c.rules)),
                file=ws.config_file,
                line=locate_key(text, ["campaigns", name, "rules"]),
                field=f"campaigns.{name}.rules",
            )


def _check_outbox_paths(ws: Workspace, text: str) -> None:
    """An outbox writes every letter, names and addresses included: inside the workspace only.

    `path = "../../srv/www"` or an absolute path would publish contacts' data wherever the
    setting points; a symlinked folder that leads out is refused the same way.
    """
    root = ws.root.resolve()
    for table in ("destinations", "sources"):
        for name, ref in getattr(ws.config, table).items():
            if ref.connector != "outbox":
                continue
            value = ref.settings().get("path", "outbox")
            if not isinstance(value, str):
                continue  # the connector's own settings say what type it wants
            target = ws.path(value).resolve()
            if target != root and root not in target.parents:
                raise ConfigError(
                    _("the outbox path {path} leads outside the workspace ({target})").format(
                        path=repr(value), target=target
                    ),
                    file=ws.config_file,
                    line=locate_key(text, [table, name, "path"]),
                    field=f"{table}.{name}.path",
                    hint=_('use a folder inside the workspace, e.g. path = "outbox"'),
                )
