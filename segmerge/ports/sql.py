"""SQL text for a value or a name, for connectors and the engine writing SQL by hand.

One rule each, kept in one place: a connector that builds a statement for its database
(the files source's DuckDB checks) and the engine's own hand-written statements (``kpi``'s
recipients as a VALUES list) quote alike, and a fix reaches both.
"""

from __future__ import annotations


def text_literal(value: str) -> str:
    """A standard SQL string literal: ``it's`` -> ``'it''s'`` (a quote doubled, nothing
    else escaped, as DuckDB and PostgreSQL read it with standard_conforming_strings)."""
    return "'" + value.replace("'", "''") + "'"


def quote_name(name: str) -> str:
    """A quoted identifier: any column name as written, a double quote in it doubled."""
    return '"' + name.replace('"', '""') + '"'
