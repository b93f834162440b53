"""The Python API: typed results with one JSON form, jobs handed to an executor, predict on arrays."""

import numpy as np
import pytest

from committee.base.errors import CommitteeError, UsageError
from committee.config.run_config import RunConfig
from committee.evaluation.scoring import committee_probs
from committee.serving.trained import Committee
from committee.store.records import RunResult
from committee.store.run_dir import RunDir
from committee.study import api as pipeline
from committee.study.jobs import LocalExecutor
from conftest import synthetic_arrays, write_dataset


class RecordingExecutor(LocalExecutor):
    """The local executor, remembering the jobs it was handed (what a cluster executor would receive)."""

    def __init__(self):
        self.jobs = []

    def run(self, jobs):
        jobs = list(jobs)
        self.jobs += jobs
        yield from super().run(jobs)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("api-data")
    write_dataset(d, synthetic_arrays())
    return d


def config(data_dir, **kw) -> RunConfig:
    return RunConfig(
        members=("shallow", "wide_deep"), rules=("mean", "vote"), epochs=2, data_dir=str(data_dir), verify=False, **kw
    )


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("api") / "run"
    executor = RecordingExecutor()
    result = pipeline.run(config(data_dir), run_dir, progress=False, executor=executor)
    return run_dir, result, executor


def test_run_returns_typed_results_that_round_trip(finished):
    run_dir, result, executor = finished
    assert [(j.member, j.run_dir) for j in executor.jobs] == [("shallow", run_dir), ("wide_deep", run_dir)]
    assert isinstance(result, RunResult) and list(result.entries()) == [
        "shallow",
        "wide_deep",
        "committee:mean",
        "committee:vote",
    ]
    assert RunResult.from_dict(result.to_dict()) == result
    assert RunDir(run_dir).read_metrics() == result == pipeline.results(run_dir)
    labels = np.load(run_dir / "labels_test.npy")
    probs = np.load(run_dir / "members/wide_deep/probs_test.npy")
    assert result.accuracy("wide_deep") == float(np.mean(probs.argmax(1) == labels))
    assert result.get("wide_deep").scores("val").n == 30 and result.main_split == "test"
    with pytest.raises(CommitteeError, match="no member or committee named 'nope'"):
        result.get("nope")
    committee = result.committees["mean"]
    saved = committee_probs(RunDir(run_dir), committee, "test")
    assert committee.test.accuracy == float(np.mean(saved.argmax(1) == labels))


def test_predict_on_an_array_matches_the_saved_probabilities(finished, data_dir):
    run_dir, result, _ = finished
    test_images = synthetic_arrays()["test_images"]
    pred = Committee.load(run_dir, "mean").explain(test_images)
    for name in ("shallow", "wide_deep"):
        np.testing.assert_allclose(
            pred.member_probs[name], np.load(run_dir / f"members/{name}/probs_test.npy"), atol=1e-6
        )
    np.testing.assert_allclose(
        pred.probs, (pred.member_probs["shallow"] + pred.member_probs["wide_deep"]) / 2, atol=1e-6
    )
    vote = Committee.load(run_dir, "vote").explain(test_images)
    agree = pred.member_probs["shallow"].argmax(1) == pred.member_probs["wide_deep"].argmax(1)
    assert (vote.disagreement[agree] == 0).all() and (vote.disagreement[~agree] == 0.5).all()
    with pytest.raises(UsageError, match=r"uint8 of shape \(N, 28, 28\)"):
        Committee.load(run_dir).predict(test_images.astype(np.float32))
    with pytest.raises(UsageError, match="unknown committee rule"):
        Committee.load(run_dir, "median").explain(test_images)


def test_seeds_are_jobs_of_one_list(data_dir, tmp_path):
    executor = RecordingExecutor()
    out = pipeline.run_seeds(config(data_dir, seed=5), tmp_path / "multi", 2, progress=False, executor=executor)
    assert [(j.config.seed, j.member) for j in executor.jobs] == [
        (5, "shallow"),
        (5, "wide_deep"),
        (6, "shallow"),
        (6, "wide_deep"),
    ]
    assert sorted(out.runs) == [5, 6] and out.summary["seeds"] == 2
    assert out.summary["rows"]["committee:mean"]["values"] == [out.runs[s].accuracy("committee:mean") for s in (5, 6)]
    # another seed is another split of the data: the runs differ
    assert not np.array_equal(
        np.load(tmp_path / "multi/seed-5/splits/val.npy"), np.load(tmp_path / "multi/seed-6/splits/val.npy")
    )


def test_adding_a_member_keeps_the_first(finished, data_dir, tmp_path):
    run_dir = tmp_path / "grow"
    pipeline.train(config(data_dir).replace(members=("shallow",)), run_dir, progress=False)
    pipeline.train(config(data_dir).replace(members=("wide_deep",)), run_dir, progress=False)
    assert RunDir(run_dir).finished_members() == ["shallow", "wide_deep"]
    with pytest.raises(UsageError, match="was made with seed=0, not 1"):
        pipeline.train(config(data_dir, seed=1), run_dir, progress=False)


class InterruptAfter(LocalExecutor):
    """Runs ``n`` jobs, then acts as if the user pressed Ctrl-C."""

    def __init__(self, n):
        self.n = n

    def run(self, jobs):
        for k, result in enumerate(super().run(jobs)):
            yield result
            if k + 1 == self.n:
                raise KeyboardInterrupt


def test_interrupted_seeds_resume_only_what_is_missing(data_dir, tmp_path):
    root = tmp_path / "multi"
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_seeds(config(data_dir, seed=5), root, 2, progress=False, executor=InterruptAfter(1))
    assert RunDir(root / "seed-5").finished_members() == ["shallow"]
    assert RunDir(root / "seed-6").finished_members() == []
    executor = RecordingExecutor()
    resumed = pipeline.run_seeds(config(data_dir, seed=5), root, 2, resume=True, progress=False, executor=executor)
    assert [(j.config.seed, j.member, j.resume) for j in executor.jobs] == [
        (5, "wide_deep", True),
        (6, "shallow", True),
        (6, "wide_deep", True),
    ]
    straight = pipeline.run_seeds(config(data_dir, seed=5), tmp_path / "straight", 2, progress=False)
    for seed in (5, 6):  # the same scores as a run that was never interrupted (timings aside)
        a, b = resumed.runs[seed], straight.runs[seed]
        assert list(a.entries()) == list(b.entries())
        for name in a.entries():
            assert a.get(name).val == b.get(name).val and a.get(name).test == b.get(name).test, name
