"""The segment-rule language: parse, check, evaluate, explain.

A rule set is loaded once (syntax errors point into the YAML file), checked
against the source's columns (unknown names fail before any run), then
evaluated column-wise on a frame of contacts and metrics. Matching means
"the condition is true": SQL three-valued logic, so a null never matches.

The language, in short (keywords are case-insensitive, ``#`` starts a comment):

- ``and``, ``or``, ``not`` (binding in that order, loosest first: ``not a and b``
  is ``(not a) and b``), parentheses; ``null and false`` is false, ``null or
  true`` is true, ``not null`` is null;
- ``== != < <= > >=`` on two numbers, two strings, two dates, or (``==``/``!=``)
  two conditions; anything compared with a null is null, and writing ``x ==
  null`` is refused (use ``x is null`` / ``x is not null``);
- ``x in [a, b]`` is ``x == a or x == b``; ``x not in [..]`` its negation;
  ``x in []`` is false; ``x between a and b`` includes both ends;
- ``tags contains 'vip'`` (a list holds that element), ``city contains 'ar'``
  (substring), ``city startswith 'Par'``: the right side is a quoted string;
- strings are exact everywhere: ``==``, ``in``, ``contains`` and ``startswith``
  are case- and accent-sensitive, and ``<`` compares by code point;
- ``+ - * /`` on numbers (division by zero is null); a date plus or minus a
  number moves by that many calendar days in the workspace time zone; a date
  minus a date is the number of calendar days between their local days;
- literals: numbers, ``'strings'`` or ``"strings"`` (backslash escapes the
  quote), ``true``, ``false``, ``null``, ``date('2026-01-31')`` (midnight in the
  workspace zone), ``today()`` (midnight starting the run's reference day);
- names: any contact column, the scalar metrics of :mod:`segmerge.metrics.catalog`,
  and its metric functions (``orders(days=90)``, ``orders(90, 30)``,
  ``distinct(category, days=365)``); a column whose name is a keyword or not an
  identifier is written between back-quotes: `` `in` ``;
- limits, each an exit-2 error at its line and column rather than a crash: a
  rule-set file is UTF-8 and at most 1 MB; operators nest at most 100 deep
  (parentheses add no level, and chains of ``and``/``or`` of any length are
  fine); dates lie between 1700 and 2200; metric windows span at most 36,500 days.

The SQL compiler (:mod:`segmerge.rules.sql`: ``DuckDBEvaluator``, ``compile_condition``)
is imported from its module, not from here: it brings sqlglot (~0.2 s), which only a
command that builds a query plan needs.
"""

from __future__ import annotations

from segmerge.rules.ast import Node as Expr
from segmerge.rules.columns import kinds_from_frame
from segmerge.rules.evaluator import Evaluator, PandasEvaluator
from segmerge.rules.explain import ConditionNode, SegmentExplanation, explain
from segmerge.rules.loading import load_ruleset
from segmerge.rules.parser import parse_expression
from segmerge.rules.ruleset import Assignment, RuleSet, Segment

__all__ = [
    "Assignment",
    "ConditionNode",
    "Evaluator",
    "Expr",
    "PandasEvaluator",
    "RuleSet",
    "Segment",
    "SegmentExplanation",
    "explain",
    "kinds_from_frame",
    "load_ruleset",
    "parse_expression",
]
