"""Planning a run to a time limit: which members, how many epochs, predicted from measured rates.

Two ways to plan (``committee run --time-limit T``):

- with a preset (``--preset P``): its members and recipe stay; every member's epochs are scaled
  by one factor, the largest whose predicted time fits;
- without one (the ``planned`` preset): air_cnn members of one of two recipe *families*,
  ``fast`` (width 32, no shifts: the fast preset) and ``strong`` (width 48, +-2 pixel shifts:
  the strong preset), K = 1..5 members of E epochs each, chosen to maximise the predicted
  validation accuracy of the committee.

Accuracy comes from measured curves (``accuracy_curves.json``, written by
``benchmarks/epoch_curves.py`` from ``benchmarks/results/``): a member's best validation accuracy
after a complete E-epoch run, interpolated linearly in log(E) between measured runs, flat beyond
the longest (more epochs than were ever measured buy nothing in the prediction, so spare time
goes to more members), and the committee's gain over its members, ``G * (1 - 1/K)``. Time comes
from :mod:`committee.training.rates`: this machine's own rates for each member. Everything here
is a pure function of those numbers; :mod:`committee.study.time_limit` measures and applies.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from importlib import resources

from committee.base.errors import UsageError

UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_MEMBERS = 5
MAX_EPOCHS = 200
# Held back from the limit: the predicted times are estimates (a few per cent here, and the budget
# re-plans epochs that run slow), and the evaluation and report after training vary too.
MARGIN_FRACTION = 0.04
MARGIN_SECONDS = 2.0

# What the planner may change per family (the rest is the planned preset's airbench recipe).
FAMILIES: dict[str, dict] = {"fast": {"width": None, "aug_shift": 0.0}, "strong": {"width": 48, "aug_shift": 0.07}}


def parse_time_limit(text: str) -> float:
    """``150s``, ``10m``, ``1h``, ``1h30m``, ``90`` (seconds) -> seconds; anything else is a UsageError."""
    spec = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", spec):
        seconds = float(spec)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|m|sec|s)", spec)
        if not parts or "".join(n + u for n, u in parts) != spec:
            raise UsageError(f"--time-limit {text!r}: give seconds, or a duration such as 150s, 10m, 1h or 1h30m")
        seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if not 0 < seconds < 7 * 24 * 3600:
        raise UsageError(f"--time-limit {text!r}: must be more than 0 and less than a week")
    return seconds


@dataclass(frozen=True)
class Curve:
    """A family's member validation accuracy (0-1) after complete runs of ``epochs``."""

    epochs: tuple[int, ...]
    accuracy: tuple[float, ...]

    def predict(self, epochs: int) -> float | None:
        """Linear in log(epochs) between measured points; the first segment's slope below them, flat above;
        None below a single point (nothing known about shorter runs)."""
        xs, ys = [math.log(e) for e in self.epochs], self.accuracy
        x = math.log(max(epochs, 1))
        if x >= xs[-1]:
            return ys[-1]
        if len(xs) == 1:
            return None
        i = max(1, next((k for k, xk in enumerate(xs) if xk >= x), len(xs) - 1))
        slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
        return ys[i - 1] + slope * (x - xs[i - 1])


@dataclass(frozen=True)
class Knowledge:
    """What the project has measured about accuracy: one curve per family and the committee gain."""

    curves: dict[str, Curve]
    committee_gain: float  # G: a committee of K members gains G * (1 - 1/K) over its members' mean
    sources: tuple[str, ...] = ()

    def committee_accuracy(self, family: str, members: int, epochs: int) -> float | None:
        member = self.curves[family].predict(epochs)
        return None if member is None else member + self.committee_gain * (1 - 1 / members)


def load_knowledge(text: str | None = None) -> Knowledge:
    """The packaged ``accuracy_curves.json`` (or ``text``, the same JSON)."""
    doc = json.loads(
        text if text is not None else resources.files(__package__).joinpath("accuracy_curves.json").read_text()
    )
    curves = {
        name: Curve(tuple(p["epochs"] for p in points), tuple(p["val_acc"] for p in points))
        for name, points in ((n, sorted(c, key=lambda p: p["epochs"])) for n, c in doc["curves"].items())
    }
    return Knowledge(curves, doc["committee_gain"], tuple(doc.get("sources", ())))


@dataclass(frozen=True)
class Costs:
    """Seconds of one member of a family on this machine (from its measured rates)."""

    epoch: float  # one epoch, its validation included
    final: float  # the final predictions on validation and test


@dataclass(frozen=True)
class Overheads:
    """Seconds outside the members' training."""

    before: float  # from the command's start to the end of planning (start-up, data, measuring)
    tail_base: float  # evaluation and report: base ...
    tail_per_member: float  # ... plus this per member

    def tail(self, members: int) -> float:
        return self.tail_base + self.tail_per_member * members


def margin(limit: float) -> float:
    return MARGIN_SECONDS + MARGIN_FRACTION * limit


def training_seconds(limit: float, overheads: Overheads, members: int) -> float:
    """What the members' epochs and final predictions may take in all."""
    return limit - margin(limit) - overheads.before - overheads.tail(members)


@dataclass(frozen=True)
class Candidate:
    family: str
    members: int
    epochs: int
    predicted_accuracy: float  # committee validation accuracy, 0-1
    predicted_seconds: float  # the whole command, start to report

    def row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Choice:
    best: Candidate
    considered: list[Candidate] = field(default_factory=list)  # best first


def candidates(limit: float, costs: dict[str, Costs], overheads: Overheads, knowledge: Knowledge) -> list[Candidate]:
    """For each family and member count, the most epochs that fit (members with no epoch that fits are left out)."""
    out = []
    for family, cost in costs.items():
        for k in range(1, MAX_MEMBERS + 1):
            room = training_seconds(limit, overheads, k) - k * cost.final
            epochs = min(MAX_EPOCHS, int(room // (k * cost.epoch))) if room > 0 else 0
            if epochs < 1:
                continue
            seconds = overheads.before + overheads.tail(k) + k * (cost.final + epochs * cost.epoch)
            accuracy = knowledge.committee_accuracy(family, k, epochs)
            if accuracy is not None:
                out.append(Candidate(family, k, epochs, accuracy, seconds))
    return out


def choose(limit: float, costs: dict[str, Costs], overheads: Overheads, knowledge: Knowledge) -> Choice:
    """The candidate with the highest predicted accuracy; within 0.05 points of it, the one with fewer
    members (cheaper to serve), then the faster. UsageError naming the shortest feasible limit if none fits."""
    found = candidates(limit, costs, overheads, knowledge)
    if not found:
        raise UsageError(f"--time-limit {limit:.0f}s is too short on this machine: {shortest_limit(costs, overheads)}")
    top = max(c.predicted_accuracy for c in found)
    near = [c for c in found if c.predicted_accuracy >= top - 0.0005]
    best = min(near, key=lambda c: (c.members, c.predicted_seconds))
    ranked = sorted(found, key=lambda c: -c.predicted_accuracy)
    return Choice(best, [best, *[c for c in ranked if c != best]][:12])


def shortest_limit(costs: dict[str, Costs], overheads: Overheads) -> str:
    """The sentence naming the shortest limit that fits one member's single epoch here."""
    need = min(overheads.before + overheads.tail(1) + c.final + c.epoch for c in costs.values())
    limit = (need + MARGIN_SECONDS) / (1 - MARGIN_FRACTION)
    return (
        f"one member's single epoch, its predictions, evaluation and report need about {need:.0f} s here; "
        f"the shortest feasible limit is about {math.ceil(limit)}s"
    )


def preset_scale(
    limit: float, member_costs: dict[str, Costs], member_epochs: dict[str, int], overheads: Overheads
) -> float:
    """The largest epoch scale (one factor for every member, epochs rounded, at least 1) whose predicted time fits."""
    room = training_seconds(limit, overheads, len(member_costs)) - sum(c.final for c in member_costs.values())

    def need(scale: float) -> float:
        return sum(max(1, round(member_epochs[m] * scale)) * c.epoch for m, c in member_costs.items())

    if room <= 0 or need(1e-9) > room:
        raise UsageError(
            f"--time-limit {limit:.0f}s is too short for this preset's {len(member_costs)} members on this machine: "
            f"one epoch each needs about {need(1e-9) + overheads.before + overheads.tail(len(member_costs)):.0f} s"
        )
    scale = room / need(1.0)
    while scale > 1e-6 and need(scale) > room:
        scale *= 0.98
    return scale
