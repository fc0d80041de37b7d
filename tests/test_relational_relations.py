"""A source's relation as its user wrote it: a table, a SELECT, or a SELECT in parentheses.

A parenthesised SELECT ending in a call or an IN list (`read_parquet('…'))`,
`… IN (1, 2))`) once lost its closing parentheses to a blind strip, and the whole
segmentation failed on SQL the user had written correctly.
"""

import duckdb
import pytest

from segmerge.relational.dialects import _relation

CASES = [
    "(SELECT x FROM (VALUES (1), (2), (3)) AS t(x) WHERE x IN (1, 2))",
    "SELECT x FROM (VALUES (1), (2), (3)) AS t(x) WHERE x IN (1, 2)",
    "((SELECT x FROM (VALUES (1), (2), (3)) AS t(x) WHERE x IN (1, 2)))",
]


@pytest.mark.parametrize("text", CASES)
def test_a_select_with_or_without_parentheses_reads_the_same_rows(text):
    relation = _relation(text, "contacts", "duckdb").sql("duckdb")
    rows = duckdb.sql(f"SELECT x FROM {relation} ORDER BY x").fetchall()
    assert rows == [(1,), (2,)]


def test_a_table_name_stays_a_table():
    assert _relation("shop.contacts", "contacts", "postgres").sql("postgres") == "shop.contacts"
