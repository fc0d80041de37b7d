"""The segment-rule language: parse, check, evaluate, explain.

A rule set is loaded once (syntax errors point into the YAML file), checked
against the source's columns (unknown names fail before any run), then
evaluated column-wise on a frame of contacts and metrics. Matching means
"the condition is true": SQL three-valued logic, so a null never matches.
"""

from __future__ import annotations

from .ast import Node as Expr
from .columns import kinds_from_frame
from .evaluator import Evaluator, PandasEvaluator
from .explain import ConditionNode, SegmentExplanation, explain
from .parser import parse_expression
from .ruleset import Assignment, RuleSet, Segment, load_ruleset

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
