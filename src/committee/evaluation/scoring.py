"""Evaluate a run from its saved probabilities only (no model is re-run): a :class:`RunResult`.

Committee rules are fitted on validation probabilities; the test split is only
ever scored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from committee.base.errors import CommitteeError, UsageError
from committee.evaluation.conformal import conformal_rows
from committee.evaluation.metrics import accuracy, diversity, evaluate_probs, mcnemar, paired_bootstrap_ci
from committee.evaluation.price import price_points
from committee.rules.base import FitContext
from committee.rules.cascade import (
    CascadeRule,
    check_budget,
    check_tolerance,
    exit_fractions,
    expected_cost,
    ms_per_1000,
    rule_rows,
    stage_names,
)
from committee.rules.committee_rules import RULES, check_rules, combine, fit_rule
from committee.store.records import (
    MEMBER_INFO_KEYS,
    CommitteeResult,
    Diversity,
    Gain,
    MemberArtifacts,
    MemberResult,
    RunResult,
    Scores,
)
from committee.store.run_dir import RunDir


def finished_artifacts(run: RunDir, labels_val: np.ndarray | None) -> list[MemberArtifacts]:
    """The run's finished members with their saved probabilities, checked against the labels."""
    if labels_val is None:
        raise CommitteeError(f"{run.path}: labels_val.npy missing; was training started?")
    names = run.finished_members()
    if not names:
        raise CommitteeError(f"{run.path}: no member has saved probabilities yet; run `committee train` first")
    members = [run.member(n) for n in names]
    for m in members:
        if len(m.probs_val) != len(labels_val):
            raise CommitteeError(
                f"{run.path}: member {m.name} has {len(m.probs_val)} validation rows for {len(labels_val)} labels"
            )
    return members


def gain_over(best: str, best_test: Scores, labels_test: np.ndarray, pred: np.ndarray, best_pred: np.ndarray) -> Gain:
    """A committee's test gain over the best member (chosen on validation), with its interval and McNemar."""
    test = mcnemar(labels_test, pred, best_pred)
    return Gain(
        best,
        accuracy(labels_test, pred) - best_test.accuracy,
        paired_bootstrap_ci(labels_test, pred, best_pred),
        test["a_only"],
        test["b_only"],
        test["p_value"],
    )


def run_diversity(
    names: list[str], member_results: dict[str, MemberResult], labels_test: np.ndarray, test_stack: np.ndarray
) -> Diversity:
    """How the members differ on test ``(M, N, K)``, and accuracy as they join one at a time (best first)."""
    member_preds = test_stack.argmax(axis=2)
    d = diversity(labels_test, test_stack)
    # Members added one at a time, best (on validation) first, averaged with the mean rule.
    order = sorted(names, key=lambda n: -member_results[n].val.accuracy)
    growth = [
        accuracy(labels_test, test_stack[[names.index(n) for n in order[:k]]].mean(axis=0).argmax(1))
        for k in range(1, len(order) + 1)
    ]
    return Diversity(
        names,
        d["disagreement"],
        d["error_correlation"],
        d["oracle_accuracy"],
        int(np.sum((member_preds != labels_test[None]).all(axis=0))),
        order,
        growth,
    )


def score_committee(
    rule: str,
    names: list[str],
    member_results: dict[str, MemberResult],
    best: str,
    val_stack: np.ndarray,
    labels_val: np.ndarray,
    test_stack: np.ndarray | None,
    labels_test: np.ndarray | None,
    scores,
    companions: dict[str, tuple[MemberResult, np.ndarray]] | None = None,
    context: FitContext | None = None,
    one_view: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> CommitteeResult:
    """Fit one rule on the validation stack ``(M, N_val, K)``, score it on both splits, and its gain over
    the best member on test, and over each companion model (``{name: (result, test predictions (N,))}``).
    ``context``: the members' measured costs and the cascade's target (default: the members' own costs);
    ``one_view``: the one-view probabilities of ``context.one_view``'s members on validation and test
    ``(V, N, K)`` (the cascade's cheap stages; other rules ignore them)."""
    infer = [member_results[n].infer_seconds_per_1000 for n in names]
    context = context or FitContext(costs=member_costs(member_results, names))
    is_cascade = isinstance(RULES[rule], CascadeRule)
    if not (is_cascade and one_view and len(context.one_view)):
        one_view, context = (None, None), dataclasses.replace(context, one_view=(), one_view_costs=None)
    fit_rows = np.concatenate([val_stack, one_view[0]]) if one_view[0] is not None else val_stack
    params = fit_rule(rule, fit_rows, labels_val, context)
    val_rows = rule_rows(params, val_stack, one_view[0], context.one_view)
    test_rows = rule_rows(params, test_stack, one_view[1], context.one_view) if test_stack is not None else None
    test_probs = combine(rule, params, test_rows) if test_rows is not None else None
    gain, vs_companions = None, {}
    if test_probs is not None:
        best_pred = test_stack[names.index(best)].argmax(1)
        gain = gain_over(best, member_results[best].test, labels_test, test_probs.argmax(1), best_pred)
        pred = test_probs.argmax(1)
        vs_companions = {n: gain_over(n, c.test, labels_test, pred, own) for n, (c, own) in (companions or {}).items()}
    routing = cascade_routing(params, names, val_rows, test_rows, labels_test) if is_cascade else None
    infer_total = sum(infer) if all(infer) else None
    if routing and infer_total is not None:  # what the cascade is expected to spend, from the members' costs
        infer_total = routing["expected_ms_per_1000"]["test" if test_stack is not None else "val"] / 1000
    return CommitteeResult(
        rule,
        RULES[rule].description,
        names,
        params,
        scores(labels_val, combine(rule, params, val_rows)),
        scores(labels_test, test_probs) if test_probs is not None else None,
        params=sum(member_results[n].params for n in names),
        train_seconds=sum(member_results[n].train_seconds for n in names),
        infer_seconds_per_1000=infer_total,
        vs_best_member=gain,
        vs_companions=vs_companions,
        routing=routing,
    )


def fit_saved(run: RunDir, rule: str, names: list[str], tolerance: float, budget: float | None) -> dict:
    """A rule's parameters fitted now on the saved validation probabilities of ``names`` (the fit
    :func:`evaluate_run` does, for a committee of other members than metrics.json's)."""
    context, views = fit_context(run, names, [run.member_info(n) for n in names], tolerance, budget, ("val",))
    val = run.member_probs(names, "val")
    if views is not None and isinstance(RULES[rule], CascadeRule):
        val = np.concatenate([val, views[0]])
    return fit_rule(rule, val, run.labels("val"), context)


def fit_context(
    run: RunDir, names: list[str], infos: list[dict], tolerance, budget, splits: tuple[str, ...] = ("val", "test")
) -> tuple[FitContext, tuple[np.ndarray, ...] | None]:
    """What the rules are fitted with: the members' measured costs (from their member.json ``infos``), the
    cascade's target, and the members that kept one-view probabilities (those with test-time views: the
    cascade's cheap stages) with their costs; and those one-view probabilities on ``splits`` ``(V, N, K)``
    each (None when none, or no splits)."""
    one_view = [i for i, n in enumerate(names) if run.has_one_view(n)] if splits else []
    costs = ms_per_1000([info.get("infer_seconds_per_1000") for info in infos])
    view_costs = ms_per_1000([infos[i].get("infer_seconds_per_1000_1view") for i in one_view])
    context = FitContext(costs, tolerance, budget, one_view, dict(zip(one_view, view_costs)))
    if not one_view:
        return context, None
    return context, tuple(run.member_probs([names[i] for i in one_view], split, one_view=True) for split in splits)


def member_costs(member_results: dict[str, MemberResult], names: list[str]) -> list[float | None]:
    """Each member's measured inference cost in ms per 1,000 images (None where unmeasured)."""
    return ms_per_1000([member_results[n].infer_seconds_per_1000 for n in names])


def cascade_routing(
    params: dict,
    names: list[str],
    val_stack: np.ndarray,
    test_stack: np.ndarray | None,
    labels_test: np.ndarray | None = None,
) -> dict:
    """Where a fitted cascade's images leave, per split: the stages (member names, cheapest first), the
    share answered at each, and the expected cost from the members' measured costs (ms per 1,000 images,
    or member evaluations per image where a cost is missing). On test it also sweeps the curve's
    thresholds (for the report's accuracy-against-cost plot; nothing is chosen on it)."""
    rule = RULES[CascadeRule.name]
    m = len(params["order"])
    out: dict = {
        "stages": stage_names(params, names),
        "thresholds": params["thresholds"],
        "cost_unit": params["cost_unit"],
        "exit_fractions": {},
        "expected_ms_per_1000": {},
    }
    for split, stack in (("val", val_stack), ("test", test_stack)):
        if stack is None:
            continue
        _, stages = rule.route(params, stack)
        out["exit_fractions"][split] = exit_fractions(stages, m)
        out["expected_ms_per_1000"][split] = expected_cost(stages, params["costs"])
    if test_stack is not None and labels_test is not None:
        out["test_curve"] = rule.curve(params, test_stack, labels_test)
    return out


def applicable_rules(rules: list[str], default: bool, n_members: int) -> list[str]:
    """The rules to evaluate for ``n_members``: the cascade needs two; left out of a default list, refused
    when asked for by name."""
    if CascadeRule.name in rules and n_members < CascadeRule.min_members:
        if not default:
            raise UsageError("the cascade rule needs at least two members")
        return [r for r in rules if r != CascadeRule.name]
    return rules


def cascade_target(cfg, cascade_tolerance: float | None, infer_budget: float | None) -> tuple[float, float | None]:
    """The cascade's (tolerance as a fraction, budget in ms per 1,000 images): the run's, unless given here;
    a tolerance given here replaces the run's budget, and a budget given here its tolerance."""
    tolerance = check_tolerance(cfg.cascade_tolerance if cascade_tolerance is None else cascade_tolerance)
    given = infer_budget is not None or cascade_tolerance is not None
    return tolerance, check_budget(infer_budget if given else cfg.infer_budget)


def evaluate_run(
    run: RunDir,
    rules: list[str] | None = None,
    cascade_tolerance: float | None = None,
    infer_budget: float | None = None,
) -> RunResult:
    """Score every finished member and committee rule of a run; also writes ``metrics.json``.
    ``cascade_tolerance`` (points) and ``infer_budget`` (ms per 1,000 images): the cascade's target
    (default: the run's config)."""
    cfg = run.config()
    default = not rules and tuple(cfg.rules) == tuple(RULES)
    rules = list(rules or cfg.rules)
    check_rules(rules)
    tolerance, budget = cascade_target(cfg, cascade_tolerance, infer_budget)
    labels_val, labels_test = run.labels("val"), run.labels("test")
    members = finished_artifacts(run, labels_val)
    names = [m.name for m in members]
    rules = applicable_rules(rules, default, len(names))
    extra = [run.member(n) for n in run.finished_companions()]
    has_test = labels_test is not None and all(m.probs_test is not None for m in [*members, *extra])
    classes = run.class_names()

    def scores(labels: np.ndarray, probs: np.ndarray) -> Scores:
        return Scores.from_dict(evaluate_probs(labels, probs, classes))

    def result_of(m: MemberArtifacts) -> MemberResult:
        info = {k: m.info.get(k) for k in MEMBER_INFO_KEYS if k in m.info}
        test = scores(labels_test, m.probs_test) if has_test else None
        return MemberResult(m.name, scores(labels_val, m.probs_val), test, info)

    member_results = {m.name: result_of(m) for m in members}
    companion_results = {c.name: result_of(c) for c in extra}
    companions = {c.name: (companion_results[c.name], c.probs_test.argmax(1) if has_test else None) for c in extra}
    # The best member is chosen on validation, never on test.
    best = max(names, key=lambda n: member_results[n].val.accuracy)
    val_stack = np.stack([m.probs_val for m in members])  # (M, N_val, C)
    test_stack = np.stack([m.probs_test for m in members]) if has_test else None
    splits = ("val", "test") if has_test else ()
    context, views = fit_context(run, names, [member_results[n].info for n in names], tolerance, budget, splits)
    shared = (names, member_results, best, val_stack, labels_val, test_stack, labels_test, scores, companions, context)
    committees = {rule: score_committee(rule, *shared, views) for rule in rules}
    div = run_diversity(names, member_results, labels_test, test_stack) if has_test else None
    sets = committee_sets(names, committees, *shared[3:7], views, context.one_view) if has_test else []
    result = RunResult(
        str(run.path),
        cfg.split,
        classes,
        int(len(labels_val)),
        int(len(labels_test)) if has_test else 0,
        member_results,
        committees,
        best,
        [m for m in cfg.members if m not in names],
        div,
        sets,
        companion_results,
        price_points(member_results, companion_results, val_stack, labels_val, test_stack, labels_test),
    )
    run.write_metrics(result)
    return result


def committee_sets(
    names: list[str],
    committees: dict[str, CommitteeResult],
    val_stack: np.ndarray,
    labels_val: np.ndarray,
    test_stack: np.ndarray,
    labels_test: np.ndarray,
    views: tuple[np.ndarray, np.ndarray] | None = None,
    one_view: list[int] = (),
) -> list:
    """Conformal prediction sets of every member and committee: thresholds fitted on validation, coverage
    measured on test. ``views``: the one-view probabilities of the members ``one_view`` (a cascade's)."""
    val = {n: val_stack[i] for i, n in enumerate(names)}
    test = {n: test_stack[i] for i, n in enumerate(names)}
    view_val, view_test = views or (None, None)
    for rule, c in committees.items():
        val[c.name] = combine(rule, c.rule_params, rule_rows(c.rule_params, val_stack, view_val, one_view))
        test[c.name] = combine(rule, c.rule_params, rule_rows(c.rule_params, test_stack, view_test, one_view))
    return conformal_rows(val, labels_val, test, labels_test)


def gain_line(committee: str, other: str, v: Gain) -> str:
    """One line: a committee's test gain over another model, its interval and McNemar's test."""
    return (
        f"{committee} vs {other}: {100 * v.gain:+.2f} points [{100 * v.gain_ci[0]:+.2f}, {100 * v.gain_ci[1]:+.2f}] "
        f"(paired bootstrap 95 %), fixed {v.fixed}, broke {v.broken}, McNemar p = {v.mcnemar_p:.3g}"
    )


def format_table(result: RunResult) -> str:
    """A readable fixed-width table of members and committee rules."""
    split = result.main_split
    head = (
        f"{'model':<22}{split + ' acc':>10}{'95% CI':>18}{'macro-F1':>10}{'NLL':>8}"
        f"{'params':>11}{'train s':>9}{'ms/1k':>8}"
    )
    lines = [head, "-" * len(head)]
    for name, e in result.entries().items():
        s = e.scores(split)
        lo, hi = s.accuracy_ci
        ms = e.infer_seconds_per_1000
        lines.append(
            f"{name:<22}{100 * s.accuracy:>9.2f}%{f'[{100 * lo:.2f}, {100 * hi:.2f}]':>18}"
            f"{s.macro_f1:>10.4f}{s.nll:>8.4f}{e.params:>11,}"
            f"{e.train_seconds:>9.1f}{(1000 * ms if ms else float('nan')):>8.1f}"
        )
    gains = [(c, c.vs_best_member) for c in result.committees.values() if c.vs_best_member]
    if gains:
        lines.append("")
    for c, v in gains:
        lines.append(gain_line(c.name, f"best member {v.member} (chosen on validation)", v))
    main = result.committees.get(result.main_rule) if result.main_rule else None
    for name, v in (main.vs_companions if main else {}).items():
        lines.append(gain_line(main.name, name, v))
    if result.skipped_members:
        lines.append(f"left out (no saved probabilities): {', '.join(result.skipped_members)}")
    return "\n".join(lines)


def committee_probs(run: RunDir, committee: CommitteeResult, split: str) -> np.ndarray:
    """A fitted committee's probabilities on a saved split, ``(N, C)``: its rule applied to its members'
    saved probabilities ``(M, N, C)`` (and a cascade's one-view rows)."""
    return combine(
        committee.rule, committee.rule_params, saved_rows(run, committee.rule_params, committee.members, split)
    )


def saved_rows(run: RunDir, params: dict, names: list[str], split: str) -> np.ndarray:
    """What a rule fitted over the members ``names`` reads on a saved split ``(R, N, C)``: their
    probabilities, then the one-view probabilities of those its cascade asks on one view
    (``rules.cascade.rule_rows``)."""
    wanted = [int(i) for i in params.get("one_view", [])]
    views = run.member_probs([names[i] for i in wanted], split, one_view=True) if wanted else None
    return rule_rows(params, run.member_probs(names, split), views, wanted)
