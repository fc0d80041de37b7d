"""The Source / Destination interfaces: what the engine and a connector agree on.

The pipeline speaks only these two interfaces, so the engine never imports a
vendor module. Every optional feature a destination may offer is declared here
with its default (never looked up with ``getattr``), so a plugin sees in one
place what it may override. Connectors are found by ports/registry.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from segmerge.errors import ConfigError
from segmerge.ports.schema import Tables

if TYPE_CHECKING:
    import pyarrow as pa

ActionKind = Literal["send", "tag", "untag", "add_to_list", "remove_from_list", "create_campaign"]
#: done / failed (with the reason) / retry (back to planned: a later run tries again) /
#: uncertain (it may or may not have happened, e.g. an SMTP connection lost after the
#: message was handed over: never redone without `run --resend-uncertain`)
OutcomeStatus = Literal["done", "failed", "retry", "uncertain"]


@dataclass
class ConnectorContext:
    """What a connector instance is given: its name, settings and the workspace around it."""

    name: str
    settings: dict[str, Any]
    root: Path
    config_file: Path
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Paris"))
    locale: str = "fr_FR"
    secret: Callable[[], str | None] = lambda: None
    #: where the secret comes from ("keyring", "environment (SEGMERGE_SHOP_TOKEN)"...),
    #: for messages about a refused credential; never the secret itself
    secret_origin: Callable[[], str | None] = lambda: None
    #: each stream's cursor from its previous complete pull ("contacts", "orders",
    #: "events"); empty on a full pull. A source resumes each stream from its own one.
    cursors: dict[str, str] = field(default_factory=dict)
    #: a source calls this as soon as one stream is completely pulled, with its rows and
    #: its cursor, so that progress is kept even if a later stream or the push fails
    stream_done: Callable[[str, Any, str | None], None] = lambda stream, rows, cursor: None

    def path(self, value: str | Path) -> Path:
        """Settings paths are relative to the workspace, as DESIGN.md says."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p


@dataclass(frozen=True)
class Action:
    """One thing to do at a destination, keyed so that it is never done twice.

    ``key`` is the ledger's idempotency key (campaign, run, contact, action);
    a destination that can (a file name, a platform's idempotency header)
    uses it to make a repeat harmless.
    """

    key: str
    kind: ActionKind
    contact_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    message: Message | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one action: its status, a sentence for the user (``detail``, shown
    by `history`, never parsed) and the platform's id of what the action made or
    touched (the draft campaign, the list), which the engine keeps to match what the
    platform later reports (opens and clicks of that campaign id)."""

    key: str
    status: OutcomeStatus
    detail: str = ""
    platform_id: str | None = None


class ConnectorSettings(BaseModel):
    """Base for a connector's settings model: unknown keys are typos, so they are errors."""

    model_config = ConfigDict(extra="forbid")


class Connector:
    """Base of every connector: subclasses set ``Settings`` and add Source and/or Destination."""

    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    description: ClassVar[str] = ""
    needs_secret: ClassVar[bool] = False

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        try:
            self.settings = self.Settings.model_validate(ctx.settings)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            from segmerge.workspace.positions import locate_setting  # lazy: only on a bad setting

            keys = [str(p) for p in err["loc"]]
            raise ConfigError(
                err["msg"],
                file=ctx.config_file,
                line=locate_setting(ctx.config_file, ctx.name, keys),
                field=f"{ctx.name}.{loc}" if loc else ctx.name,
            ) from None

    def check(self) -> list[str]:
        """Check settings and credentials cheaply; raise a SegmergeError or return notes."""
        return []

    def close(self) -> None:
        """Release connections; called once at the end of a run."""


class PullInstead(Exception):
    """Raised by a source with a :attr:`Source.dialect` that, seeing its orders' counts,
    can no longer vouch for the plan's answer (too many orders of nobody: the pull says
    why, naming the file): its dialect is None from then on, the engine pulls it."""


class Source(Connector):
    @property
    def dialect(self) -> str | None:
        """The SQL dialect (sqlglot's name: "postgres", "duckdb", "bigquery"…) of a source
        whose data lives in a database that runs the engine's plan itself; None (most
        sources) when the engine pulls the tables and computes where it runs. A property:
        a source may decide per instance (the files source is "duckdb" only for files
        DuckDB reads exactly as its pandas pull does)."""
        return None

    def pull(self, since: str | None = None) -> Tables:
        """Yield the canonical tables; ``since`` is the cursor of the previous pull."""
        raise NotImplementedError

    def relations(self) -> dict[str, str]:
        """For a source with a :attr:`dialect`: each canonical stream it has
        (``contacts``, ``orders``, optionally ``events``) as a relation of that dialect
        (a table, a view or a parenthesised SELECT) with the canonical column names, so
        the engine's plan reads them where they are instead of pulling them."""
        raise NotImplementedError

    def execute(self, sql: str) -> pa.Table:
        """For a source with a :attr:`dialect`: run one statement of the engine's plan
        (written in that dialect) in the source's database and return its rows."""
        raise NotImplementedError

    def order_counts(
        self, in_plan: bool = False
    ) -> tuple[int, int | None, list[tuple[object, int]] | None] | None:
        """Optional, for a source with a :attr:`dialect`: the counts the engine's order
        rules need, when the source already made them in a scan of the orders it needed
        anyway (the files source's checks read every order once): (orders, orders naming
        no contact, orders per distinct status with None for no status; None instead of
        the list when the orders have no status column). None, the default: the engine
        counts them with a statement of its own, one more pass over every order.
        ``in_plan``: the engine runs its plan next; the source may then leave the orders
        naming no contact as None, counted by the plan's own scan of the orders and
        given back to :meth:`orders_met` (raises :class:`PullInstead`)."""
        return None

    def orders_met(self, met: int) -> tuple[int, int, list[tuple[object, int]] | None]:
        """For a source whose :meth:`order_counts` left the orders of nobody to the plan:
        ``met``, all the orders of the contacts the plan met, makes the counts, or raises
        :class:`PullInstead` when the plan's answer cannot stand."""
        raise NotImplementedError

    def unmatched_orders(self, limit: int) -> pa.Table | None:
        """Optional, for a source with a :attr:`dialect`: the first ``limit`` orders naming
        no contact (``order_id``, ``contact_id``) in the order its pull reads them, which
        the engine's warning names as the pull's would. None, the default: the engine
        asks the database for any ``limit`` of them (a table has no order)."""
        return None

    def origins(self) -> dict[str, str]:
        """Optional, for a source with a :attr:`dialect`: where each stream comes from as
        the user knows it (a file's path), for the engine's messages about that stream
        (orders naming no contact), which a pull's :attr:`Tables.origins` gives otherwise.
        Empty, the default: the messages name the source alone."""
        return {}

    def unsubscribe(self, contact_id: str, email: str | None) -> None:
        """Tell the platform a contact unsubscribed with the one-click link (``email`` is
        None when no address is known for them). Optional: the workspace's suppression
        list already protects the contact; a platform that is told stops mailing them too.
        Raise to have the call retried later."""
        raise NotImplementedError

    @classmethod
    def tells_unsubscribes(cls) -> bool:
        """Whether this connector implements :meth:`unsubscribe`."""
        return cls.unsubscribe is not Source.unsubscribe


class Destination(Connector):
    """Where a run's actions go. Besides :meth:`push`, everything here has a default a
    destination overrides only for a feature it has: :attr:`batch_size`,
    :attr:`concurrent_batches`, :meth:`wait_ready`, :meth:`prepare`, :meth:`merge_tag`,
    :meth:`lock_identity`. The engine reads them directly, so a typo in an override's
    name is a type error, not a silently ignored feature."""

    #: action kinds this destination understands
    accepts: ClassVar[frozenset[str]] = frozenset()
    #: True when redoing an action with the same key cannot duplicate it
    #: (an outbox file named by its key); a send to SMTP is not.
    idempotent: ClassVar[bool] = False
    #: the most actions one :meth:`push` call is given: a platform's bulk endpoint size
    #: times the calls a push makes; for a non-idempotent destination also the most
    #: actions a crash can leave uncertain. A class attribute, or an instance one set in
    #: ``__init__`` from the settings (the SMTP destination's ``batch_size``).
    batch_size: int = 100
    #: batches the pipeline may have in flight at once (see segmerge.run.push): more
    #: than 1 for a platform limited by concurrent connections, whose push is thread-safe
    concurrent_batches: int = 1

    def wait_ready(self, count: int) -> None:
        """Block until the destination may take the next ``count`` actions.

        Called before each batch is marked in flight, in the pushing thread (with
        :attr:`concurrent_batches` above 1, while earlier batches may still be in
        flight): a throttle (an hourly sending limit) waits here, so a process killed
        during the wait leaves nothing of that batch uncertain. A method with a default
        that does not wait, rather than an attribute that may be None: the engine calls
        it for every destination, one code path whether there is a throttle or not."""

    def prepare(self, actions: Sequence[Action]) -> None:
        """Get ready for ``actions`` while the ledger writes the run's plan.

        Called in a thread before any of them is marked in flight, so a round
        trip the push would otherwise wait for at its start (creating the tags a
        first run needs) is made while the engine is busy anyway. Best effort:
        it must be safe to repeat and may do nothing; what it could not do, push()
        does or reports. Never called on a dry run.
        """

    def merge_tag(self, column: str) -> str | None:
        """The platform's merge tag that fills a contact column in a draft campaign
        (``*|FNAME|*``), or None when it has none: a destination that takes drafts says
        which columns the platform itself can fill; the others stay undefined in a draft."""
        return None

    def lock_identity(self) -> str:
        """What this destination writes to: two runs whose destinations answer the same
        string push one after the other (see segmerge.ports.locks), never both at once.

        By default its connector, name and settings (a platform's account or list is in
        its settings; credentials never are). A connector writing to a file says which.
        """
        cls = type(self)
        body = json.dumps(self.settings.model_dump(mode="json"), sort_keys=True, default=str)
        return f"{cls.__module__}.{cls.__qualname__}:{self.name}:{body}"

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        """Do a batch of actions; return one outcome per action, in any order.

        Raise a ConnectorError only when nothing of this batch was done (the
        pipeline then puts the whole batch back to planned); once something
        was, return outcomes instead (`retry` for what was not attempted).
        """
        raise NotImplementedError
