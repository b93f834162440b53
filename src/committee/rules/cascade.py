"""The confidence cascade: members asked cheapest first, each image answered as soon as the committee
so far is sure enough.

Stages are the members in increasing measured inference cost; a member with test-time views (airbench's
six: flips and 1-pixel shifts, ``models.layers.FlipTTA``) can also be asked first on the plain image
alone, for about a sixth of its cost, and later with all its views. After stage ``k`` the running
combination is the mean over the members asked so far, each with its latest answer (all views replace
one view), temperature-scaled with a temperature fitted for that stage on validation (so "sure" means
the same thing at every stage); an image leaves when its top calibrated probability exceeds the
stage's threshold, and only the images still open go on. The last stage answers whatever is left, with
exactly the ``calibrated`` rule's probabilities: a cascade whose thresholds are 1 *is* the calibrated
committee, one whose thresholds are 0 is its cheapest stage, calibrated.

The threshold (one, shared by every stage: with calibrated probabilities it means the same at each)
is fitted on validation only: the cheapest at which the cascade breaks at most ``tolerance`` of the
validation images (the whole committee right, the cascade wrong), so its validation accuracy stays
within ``tolerance`` of the whole committee's however lucky its early exits were; or, given an
inference budget, the most accurate whose expected cost fits it. One-view stages are kept only when
they make that choice cheaper on validation.
The expected cost of a threshold is ``sum_k reach_k * cost_k``: the share of images that reach stage
``k`` times that stage's measured ms per 1,000 images (Wang, Kondratyuk et al., ICLR 2022); a member
asked again with all its views pays its whole cost again (it is run anew, as ``Committee`` does).

Shapes: the input ``(R, N, K)`` holds the ``M`` members' probabilities in the run's member order, then
one-view probabilities of the members ``params["one_view"]`` names (``R = M + len(one_view)``; with no
one-view rows, ``R = M``). ``params["order"]`` lists the rows asked, stage by stage. ``route`` returns
the answers ``(N, K)`` and each image's exit stage ``(N,)`` (0 = the cheapest stage answered it).
"""

from __future__ import annotations

import numpy as np

from committee.base.errors import UsageError
from committee.rules.base import FitContext, Rule, check_probs
from committee.rules.calibration import fit_temperature, temperature_scale

# Thresholds tried on validation: a coarse grid, and fine steps toward 1 where calibrated committees
# put most of their easy images (0.99, 0.999, ...). Strictly increasing, all in [0, 1].
CANDIDATE_THRESHOLDS = np.unique(np.concatenate([np.linspace(0.0, 1.0, 101), 1.0 - np.logspace(-6, -2, 17)]))

DEFAULT_TOLERANCE_POINTS = 0.1


def check_tolerance(points: float) -> float:
    """``--cascade-tolerance`` in accuracy points (0-100) as a fraction, or a one-line UsageError."""
    if not (isinstance(points, int | float) and 0 <= points <= 100):
        raise UsageError(f"--cascade-tolerance must be 0-100 accuracy points, got {points}")
    return float(points) / 100


def check_budget(ms: float | None) -> float | None:
    if ms is not None and not (isinstance(ms, int | float) and np.isfinite(ms) and ms > 0):
        raise UsageError(f"--infer-budget must be a positive number of ms per 1,000 images, got {ms}")
    return ms


def ms_per_1000(seconds: list[float | None]) -> list[float | None]:
    """Members' measured costs as member.json keeps them (seconds per 1,000 images) in the cascade's
    unit, ms per 1,000 images; None where unmeasured."""
    return [1000 * s if s else None for s in seconds]


def _row_costs(costs, one_view_costs, m: int, one_view: list[int]) -> tuple[list[float], str]:
    """Each input row's cost: ms per 1,000 images when every one was measured, else member evaluations
    per image (a one-view row then counts as a sixth of its member)."""
    measured = list(costs or []) + [(one_view_costs or {}).get(i) for i in one_view]
    if len(measured) == m + len(one_view) and all(c is not None and c > 0 for c in measured):
        return [float(c) for c in measured], "ms per 1,000 images"
    return [1.0] * m + [1.0 / 6] * len(one_view), "member evaluations per image"


def row_members(m: int, one_view: list[int]) -> list[int]:
    """The member each input row belongs to: rows ``0 .. m - 1`` are the members, then one-view rows."""
    return list(range(m)) + [int(i) for i in one_view]


def calibrated_running(total: np.ndarray, count: int, temperature: float) -> np.ndarray:
    """The committee so far ``(N, K)``: the sum of ``count`` members' latest probabilities ``(N, K)``,
    averaged and temperature-scaled. One function for the rule and for the live cascade, so both agree."""
    return temperature_scale(total / count, temperature)


def running_means(probs: np.ndarray, order: list[int], members: list[int]) -> tuple[np.ndarray, list[int]]:
    """The uncalibrated running mean after each stage ``(S, N, K)`` from the input rows ``(R, N, K)``, and
    how many members each stage's mean is over. A member's later row replaces its earlier one."""
    latest: dict[int, np.ndarray] = {}
    total = np.zeros(probs.shape[1:])
    means, counts = [], []
    for row in order:
        member = members[row]
        total = total + probs[row] - latest.get(member, 0.0)
        latest[member] = probs[row]
        means.append(total / len(latest))
        counts.append(len(latest))
    return np.stack(means), counts


def calibrated_prefixes(probs: np.ndarray, params: dict) -> np.ndarray:
    """The calibrated running combination after each stage ``(S, N, K)`` from the input rows ``(R, N, K)``."""
    members = row_members(len(probs) - len(params.get("one_view", [])), params.get("one_view", []))
    means, _ = running_means(probs, [int(r) for r in params["order"]], members)
    return np.stack([temperature_scale(mean, t) for mean, t in zip(means, params["temperatures"])])


def exit_stages(confidence: np.ndarray, thresholds) -> np.ndarray:
    """Each image's exit stage ``(N,)`` from the top calibrated probability after each stage ``(M, N)``:
    the first stage whose confidence exceeds its threshold; the last stage answers the rest."""
    m = len(confidence)
    leaves = np.ones_like(confidence, dtype=bool)
    leaves[: m - 1] = confidence[: m - 1] > np.asarray(thresholds, dtype=np.float64)[:, None]
    return leaves.argmax(axis=0)


def exit_fractions(stages: np.ndarray, m: int) -> list[float]:
    """The share of images answered at each of ``m`` stages."""
    n = max(len(stages), 1)
    return (np.bincount(stages, minlength=m)[:m] / n).tolist()


def expected_cost(stages: np.ndarray, costs: list[float]) -> float:
    """Average cost per 1,000 images when image ``i`` runs stages ``0 .. stages[i]``."""
    if len(stages) == 0:
        return 0.0
    spent = np.cumsum(costs)[stages]
    return float(spent.mean())


def sweep(calibrated: np.ndarray, labels: np.ndarray, costs: list[float], thresholds) -> tuple[list, list, list]:
    """Accuracy, expected cost and the share of images *broken* (the whole committee right, the cascade
    wrong) at each shared threshold, from the calibrated prefixes ``(M, N, K)``."""
    m, n = calibrated.shape[:2]
    confidence, correct = calibrated.max(axis=2), calibrated.argmax(axis=2) == np.asarray(labels)[None]
    accs, spent, broken = [], [], []
    for t in thresholds:
        stages = exit_stages(confidence, [t] * (m - 1))
        right = correct[stages, np.arange(n)]
        accs.append(float(right.mean()) if n else 0.0)
        broken.append(float((correct[m - 1] & ~right).mean()) if n else 0.0)
        spent.append(expected_cost(stages, costs))
    return accs, spent, broken


def check_params(params: dict, rows: int) -> None:
    """A cascade's parameters as metrics.json holds them, for an input of ``rows`` rows, or a one-line
    UsageError: one-view rows naming distinct members, the stages distinct rows that ask every member
    with all its views (a member's one view before its all), costs not decreasing, temperatures positive,
    thresholds in [0, 1], the curve's thresholds increasing."""
    try:
        order, costs = [int(i) for i in params["order"]], [float(c) for c in params["costs"]]
        temps, thresholds = [float(t) for t in params["temperatures"]], [float(t) for t in params["thresholds"]]
        one_view = [int(i) for i in params.get("one_view", [])]
        curve = [float(t) for t in params.get("curve", {}).get("thresholds", [])]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UsageError("cascade parameters are incomplete (order, costs, temperatures, thresholds)") from None
    m = rows - len(one_view)
    if m < 1 or len(set(one_view)) != len(one_view) or any(not 0 <= i < m for i in one_view):
        raise UsageError(f"cascade one-view members {one_view} do not fit {rows} probability rows")
    s = len(order)
    if len(set(order)) != s or not set(range(m)) <= set(order) or any(not 0 <= r < rows for r in order):
        raise UsageError(f"cascade stage order {order} does not ask each of the committee's {m} members once")
    if any(order.index(m + j) > order.index(i) for j, i in enumerate(one_view) if m + j in order):
        raise UsageError(f"cascade stage order {order} asks a member's one view after all its views")
    if len(costs) != s or any(not np.isfinite(c) or c <= 0 for c in costs) or np.any(np.diff(costs) < 0):
        raise UsageError(f"cascade stage costs must be {s} positive numbers in increasing order, got {costs}")
    if len(temps) != s or any(not np.isfinite(t) or t <= 0 for t in temps):
        raise UsageError(f"cascade temperatures must be {s} positive numbers, got {temps}")
    if len(thresholds) != s - 1 or any(not 0 <= t <= 1 for t in thresholds):
        raise UsageError(f"cascade thresholds must be {s - 1} numbers in [0, 1], got {thresholds}")
    if any(not 0 <= t <= 1 for t in curve) or np.any(np.diff(curve) <= 0):
        raise UsageError("cascade curve thresholds must increase within [0, 1]")


def rule_rows(params: dict, members: np.ndarray, one_view: np.ndarray | None, available) -> np.ndarray:
    """What a fitted rule reads ``(R, N, K)``: the members' probabilities ``(M, N, K)``, then (a cascade
    with one-view stages) the one-view rows its ``params["one_view"]`` names, picked from ``one_view``
    ``(V, N, K)``, the one-view probabilities of the members ``available``. Any other rule: the members."""
    wanted = [int(i) for i in params.get("one_view", [])]
    if not wanted:
        return members
    if one_view is None:
        raise UsageError("this cascade asks members on one view, but their one-view probabilities are missing")
    available = [int(i) for i in available]
    missing = [i for i in wanted if i not in available]
    if missing:
        raise UsageError(f"this cascade asks member {missing[0]} on one view, but it has no one-view probabilities")
    return np.concatenate([members, np.asarray(one_view)[[available.index(i) for i in wanted]]])


def stage_names(params: dict, names: list[str]) -> list[str]:
    """Each stage's name, in stage order: the member's, with "(1 view)" for a one-view stage."""
    m = len(names)
    one_view = [int(i) for i in params.get("one_view", [])]
    return [names[r] if r < m else f"{names[one_view[r - m]]} (1 view)" for r in (int(r) for r in params["order"])]


def stage_order(rows: list[int], costs: list[float]) -> list[int]:
    """The rows asked cheapest first (ties keep the row order: members before one-view rows)."""
    return sorted(rows, key=lambda r: (costs[r], r))


def pick_threshold(accs, spent, broken, context: FitContext, cheapest: float, unit: str) -> tuple[int, dict]:
    """The index of the chosen candidate threshold and the target it met (see the module docstring)."""
    accs_a, spent_a = np.array(accs), np.array(spent)
    if context.infer_budget is not None:
        budget = float(context.infer_budget)
        if budget < cheapest and unit.startswith("ms"):
            raise UsageError(
                f"--infer-budget {budget:g} ms per 1,000 images is below the cheapest stage's cost ({cheapest:.3g} ms)"
            )
        fits = spent_a <= budget + 1e-12
        # The most accurate threshold within the budget; among equals, the cheapest.
        pick = min(np.flatnonzero(fits), key=lambda i: (-accs_a[i], spent_a[i]))
        return int(pick), {"infer_budget_ms_per_1000": budget}
    # Only the images it breaks count against it, not the ones an early member happens to fix: fixes on
    # validation are mostly luck that does not carry over (fitted on one half of validation and scored on
    # the other, counting net accuracy lost 0.10 points on average, counting breaks 0.03:
    # benchmarks/results/cascade_criterion.json). The last candidate (1.0) breaks nothing.
    tol = float(context.cascade_tolerance)
    ok = np.array(broken) <= tol + 1e-12
    pick = min(np.flatnonzero(ok), key=lambda i: (spent_a[i], -accs_a[i]))
    return int(pick), {"tolerance": tol}


class CascadeRule(Rule):
    """Members cheapest first; an image leaves at the first stage whose calibrated committee-so-far
    is more than ``threshold`` sure. See the module docstring."""

    name = "cascade"
    description = "members cheapest first; each image answered once the calibrated committee so far is sure enough"
    min_members = 2

    def fit(self, val_probs: np.ndarray, val_labels: np.ndarray, context: FitContext | None = None) -> dict:
        """Stages, per-stage temperatures and the threshold, from validation only. ``val_probs``: the
        members ``(M, N, K)``, then the one-view rows of ``context.one_view``'s members."""
        context = context or FitContext()
        probs, labels = check_probs(val_probs), np.asarray(val_labels)
        one_view = [int(i) for i in context.one_view]
        m = len(probs) - len(one_view)
        if m < self.min_members:
            raise UsageError("the cascade rule needs at least two members")
        costs, unit = _row_costs(context.costs, context.one_view_costs, m, one_view)
        # With and without the one-view stages (a one-view row only where it is cheaper than its member with
        # all views, else it cannot pay); keep the better on validation (equal: the simpler).
        cheap = [m + j for j, i in enumerate(one_view) if costs[m + j] < costs[i]]
        variants = [stage_order(list(range(m)), costs)] + ([stage_order([*range(m), *cheap], costs)] if cheap else [])
        fits, refusal = [], None
        for order in variants:
            try:
                fits.append(self._fit_stages(probs, labels, order, costs, unit, one_view, context))
            except UsageError as exc:  # a budget below this variant's cheapest stage; another may fit it
                refusal = exc
        if not fits:
            raise refusal
        key = (lambda f: -f["val"]["accuracy"]) if context.infer_budget is not None else (lambda f: f["val"]["cost"])
        return min(fits, key=lambda f: (key(f), f["val"]["cost"], len(f["order"])))

    def _fit_stages(self, probs, labels, order, costs, unit, one_view, context) -> dict:
        """The cascade over the rows ``order`` (in stage order): temperatures and threshold on validation."""
        members = row_members(len(probs) - len(one_view), one_view)
        means, _ = running_means(probs, order, members)
        temperatures = [fit_temperature(mean, labels) for mean in means]
        asked = [r for r in range(len(probs)) if r < len(probs) - len(one_view) or r in order]
        kept = [one_view[r - (len(probs) - len(one_view))] for r in asked if r >= len(probs) - len(one_view)]
        # Renumber the rows: the members, then only the one-view rows this cascade asks.
        renumber = {r: i for i, r in enumerate(asked)}
        params = {"order": [renumber[r] for r in order], "one_view": kept, "temperatures": temperatures}
        calibrated = np.stack([temperature_scale(mean, t) for mean, t in zip(means, temperatures)])
        stage_costs = [costs[r] for r in order]
        accs, spent, broken = sweep(calibrated, labels, stage_costs, CANDIDATE_THRESHOLDS)
        pick, target = pick_threshold(accs, spent, broken, context, stage_costs[0], unit)
        threshold, s = float(CANDIDATE_THRESHOLDS[pick]), len(order)
        stages = exit_stages(calibrated.max(axis=2), [threshold] * (s - 1))
        full = float((calibrated[-1].argmax(axis=1) == labels).mean()) if len(labels) else 0.0
        return params | {
            "costs": stage_costs,
            "cost_unit": unit,
            "thresholds": [threshold] * (s - 1),
            "target": target,
            "full_val_accuracy": full,
            "val": {
                "accuracy": accs[pick],
                "broken": broken[pick],
                "exit_fractions": exit_fractions(stages, s),
                "cost": spent[pick],
            },
            "curve": {
                "thresholds": CANDIDATE_THRESHOLDS.tolist(),
                "val_accuracy": accs,
                "val_cost": spent,
                "val_broken": broken,
            },
        }

    def route(self, params: dict, probs: np.ndarray, thresholds=None) -> tuple[np.ndarray, np.ndarray]:
        """The cascade's answers ``(N, K)`` and each image's exit stage ``(N,)`` from the input rows
        ``(R, N, K)`` (what the stages would see, computed for all images at once). ``thresholds``:
        others than the fitted ones (one per stage but the last), for a sweep."""
        probs = check_probs(probs)
        check_params(params, len(probs))
        calibrated = calibrated_prefixes(probs, params)
        stages = exit_stages(calibrated.max(axis=2), params["thresholds"] if thresholds is None else thresholds)
        return calibrated[stages, np.arange(probs.shape[1])], stages

    def combine(self, params: dict, probs: np.ndarray) -> np.ndarray:
        return self.route(params, probs)[0]

    def curve(self, params: dict, probs: np.ndarray, labels: np.ndarray) -> dict:
        """Accuracy and expected cost at each of the fitted curve's thresholds on any split's input rows
        ``(R, N, K)``: the trade-off the threshold was picked from, for plotting."""
        probs = check_probs(probs)
        check_params(params, len(probs))
        calibrated = calibrated_prefixes(probs, params)
        thresholds = params["curve"]["thresholds"]
        accs, spent, broken = sweep(calibrated, labels, params["costs"], thresholds)
        return {"thresholds": thresholds, "accuracy": accs, "cost": spent, "broken": broken}

    def __repr__(self) -> str:
        return "CascadeRule()"
