"""The confidence cascade: members asked cheapest first, each image answered as soon as the committee
so far is sure enough.

Stages are the members in increasing measured inference cost. After stage ``k`` the running
combination is the mean of the first ``k + 1`` members' probabilities, temperature-scaled with a
temperature fitted for that prefix on validation (so "sure" means the same thing at every stage);
an image leaves when its top calibrated probability exceeds the stage's threshold, and only the
images still open go on. The last stage answers whatever is left, with exactly the ``calibrated``
rule's probabilities: a cascade whose thresholds are 1 *is* the calibrated committee, one whose
thresholds are 0 is its cheapest member, calibrated.

The threshold (one, shared by every stage: with calibrated probabilities it means the same at each)
is fitted on validation only: the cheapest at which the cascade breaks at most ``tolerance`` of the
validation images (the whole committee right, the cascade wrong), so its validation accuracy stays
within ``tolerance`` of the whole committee's however lucky its early exits were; or, given an
inference budget, the most accurate whose expected cost fits it.
The expected cost of a threshold is ``sum_k reach_k * cost_k``: the share of images that reach stage
``k`` times that member's measured ms per 1,000 images (Wang, Kondratyuk et al., ICLR 2022).

Shapes: member probabilities ``(M, N, K)`` in the run's member order; ``route`` returns the answers
``(N, K)`` and each image's exit stage ``(N,)`` (0 = the cheapest member answered it).
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


def _stage_costs(costs, m: int) -> tuple[list[float], str]:
    """Each member's cost, in ms per 1,000 images when every one was measured, else one per member."""
    if costs is not None and len(costs) == m and all(c is not None and c > 0 for c in costs):
        return [float(c) for c in costs], "ms per 1,000 images"
    return [1.0] * m, "member evaluations per image"


def calibrated_running(total: np.ndarray, count: int, temperature: float) -> np.ndarray:
    """The committee so far ``(N, K)``: the sum of ``count`` members' probabilities ``(N, K)``, averaged
    and temperature-scaled. One function for the rule and for the live cascade, so both agree exactly."""
    return temperature_scale(total / count, temperature)


def calibrated_prefixes(ordered: np.ndarray, temperatures: list[float]) -> np.ndarray:
    """The calibrated running mean after each stage: ``(M, N, K)`` from members in stage order ``(M, N, K)``."""
    totals = np.cumsum(ordered, axis=0)
    return np.stack([calibrated_running(totals[k], k + 1, t) for k, t in enumerate(temperatures)])


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


def check_params(params: dict, m: int) -> None:
    """A cascade's parameters as metrics.json holds them, or a one-line UsageError: the stage order a
    permutation of the ``m`` members, costs not decreasing, temperatures positive, thresholds in
    [0, 1], the curve's thresholds increasing."""
    try:
        order, costs = [int(i) for i in params["order"]], [float(c) for c in params["costs"]]
        temps, thresholds = [float(t) for t in params["temperatures"]], [float(t) for t in params["thresholds"]]
        curve = [float(t) for t in params.get("curve", {}).get("thresholds", [])]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UsageError("cascade parameters are incomplete (order, costs, temperatures, thresholds)") from None
    if sorted(order) != list(range(m)):
        raise UsageError(f"cascade stage order {order} is not an order of the committee's {m} members")
    if len(costs) != m or any(not np.isfinite(c) or c <= 0 for c in costs) or np.any(np.diff(costs) < 0):
        raise UsageError(f"cascade stage costs must be {m} positive numbers in increasing order, got {costs}")
    if len(temps) != m or any(not np.isfinite(t) or t <= 0 for t in temps):
        raise UsageError(f"cascade temperatures must be {m} positive numbers, got {temps}")
    if len(thresholds) != m - 1 or any(not 0 <= t <= 1 for t in thresholds):
        raise UsageError(f"cascade thresholds must be {m - 1} numbers in [0, 1], got {thresholds}")
    if any(not 0 <= t <= 1 for t in curve) or np.any(np.diff(curve) <= 0):
        raise UsageError("cascade curve thresholds must increase within [0, 1]")


class CascadeRule(Rule):
    """Members cheapest first; an image leaves at the first stage whose calibrated committee-so-far
    is more than ``threshold`` sure. See the module docstring."""

    name = "cascade"
    description = "members cheapest first; each image answered once the calibrated committee so far is sure enough"
    min_members = 2

    def fit(self, val_probs: np.ndarray, val_labels: np.ndarray, context: FitContext | None = None) -> dict:
        """Stage order, per-stage temperatures and the threshold, from validation only."""
        context = context or FitContext()
        probs, labels = check_probs(val_probs), np.asarray(val_labels)
        m = len(probs)
        if m < self.min_members:
            raise UsageError("the cascade rule needs at least two members")
        costs, unit = _stage_costs(context.costs, m)
        order = sorted(range(m), key=lambda i: (costs[i], i))  # cheapest first; ties keep the run's order
        ordered, stage_costs = probs[order], [costs[i] for i in order]
        totals = np.cumsum(ordered, axis=0)
        temperatures = [fit_temperature(totals[k] / (k + 1), labels) for k in range(m)]
        calibrated = calibrated_prefixes(ordered, temperatures)
        accs, spent, broken = sweep(calibrated, labels, stage_costs, CANDIDATE_THRESHOLDS)
        accs_a, spent_a = np.array(accs), np.array(spent)
        full = float((calibrated[m - 1].argmax(axis=1) == labels).mean()) if len(labels) else 0.0
        if context.infer_budget is not None:
            budget = float(context.infer_budget)
            if budget < stage_costs[0] and unit.startswith("ms"):
                raise UsageError(
                    f"--infer-budget {budget:g} ms per 1,000 images is below the cheapest stage's cost "
                    f"({stage_costs[0]:.3g} ms)"
                )
            fits = spent_a <= budget + 1e-12
            # The most accurate threshold within the budget; among equals, the cheapest.
            pick = min(np.flatnonzero(fits), key=lambda i: (-accs_a[i], spent_a[i]))
            target = {"infer_budget_ms_per_1000": budget}
        else:
            # Only the images it breaks count against it, not the ones an early member happens to fix: fixes
            # on validation are mostly luck that does not carry over (fitted on one half of validation and
            # scored on the other, counting net accuracy lost 0.10 points on average, counting breaks 0.03:
            # benchmarks/results/cascade_criterion.json). The last candidate (1.0) breaks nothing.
            tol = float(context.cascade_tolerance)
            ok = np.array(broken) <= tol + 1e-12
            pick = min(np.flatnonzero(ok), key=lambda i: (spent_a[i], -accs_a[i]))
            target = {"tolerance": tol}
        threshold = float(CANDIDATE_THRESHOLDS[pick])
        stages = exit_stages(calibrated.max(axis=2), [threshold] * (m - 1))
        return {
            "order": order,
            "costs": stage_costs,
            "cost_unit": unit,
            "temperatures": temperatures,
            "thresholds": [threshold] * (m - 1),
            "target": target,
            "full_val_accuracy": full,
            "val": {
                "accuracy": accs[pick],
                "broken": broken[pick],
                "exit_fractions": exit_fractions(stages, m),
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
        """The cascade's answers ``(N, K)`` and each image's exit stage ``(N,)`` from every member's
        probabilities ``(M, N, K)`` (what the stages would see, computed for all images at once).
        ``thresholds``: others than the fitted ones (one per stage but the last), for a sweep."""
        probs = check_probs(probs)
        check_params(params, len(probs))
        calibrated = calibrated_prefixes(probs[params["order"]], params["temperatures"])
        stages = exit_stages(calibrated.max(axis=2), params["thresholds"] if thresholds is None else thresholds)
        return calibrated[stages, np.arange(probs.shape[1])], stages

    def combine(self, params: dict, probs: np.ndarray) -> np.ndarray:
        return self.route(params, probs)[0]

    def curve(self, params: dict, probs: np.ndarray, labels: np.ndarray) -> dict:
        """Accuracy and expected cost at each of the fitted curve's thresholds on any split's member
        probabilities ``(M, N, K)``: the trade-off the threshold was picked from, for plotting."""
        probs = check_probs(probs)
        check_params(params, len(probs))
        calibrated = calibrated_prefixes(probs[params["order"]], params["temperatures"])
        thresholds = params["curve"]["thresholds"]
        accs, spent, broken = sweep(calibrated, labels, params["costs"], thresholds)
        return {"thresholds": thresholds, "accuracy": accs, "cost": spent, "broken": broken}

    def __repr__(self) -> str:
        return "CascadeRule()"
