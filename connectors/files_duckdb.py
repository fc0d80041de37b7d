"""The `files` source as a DuckDB database: Parquet scanned where it lies, only what the plan reads.

Why: the pandas pull read every column of every file (10 M unique order ids no rule
reads), typed them, then computed. DuckDB scanning the files lazily runs the
engine's plan (segmerge/segment/in_database.py) with projection pushdown, so unused
columns are never read. It is used only where its answer is provably the pandas
pull's, decided per source (:func:`decide`):

- every file is Parquet, without a preset (their exports are CSV), glob notes, unused
  `columns`, numbered parts or an events file, with the required columns, an orders
  `contact_id` and `order_id`, and types files_duckdb_columns maps one to one;
- cheap aggregate checks in DuckDB find nothing the pandas path would refuse or read
  otherwise (an empty id or instant, text to strip, a duplicate contact id, a wall
  time the clock skipped…); more orders of nobody than the engine accepts, found by
  the plan's own scan (files_duckdb_source.DuckdbFiles.orders_met), sends the source
  back to the pull.

Anything else leaves the source a pandas pull, whose messages name the file, line
and field: no row is dropped and no message changes. ``engine = "duckdb"`` refuses
such files (exit 2, the reason), ``engine = "pandas"`` never tries.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segmerge.ports import ConfigError, _, number, text_literal
from segmerge.ports import quote_name as quote

from .files_duckdb_columns import Column, Unsupported, column, not_text
from .files_read import PARQUET_SUFFIXES, fold, header_names
from .files_tables import FilesSettings, Plan, Role

#: the engine's share of orders naming no contact before a source is an error (order_links)
UNMATCHED_LIMIT = 0.01
#: a statement after which the process holds this many more bytes than before it, its
#: own rows aside, closes its connection (see Connection): a new one costs ~35 ms of CPU,
#: little next to what such a statement did
RELEASE_GROWTH = 64 * 2**20
#: where the process's size cannot be read (not Linux): a statement running this long
#: (seconds, wall time) closes its connection
RELEASE_AFTER = 0.2
#: under the workspace's state folder, where DuckDB spills what does not fit in memory
TEMP_FOLDER = Path(".segmerge") / "duckdb"


class NotEligible(Exception):
    """Why DuckDB does not read these files as the pandas pull does (a sentence)."""


@dataclass
class Scan:
    """One file as a canonical relation: its columns' SQL over ``read_parquet``."""

    role: Role
    path: Path
    columns: list[Column]

    def source(self) -> str:
        return f"read_parquet({text_literal(str(self.path))})"

    def relation(self) -> str:
        cols = ", ".join(f"{c.expr} AS {quote(c.name)}" for c in self.columns)
        return f"(SELECT {cols} FROM {self.source()} AS file)"


def memory_default() -> str:
    """Half the machine's memory: DuckDB's own default (80 %) leaves too little to the
    rest, and a much lower one makes the plan spill its hash tables to disk, trading a
    little memory for much more time (`memory_limit` in the source sets it)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GiB"
    return f"{max(total // 2 // 2**20, 256)}MiB"


def connect(root: Path, memory_limit: str | None, threads: int | None, temp: str | None) -> Any:
    """One in-process DuckDB for the source, in UTC (the plan writes every zone it means).

    Each join is built on the side written on the right: the plan joins the contacts
    to their order aggregates (``c LEFT JOIN o``), which DuckDB otherwise turned around
    to hash the contacts, every column they carry, and probe with the aggregates. So
    the contacts stream through in the file's order (no reordering after: 0.8 s of CPU
    on a million contacts) and the plan's peak was 495 -> 407 MiB on 1 M / 10 M."""
    import duckdb

    con = duckdb.connect(config={"preserve_insertion_order": True})
    con.execute("SET disabled_optimizers = 'build_side_probe_side'")
    folder = Path(temp).expanduser() if temp else TEMP_FOLDER
    folder = folder if folder.is_absolute() else root / folder
    if not temp and not folder.parent.is_dir():  # no state folder yet: none is made for this
        folder = Path(tempfile.gettempdir()) / f"segmerge-duckdb-{os.getuid()}"
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = {text_literal(memory_limit or memory_default())}")
    con.execute(f"SET temp_directory = {text_literal(str(folder))}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


class Connection:
    """The source's DuckDB connection, opened when a statement needs one.

    A statement that grew the process (the checks, the plan, an anti-join's hash
    table) closes it once its rows are Arrow's: DuckDB's allocator keeps what the
    statement's hash tables used until the database closes (~300 MiB after the plan on a
    million contacts), memory the next statement, the rows' typing and their writing
    would add to. The growth is measured: a wall time, on a busy machine, closed after
    light statements too (a distinct() column's values, the contacts' order). What
    :func:`decide` found is SQL text over the files, tied to no connection: the next
    statement opens a new one.
    """

    def __init__(self, root: Path, settings: FilesSettings) -> None:
        self.root, self.settings = root, settings
        self.con: Any = None

    def get(self) -> Any:
        if self.con is None:
            s = self.settings
            self.con = connect(self.root, s.memory_limit, s.threads, s.temp_directory)
        return self.con

    def rows(self, sql: str) -> Any:
        """The statement's rows, as an Arrow table."""
        con = self.get()
        before, start = resident_bytes(), time.perf_counter()
        got = con.sql(sql).to_arrow_table()
        after = resident_bytes()
        if before is None or after is None:
            held = time.perf_counter() - start >= RELEASE_AFTER
        else:
            held = after - before - got.nbytes >= RELEASE_GROWTH
        if held:
            self.close()
        return got

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
        self.con = None


def resident_bytes() -> int | None:
    """The process's resident memory (Linux's /proc), None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _kind_reason(plans: dict[Role, Plan], preset: str | None) -> None:
    """What makes these files pandas-only before any is opened."""
    if preset is not None:
        raise NotEligible(_("a preset's exports are CSV files, read by pandas"))
    if plans["orders"].path is None:
        raise NotEligible(_("there is no orders file"))
    if plans["events"].path is not None:
        raise NotEligible(_("an events file is read by pandas"))
    for role, plan in plans.items():
        if plan.path is None:
            continue
        if plan.path.suffix.lower() not in PARQUET_SUFFIXES:
            said = _("{file} is not a Parquet file")
            raise NotEligible(said.format(file=plan.path.name))
        if plan.notes or plan.parts:
            said = _("the {role} file is chosen among several by a glob")
            raise NotEligible(said.format(role=role))


def _scan(plan: Plan, tz: str, canonical: tuple[str, ...], top: set[str]) -> Scan:
    """The file's columns named and typed as the pandas pull names and types them."""
    import pyarrow.parquet as pq

    assert plan.path is not None
    try:
        schema = pq.read_schema(plan.path)
    except Exception as exc:  # pyarrow raises many kinds; the pandas pull names it
        raise NotEligible(str(exc)) from None
    headers = [str(n) for n in schema.names]
    folded = {fold(h) for h in headers}
    top.difference_update({k for k in top if fold(k) in folded})
    if any(fold(k) not in folded for k in plan.own_columns):
        raise NotEligible(
            _("`columns` names a header the {role} file lacks").format(role=plan.role)
        )
    names = header_names(headers, plan.columns, canonical)
    names = [n or f"column_{p}" for p, n in enumerate(names, start=1)]  # as files.py names them
    if len(set(names)) < len(names) or len(set(headers)) < len(headers):
        raise NotEligible(
            _("two columns of the {role} file read as one name").format(role=plan.role)
        )
    required = {
        # pandas gives a missing e-mail or consent column a default the rules then read
        # (no consent, no address); the plan would refuse the rule set instead
        "contacts": ("contact_id", "email", "subscribed"),
        "orders": ("contact_id", "order_id", "ordered_at", "amount"),
    }[plan.role]
    missing = [n for n in required if n not in names]
    if missing:
        said = _("the {role} file has no {names} column")
        raise NotEligible(said.format(role=plan.role, names=", ".join(missing)))
    if plan.role == "orders" and "email" in names:
        raise NotEligible(_("orders may link to contacts by e-mail"))
    columns = []
    for header, name in zip(headers, names, strict=True):
        try:
            columns.append(column(plan.role, name, header, schema.field(header).type, tz))
        except Unsupported as exc:
            said = _("the column {header} ({kind}) of the {role} file")
            raise NotEligible(said.format(header=repr(header), kind=exc, role=plan.role)) from None
    return Scan(plan.role, plan.path, columns)


def _aggregates(con: Any, scan: Scan, extra: dict[str, str], join: str = "") -> dict[str, Any]:
    """Every check and probe of one file in one scan (only the columns they name); a
    column ``by_value`` is checked on its distinct values, in a scan of its own."""
    sql: dict[str, str] = dict(extra)
    for i, c in enumerate(scan.columns):
        wanted = {f"check {i} {k}": f"count_if({v})" for k, v in c.checks.items()}
        wanted.update({f"probe {i} {k}": v for k, v in c.probes.items()})
        for key, expr in wanted.items():
            if c.by_value:
                values = f"SELECT DISTINCT {quote(c.header)} FROM {scan.source()}"
                expr = f"(SELECT {expr} FROM ({values}))"
            sql[key] = expr
    if not sql:
        return {}
    keys = list(sql)
    select = ", ".join(f"{expr} AS a{n}" for n, expr in enumerate(sql.values()))
    row = con.execute(f"SELECT {select} FROM {scan.source()} AS file {join}").fetchall()[0]
    return {k: v if isinstance(v, dict) else int(v or 0) for k, v in zip(keys, row, strict=True)}


def count_unmatched(con: Any, decided: Decided) -> int:
    """How many orders name no contact, in a statement of its own: for a command that
    runs no plan (`validate`, `report`'s counts); the plan counts them in its own scan.

    Counted on the orders' distinct contact ids, each once with its number of orders:
    joining the ~1 M ids of 10 M orders to the contacts, instead of every order, cut
    the count from 3.2 to 1.8 s of CPU."""
    orders, contacts = decided.scans["orders"], decided.scans["contacts"]
    owner = next(c for c in orders.columns if c.name == "contact_id")
    key = quote(owner.header)
    ids = next(c.expr for c in contacts.columns if c.name == "contact_id")
    grouped = f"SELECT {key}, count(*) AS segmerge_n FROM {orders.source()} GROUP BY {key}"
    known = f"SELECT {ids} AS segmerge_known FROM {contacts.source()}"  # ids: unique
    join = f"LEFT JOIN ({known}) AS k ON k.segmerge_known = {owner.expr}"
    sql = f"SELECT coalesce(sum(g.segmerge_n), 0) FROM ({grouped}) AS g {join}"
    row = con.execute(f"{sql} WHERE k.segmerge_known IS NULL").fetchall()[0]
    return int(row[0] or 0)


def judge_unmatched(total: int, unmatched: int) -> None:
    """Too many orders of nobody: the pull refuses them, naming the file (NotEligible)."""
    if total and unmatched / total > UNMATCHED_LIMIT:
        raise NotEligible(_("more than 1 % of the orders name no contact"))  # pull's message


def _proven_by_statistics(con: Any, scan: Scan, name: str) -> None:
    """Drop the checks of a column no plan reads (the order number: only an empty one
    matters, as pandas refuses it) when the file's own statistics prove them void:
    no null in any row group, and, for text, every value starts with a printable ASCII
    character (so none is empty or strips to empty). The column is then never read."""
    col = next((c for c in scan.columns if c.name == name), None)
    if col is None:
        return
    rows = con.execute(
        "SELECT stats_null_count, stats_min_value, stats_max_value "
        f"FROM parquet_metadata({text_literal(str(scan.path))}) WHERE path_in_schema = ?",
        [col.header],
    ).fetchall()

    def printable(v: object) -> bool:
        return isinstance(v, str) and v != "" and "!" <= v[0] <= "~"

    text = col.kind == "text"
    if rows and all(
        n == 0 and (not text or (printable(lo) and isinstance(hi, str) and hi[:1] <= "~"))
        for n, lo, hi in rows
    ):
        col.checks = {}


def _judge(scan: Scan, answers: dict[str, int]) -> None:
    for i, c in enumerate(scan.columns):
        for label in c.checks:
            n = answers.get(f"check {i} {label}", 0)
            if n:
                said = _("{file}, column {header}: {n} rows hold {what}")
                raise NotEligible(
                    said.format(file=scan.path.name, header=repr(c.header), n=number(n), what=label)
                )
        probes = {k.split(" ", 2)[2]: v for k, v in answers.items() if k.startswith(f"probe {i} ")}
        if c.kind == "text" and c.probes and not_text(probes):
            said = _("{file}, column {header}: values pandas reads as numbers or dates")
            raise NotEligible(said.format(file=scan.path.name, header=repr(c.header)))
        c.settle(probes)


#: (orders, orders naming no contact or None before they are counted, orders per distinct
#: status or None without a status column): what segmerge.ports.Source.order_counts gives
OrderCounts = tuple[int, int | None, list[tuple[object, int]] | None]


@dataclass
class Decided:
    """Each table's file as DuckDB reads it, and the orders' counts the checks' scan made."""

    scans: dict[Role, Scan]
    order_counts: OrderCounts


def decide(
    con: Any,
    plans: dict[Role, Plan],
    settings: FilesSettings,
    tz: str,
    canonical: dict[str, tuple[str, ...]],
) -> Decided:
    """Each table's DuckDB relation and the orders' counts, or :class:`NotEligible` saying
    why pandas reads them (``tz``: the workspace's zone, ``canonical``: each role's names)."""
    _kind_reason(plans, settings.preset)
    top = set(settings.columns)
    scans = {
        role: _scan(plan, tz, canonical[role], top)
        for role, plan in plans.items()
        if plan.path is not None
    }
    if top:
        raise NotEligible(_("`columns` names a header no file has"))
    contacts, orders = scans["contacts"], scans["orders"]
    ids = next(c.expr for c in contacts.columns if c.name == "contact_id")
    # the contacts' checks on a second connection, beside the orders' (one Parquet row
    # group is read by one thread): their verdict is still given first
    with ThreadPoolExecutor(1, thread_name_prefix="segmerge-checks") as pool:
        side = con.cursor()
        side.execute("SET TimeZone = 'UTC'")
        duplicates = {"duplicates": f"count(*) - count(DISTINCT {ids})"}
        first = pool.submit(_aggregates, side, contacts, duplicates)
        try:
            counts = _orders_checks(con, orders)
        except Exception as exc:  # the contacts' verdict comes first, then this
            failed: Exception | None = exc
        else:
            failed = None
        try:
            answers = first.result()
        finally:
            side.close()
    if answers.get("duplicates"):
        raise NotEligible(_("the contacts file has duplicate ids"))
    _judge(contacts, answers)
    if failed is not None:
        raise failed
    return Decided(scans, counts)


def _orders_checks(con: Any, orders: Scan) -> OrderCounts:
    """The orders' checks and counts (see :func:`decide`); NotEligible when one fails.

    One scan of the orders: their checks and how many have each status (the engine's
    order rules need those counts: no scan of their own). The orders naming no contact
    are left to the plan's own scan (None here: see FilesSource.orders_met), or to
    :func:`count_unmatched` for a command that runs none. Their contact ids are checked
    on every order: an id equal to a contact's, checked already, passes as the
    contact's did, so the counts are those of the orders of nobody alone."""
    _proven_by_statistics(con, orders, "order_id")
    counts = {"total": "count(*)"}
    status = next((c for c in orders.columns if c.name == "status"), None)
    if status is not None:  # histogram leaves NULL out: counted apart
        counts.update(statuses=f"histogram({status.expr})", none=f"count_if({status.expr} IS NULL)")
    answers = _aggregates(con, orders, counts)
    _judge(orders, answers)
    statuses: list[tuple[object, int]] | None = None
    if status is not None:
        statuses = [(k, int(n)) for k, n in (answers["statuses"] or {}).items() if n]
        statuses += [(None, answers["none"])] if answers["none"] else []
    return answers["total"], None, statuses


def refuse(reason: str, config_file: Path, source: str) -> ConfigError:
    """``engine = "duckdb"`` on files DuckDB does not read as pandas does."""
    return ConfigError(
        _('engine = "duckdb": {reason}').format(reason=reason),
        file=config_file,
        field=f"{source}.engine",
        hint=_('remove `engine` (or set "auto") to read these files with pandas'),
    )
