"""One Parquet column as DuckDB SQL that gives exactly what the pandas reader gives.

The pandas path (files_read.read_parquet, files_columns.parse_column, files_values)
strips text, turns an empty cell into a missing one, lowers e-mails, splits tags,
reads yes/no words, puts a wall time into the workspace's zone (a repeated autumn
hour as summer time), refuses an empty id or instant, and infers an attribute's
type from its values. Each column here gets the SQL expression that does the same
on the values where DuckDB provably agrees, and the checks (a boolean per row, its
count must be 0) that find every value where it might not: on any, the source
stays a pandas pull, whose message names the file, line and field. A type this
module does not know makes the file ineligible (:class:`Unsupported`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from segmerge.ports import _, text_literal
from segmerge.ports import quote_name as quote

#: leading or trailing characters Arrow's utf8_trim_whitespace may strip (a superset:
#: a false alarm only costs the pandas pull)
_EDGE = r"[\s\p{Z}\p{Cc}\x{85}\x{feff}]"
STRIP = f"'^{_EDGE}|{_EDGE}$'"
#: whitespace Python's `\s` (files_values.tag_text) matches and RE2's does not
_PY_SPACE = r"'[\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}\x{feff}]'"
#: files_values' yes/no words (contacts' `subscribed`)
TRUE = ("oui", "yes", "true", "vrai", "1", "x", "y", "o")
FALSE = ("non", "no", "false", "faux", "0", "n")
#: files_values.infer: an attribute whose present values all look like these is not text
_ATTR_INT = r"'^-?\d{1,18}$'"
_ATTR_DECIMAL = "'^-?(?:\\d{1,3}(?:[ \\x{a0}\\x{202f}]\\d{3})+|\\d+)(?:[.,]\\d+)?(?: ?€)?$'"
_DATE_LIKE = r"'^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}'"
_LEADING_ZERO = r"'^-?0\d'"


class Unsupported(Exception):
    """A column whose type or role the DuckDB reading does not reproduce: the file stays pandas."""


@dataclass
class Column:
    """One file column: its canonical name, its value as SQL, and its checks (label -> a
    condition true on a row pandas would read otherwise, or refuse)."""

    header: str
    name: str
    expr: str
    checks: dict[str, str] = field(default_factory=dict)
    #: aggregates whose answers decide the value's SQL (see :meth:`settle`)
    probes: dict[str, str] = field(default_factory=dict)
    kind: str = ""
    #: checked on the column's distinct values (a status, a category: few, in many rows)
    by_value: bool = False

    def settle(self, answers: dict[str, int]) -> None:
        """An int64 attribute with a missing value is float64 in pandas (NaN): DOUBLE here."""
        if self.kind == "int64" and answers.get("nulls", 0):
            self.expr = f"CAST({self.expr} AS DOUBLE)"


def _kind(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int64" if t == pa.int64() else "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_timestamp(t):
        return "instant" if t.tz else "wall"
    if pa.types.is_date(t):
        return "wall"
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_string(t.value_type):
        return "list"
    raise Unsupported(str(t))


def _instant(c: str, t: pa.DataType, tz: str, required: bool) -> tuple[str, dict[str, str]]:
    """A timestamp or date as a UTC instant; a wall time is read in ``tz`` as
    files_dates.localize does: a repeated hour as the earlier (summer) instant; a skipped
    one is a check (pandas moves it forward to the transition, which DuckDB cannot name)."""
    checks: dict[str, str] = {}
    if required:
        checks[_("an empty date")] = f"{c} IS NULL"
    if pa.types.is_timestamp(t) and t.unit == "ns":
        checks[_("a date finer than a microsecond")] = f"epoch_ns({c}) % 1000 <> 0"
    if pa.types.is_timestamp(t) and t.tz:
        value = f"CAST({c} AS TIMESTAMPTZ)"
        checks[_("a date out of 1678-2261")] = (
            f"{c} < TIMESTAMPTZ '1678-01-01 00:00:00+00' "
            f"OR {c} >= TIMESTAMPTZ '2262-01-01 00:00:00+00'"
        )
        return value, checks
    zone = text_literal(tz)
    wall = f"CAST({c} AS TIMESTAMP)"
    later = f"timezone({zone}, {wall})"
    before = f"({later} - INTERVAL 3 HOUR)"
    offset = f"(timezone({zone}, {before}) - timezone('UTC', {before}))"
    earlier = f"timezone('UTC', {wall} - {offset})"
    value = (
        f"(CASE WHEN {earlier} < {later} AND timezone({zone}, {earlier}) = {wall} "
        f"THEN {earlier} ELSE {later} END)"
    )
    checks[_("a wall time the clock skipped")] = f"timezone({zone}, {later}) <> {wall}"
    checks[_("a date out of 1678-2261")] = (
        f"{wall} < TIMESTAMP '1678-01-01' OR {wall} >= TIMESTAMP '2262-01-01'"
    )
    return value, checks


def _text(c: str) -> dict[str, str]:
    """Text pandas would strip (an empty cell is missing: NULLIF in the value).

    The regular expression runs only on values whose first or last character is not
    printable ASCII (``ascii`` gives the first one's code point): every character it
    looks for is such a one, and a million e-mails, names and cities are not: the
    contacts' checks took 1.3 s of CPU with it on every value."""
    edges = f"ascii({c}) NOT BETWEEN 33 AND 126 OR ascii({c}[-1]) NOT BETWEEN 33 AND 126"
    return {
        _("text with spaces around it"): (
            f"CASE WHEN {edges} THEN regexp_matches({c}, {STRIP}) ELSE false END"
        )
    }


def _non_ascii(c: str) -> str:
    """A character beyond ASCII: more UTF-8 bytes than characters (a regular
    expression did the same at four times the cost)."""
    return f"strlen({c}) <> length({c})"


def _looks_numeric(c: str, pattern: str) -> str:
    """``pattern`` (each starts with a digit or a minus) on the values that start so."""
    found = f"regexp_matches({c}, {pattern})"
    return f"count_if(CASE WHEN ascii({c}) BETWEEN 45 AND 57 THEN {found} ELSE false END)"


def _blank(c: str) -> str:
    return f"NULLIF({c}, '')"


def _identifier(c: str, kind: str) -> tuple[str, dict[str, str]]:
    """An id as the text written (an integer's digits); an empty one is a check."""
    if kind not in ("text", "int", "int64"):
        raise Unsupported(kind)
    checks = {_("an empty id"): f"{c} IS NULL"}
    if kind == "text":
        checks[_("an empty id")] = f"{c} IS NULL OR {c} = ''"
        checks.update(_text(c))
    return f"CAST({c} AS VARCHAR)", checks


def _tags(c: str, kind: str) -> tuple[str, dict[str, str]]:
    """files_values.tags: `vip | fidèle` -> ['vip', 'fidèle'] (`,` separates too: a
    Parquet file has no delimiter), nothing -> []."""
    if kind == "list":
        return f"coalesce({c}, [])", {}
    if kind != "text":
        raise Unsupported(kind)
    joined = f"regexp_replace(regexp_replace({c}, '\\s*[|,]\\s*', '|', 'g'), '\\|+', '|', 'g')"
    cleaned = f"trim({joined}, '|')"
    value = (
        f"(CASE WHEN {c} IS NULL OR {cleaned} = '' THEN CAST([] AS VARCHAR[]) "
        f"ELSE string_split({cleaned}, '|') END)"
    )
    checks = _text(c)
    checks[_("a tag with a space pandas reads otherwise")] = f"regexp_matches({c}, {_PY_SPACE})"
    return value, checks


def _subscribed(c: str, kind: str) -> tuple[str, dict[str, str]]:
    if kind == "bool":
        return f"coalesce({c}, false)", {}
    if kind in ("int", "int64", "float"):
        return f"coalesce({c} = 1, false)", {_("a value not 1 or 0"): f"{c} NOT IN (0, 1)"}
    if kind != "text":
        raise Unsupported(kind)
    yes = ", ".join(text_literal(w) for w in TRUE)
    known = ", ".join(text_literal(w) for w in TRUE + FALSE)
    checks = _text(c)
    checks[_("a word other than oui/non, yes/no…")] = (
        f"{_non_ascii(c)} OR lower({_blank(c)}) NOT IN ({known})"
    )
    return f"coalesce(lower({c}) IN ({yes}), false)", checks


def _attribute(c: str, kind: str, t: pa.DataType, tz: str) -> Column:
    """files_values.infer: text stays text unless every value looks like a number or a
    date (then a check: pandas types it); numbers, booleans and instants as stored."""
    if kind == "text":
        present = f"{_blank(c)} IS NOT NULL"
        probes = {
            "present": f"count_if({present})",
            "ints": _looks_numeric(c, _ATTR_INT),
            "decimals": _looks_numeric(c, _ATTR_DECIMAL),
            "dates": _looks_numeric(c, _DATE_LIKE),
            "zeros": _looks_numeric(c, _LEADING_ZERO),
        }
        return Column("", "", _blank(c), _text(c), probes, kind)
    if kind in ("instant", "wall"):
        value, checks = _instant(c, t, tz, required=False)
        return Column("", "", value, checks, kind=kind)
    if kind == "bool":  # a missing value makes pandas' column object, of another kind
        return Column("", "", c, {_("a missing yes/no value"): f"{c} IS NULL"}, kind=kind)
    if kind == "float":
        return Column("", "", c, {_("NaN (not a number)"): f"isnan({c})"}, kind=kind)
    if kind == "list":
        raise Unsupported(kind)
    return Column("", "", c, {}, {"nulls": f"count_if({c} IS NULL)"}, kind=kind)


def not_text(answers: dict[str, int]) -> bool:
    """files_values.infer would type these values (integers, decimals, dates)."""
    present = answers.get("present", 0)
    if not present:
        return False
    if answers.get("dates") == present:
        return True
    return not answers.get("zeros") and present in (answers.get("ints"), answers.get("decimals"))


def column(role: str, name: str, header: str, t: pa.DataType, tz: str) -> Column:
    """The column ``header`` (read as ``name``) of a ``role`` file, typed ``t``."""
    c = quote(header)
    kind = _kind(t)
    checks: dict[str, str]
    if name == "contact_id" or (role, name) in (("orders", "order_id"), ("events", "campaign_id")):
        value, checks = _identifier(c, kind)
    elif name == "email":
        if kind != "text":
            raise Unsupported(kind)
        checks = _text(c)
        checks[_("a non-ASCII e-mail")] = _non_ascii(c)
        value = f"lower({_blank(c)})"
    elif role == "contacts" and name in ("first_name", "last_name"):
        if kind != "text":
            raise Unsupported(kind)
        value, checks = _blank(c), _text(c)
    elif role == "orders" and name in ("category", "status"):
        if kind != "text":
            raise Unsupported(kind)
        return Column(header, name, _blank(c), _text(c), kind=kind, by_value=True)
    elif role == "contacts" and name == "subscribed":
        value, checks = _subscribed(c, kind)
    elif role == "contacts" and name in ("created_at", "updated_at"):
        if kind not in ("instant", "wall"):
            raise Unsupported(kind)
        value, checks = _instant(c, t, tz, required=False)
    elif role == "contacts" and name == "tags":
        value, checks = _tags(c, kind)
    elif role == "orders" and name == "ordered_at" or role == "events" and name == "at":
        if kind not in ("instant", "wall"):
            raise Unsupported(kind)
        value, checks = _instant(c, t, tz, required=True)
    elif role == "orders" and name in ("amount", "rating"):
        if kind not in ("int", "int64", "float"):
            raise Unsupported(kind)
        value = f"CAST({c} AS DOUBLE)"
        checks = {_("NaN (not a number)"): f"isnan({value})"}
        if name == "amount":
            checks[_("an empty amount")] = f"{c} IS NULL"
        else:
            checks[_("a rating outside 1-5")] = f"{c} < 1 OR {c} > 5"
    elif role == "events":
        raise Unsupported(name)  # event words and consent: the pandas pull
    else:
        col = _attribute(c, kind, t, tz)
        col.header, col.name, col.by_value = header, name, role == "orders"
        return col
    return Column(header, name, value, checks, kind=kind)
