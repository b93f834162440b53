"""Committee rules: pure functions over probability arrays ``(M, N, K)``, fitted on validation only."""

from committee.rules.base import FitContext, Rule
from committee.rules.cascade import CascadeRule
from committee.rules.committee_rules import DEFAULT_RULE, EXPORTABLE_RULES, RULES, check_rules, combine, fit_rule

__all__ = [
    "DEFAULT_RULE",
    "EXPORTABLE_RULES",
    "RULES",
    "CascadeRule",
    "FitContext",
    "Rule",
    "check_rules",
    "combine",
    "fit_rule",
]
