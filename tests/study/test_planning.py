"""The time-limit planner, the budget that re-plans slow epochs, the study's ETA: arithmetic on hand-made numbers."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from committee.base.errors import UsageError
from committee.study import planning
from committee.study.planning import Costs, Curve, Knowledge, Overheads
from committee.training.budget import BudgetShare, MemberBudget, epochs_that_fit
from committee.training.eta import JobEstimate, StudyClock, clock_text, jobs_eta


@pytest.mark.parametrize(
    "text, seconds",
    [("150s", 150), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("90", 90), ("2.5m", 150), ("45 sec", 45)],
)
def test_time_limits_parse(text, seconds):
    assert planning.parse_time_limit(text) == seconds


@pytest.mark.parametrize("text", ["soon", "10x", "-5", "0", "", "5m10", "1w"])
def test_bad_time_limits_say_what_to_give(text):
    with pytest.raises(UsageError, match="--time-limit"):
        planning.parse_time_limit(text)


def test_curve_interpolates_in_log_epochs_and_stays_flat_beyond_the_longest_run():
    curve = Curve((2, 8), (0.90, 0.94))
    assert curve.predict(4) == pytest.approx(0.92)  # log 4 is halfway between log 2 and log 8
    assert curve.predict(8) == pytest.approx(0.94)
    assert curve.predict(50) == pytest.approx(0.94)  # never extrapolated upwards
    assert curve.predict(1) == pytest.approx(0.88)  # the first segment's slope below the first run
    assert Curve((40,), (0.95,)).predict(10) is None  # one run says nothing about shorter runs
    assert Curve((40,), (0.95,)).predict(60) == pytest.approx(0.95)


def knowledge() -> Knowledge:
    return Knowledge({"fast": Curve((1, 4), (0.90, 0.94)), "strong": Curve((2, 8), (0.92, 0.96))}, 0.004)


def test_the_packaged_curves_load_and_rise_with_epochs():
    k = planning.load_knowledge()
    assert set(k.curves) == set(planning.FAMILIES)
    fast = k.curves["fast"]
    assert fast.predict(2) < fast.predict(5) <= fast.predict(16)
    assert 0 < k.committee_gain < 0.01
    doc = json.loads(json.dumps({"curves": {"x": [{"epochs": 3, "val_acc": 0.5}]}, "committee_gain": 0.0}))
    assert planning.load_knowledge(json.dumps(doc)).curves["x"].predict(3) == 0.5


def test_the_planner_takes_the_most_epochs_that_fit_and_the_best_predicted_committee():
    costs = {"fast": Costs(epoch=10.0, final=2.0), "strong": Costs(epoch=40.0, final=5.0)}
    over = Overheads(before=5.0, tail_base=4.0, tail_per_member=1.0)
    limit = 200.0
    found = planning.candidates(limit, costs, over, knowledge())
    for c in found:  # each candidate is the longest run of its size that fits
        room = planning.training_seconds(limit, over, c.members)
        cost = costs[c.family]
        assert c.members * (cost.final + c.epochs * cost.epoch) <= room
        assert c.members * (cost.final + (c.epochs + 1) * cost.epoch) > room
        assert c.predicted_seconds <= limit - planning.margin(limit)
    choice = planning.choose(limit, costs, over, knowledge())
    top = max(c.predicted_accuracy for c in found)
    assert choice.best.predicted_accuracy >= top - 0.0005  # within 0.05 points of the best prediction ...
    near = [c for c in found if c.predicted_accuracy >= top - 0.0005]
    assert choice.best.members == min(c.members for c in near)  # ... the one with the fewest members
    assert choice.considered[0] == choice.best
    # Hand check: margin 2 + 8 = 10, so 200 - 10 - 5 - 5 = 180 s for one member: (180 - 2) // 10 = 17 fast epochs
    one_fast = next(c for c in found if c.family == "fast" and c.members == 1)
    assert one_fast.epochs == 17


def test_among_near_equal_plans_the_one_with_fewer_members_wins():
    flat = Knowledge({"fast": Curve((1, 2), (0.94, 0.94))}, 0.0)  # more members buy nothing here
    choice = planning.choose(300.0, {"fast": Costs(10.0, 1.0)}, Overheads(0.0, 0.0, 0.0), flat)
    assert choice.best.members == 1


def test_a_limit_too_short_names_the_shortest_feasible_one():
    costs = {"fast": Costs(epoch=30.0, final=5.0)}
    over = Overheads(before=5.0, tail_base=8.0, tail_per_member=2.0)
    with pytest.raises(UsageError, match=r"shortest feasible limit is about (\d+)s") as err:
        planning.choose(20.0, costs, over, knowledge())
    shortest = int(err.value.args[0].rsplit("about ", 1)[1].rstrip("s"))
    assert planning.choose(float(shortest), costs, over, knowledge()).best.epochs == 1  # and it is feasible


def test_a_preset_keeps_its_members_and_gets_the_largest_epoch_scale_that_fits():
    costs = {"a": Costs(epoch=3.0, final=1.0), "b": Costs(epoch=5.0, final=1.0)}
    epochs = {"a": 20, "b": 10}
    over = Overheads(before=2.0, tail_base=3.0, tail_per_member=1.0)
    limit = 120.0
    scale = planning.preset_scale(limit, costs, epochs, over)
    room = planning.training_seconds(limit, over, 2) - 2.0

    def need(s):
        return sum(max(1, round(epochs[m] * s)) * c.epoch for m, c in costs.items())

    assert need(scale) <= room < need(scale * 1.05)
    with pytest.raises(UsageError, match="too short for this preset"):
        planning.preset_scale(15.0, costs, epochs, over)


def test_epochs_that_fit():
    assert epochs_that_fit(done=0, planned=10, seconds_left=1000, epoch_seconds=10) == 10
    assert epochs_that_fit(done=2, planned=10, seconds_left=35, epoch_seconds=10) == 5
    assert epochs_that_fit(done=3, planned=10, seconds_left=-5, epoch_seconds=10) == 3  # stop now, keep what ran
    assert epochs_that_fit(done=0, planned=10, seconds_left=0, epoch_seconds=10) == 1  # a member needs one epoch


def member(history: list[float], epochs: int = 10) -> SimpleNamespace:
    return SimpleNamespace(
        name="air1", epochs=epochs, next_epoch=len(history) + 1, history=[{"seconds": s} for s in history]
    )


def test_the_budget_shortens_a_member_whose_epochs_run_slow():
    now = [1000.0]
    share = BudgetShare(deadline=1000.0 + 105.0, epoch_seconds=10.0, final_seconds=5.0, after_seconds=0.0)
    budget = MemberBudget(share, clock=lambda: now[0])
    t = member([])
    budget.epoch_start(t)
    assert t.epochs == 10  # as planned: 10 x 10 s + 5 s final fits exactly
    t = member([20.0, 20.0], epochs=10)  # twice as slow as planned, 40 s gone
    now[0] = 1040.0
    budget.epoch_start(t)
    # 65 s left, final predictions take 2 x 5 = 10 s: 55 s is 2 more epochs of 20 s
    assert t.epochs == 4
    assert budget.status(t) == "planned 10 epochs"


def test_the_budget_gives_epochs_back_when_a_slow_spell_passes():
    now = [0.0]
    share = BudgetShare(deadline=200.0, epoch_seconds=10.0, final_seconds=0.0, after_seconds=0.0)
    budget = MemberBudget(share, clock=lambda: now[0])
    t = member([], epochs=18)
    budget.epoch_start(t)
    t.history, t.next_epoch, now[0] = [{"seconds": 40.0}], 2, 40.0  # another job ran beside the first epoch
    budget.epoch_start(t)
    assert t.epochs == 5  # 160 s left at 40 s an epoch: 4 more
    t.history += [{"seconds": 10.0}, {"seconds": 10.0}, {"seconds": 10.0}]
    t.next_epoch, now[0] = 5, 70.0
    budget.epoch_start(t)  # the last three ran as planned again: 130 s left is 13 more epochs
    assert t.epochs == 17
    now[0] = 0.0
    budget.epoch_start(t)
    assert t.epochs == 18  # never above the plan


def test_the_budget_leaves_room_for_the_jobs_after_this_one():
    share = BudgetShare(deadline=200.0, epoch_seconds=10.0, final_seconds=0.0, after_seconds=100.0)
    budget = MemberBudget(share, clock=lambda: 0.0)
    t = member([], epochs=50)
    budget.epoch_start(t)
    assert t.epochs == 10


def test_the_study_clock_adds_up_the_epochs_left():
    now = [100.0]
    jobs = [JobEstimate("a", 4), JobEstimate("b", 2, epoch_seconds=None, final_seconds=3.0)]
    clock = StudyClock(jobs, tail_seconds=10.0, start=40.0, clock=lambda: now[0])
    t = SimpleNamespace(name="a", epochs=4, history=[{"seconds": 5.0}, {"seconds": 7.0}])
    clock.member_start(t)
    clock.epoch_end(t, t.history[-1])
    # a: 2 epochs left at 6 s; b (not started): 2 epochs at a's 6 s + 3 s final; + 10 s tail
    assert clock.remaining() == pytest.approx(2 * 6 + 2 * 6 + 3 + 10)
    assert clock.status() == "study 1:00, ~0:37 left"
    clock.member_end(t, {})
    assert clock.remaining() == pytest.approx(2 * 6 + 3 + 10)
    clock.end_by = 110.0  # a time limit: the budget ends the study by then, and the estimate says so
    assert clock.remaining() == pytest.approx(10.0)


def test_clock_text_and_the_ray_eta():
    assert clock_text(75) == "1:15" and clock_text(3725) == "1:02:05" and clock_text(-3) == "0:00"
    assert jobs_eta(done=3, total=9, mean_job_seconds=60.0, slots=4) == 120.0  # 6 left on 4 slots: 2 rounds
    assert jobs_eta(done=9, total=9, mean_job_seconds=60.0, slots=4) == 0.0
    assert math.isclose(jobs_eta(0, 1, 5.0, 0), 5.0)
