"""Segmentation as one relational plan: metrics, rules and assignment in one SQL query.

:func:`build_plan` compiles a rule set into a dialect-neutral sqlglot tree over the
canonical ``contacts``, ``orders`` and ``events`` relations; :meth:`Plan.sql` prints
it for DuckDB, PostgreSQL or a warehouse; :func:`segment_relational` runs it on an
embedded DuckDB over frames, Arrow tables or Parquet/CSV scans. The pandas engine
(segmerge.metrics.compute + segmerge.rules) is the oracle its results are tested
against, contact by contact.
"""

from __future__ import annotations

from segmerge.relational.dialects import DIALECTS, UnsupportedDialect
from segmerge.relational.duckdb_exec import segment_relational
from segmerge.relational.plan import Plan, build_plan

__all__ = ["DIALECTS", "Plan", "UnsupportedDialect", "build_plan", "segment_relational"]
