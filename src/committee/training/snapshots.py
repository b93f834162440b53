"""Snapshot members (Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for free").

``--snapshots K`` trains each member once, its learning-rate schedule restarted in K cycles
(:func:`~committee.training.step.member_lr_factor`), and keeps the weights at the end of each cycle as
a member of its own: ``air1`` becomes ``air1.s1 .. air1.sK``. The run is trained under the last name
(its "carrier", ``air1.sK``); :class:`SnapshotWriter` writes the others as finished members when their
cycle ends. Rules, the report, ``predict``, ``shift``, ``export`` and ``--resume`` see K ordinary members.
"""

from __future__ import annotations

from committee.config.run_config import MemberOptions, RunConfig
from committee.data.dataset import Dataset
from committee.data.splits import Splits
from committee.store.run_dir import RunDir
from committee.training.callbacks import TrainingCallback
from committee.training.finishing import member_outputs, one_view_outputs, snapshot_fields
from committee.training.loop import MemberTraining
from committee.training.step import snapshot_ends


def snapshot_names(base: str, snapshots: int) -> list[str]:
    return [f"{base}.s{k}" for k in range(1, snapshots + 1)]


def expand_snapshots(cfg: RunConfig) -> RunConfig:
    """Each member with ``snapshots`` K >= 2 replaced by its K snapshot members (pure; members already expanded
    stay as they are)."""
    members, options = [], dict(cfg.member_options)
    for m in cfg.members:
        o = cfg.options_for(m)
        if o.snapshots < 2 or o.snapshot:
            members.append(m)
            continue
        opts = {**o.to_dict(), "epochs": cfg.epochs_for(m), "snapshot_of": m}
        for k, name in enumerate(snapshot_names(m, o.snapshots), 1):
            options[name] = {**opts, "snapshot": k}
            members.append(name)
        options.pop(m, None)
    return cfg.replace(members=tuple(members), member_options=options)


def written_by_its_run(opts: MemberOptions) -> bool:
    """An earlier snapshot of a snapshot run: written by the run's carrier (the last), never trained as a job."""
    return 0 < opts.snapshot < opts.snapshots


def job_members(cfg: RunConfig, member: str) -> list[str]:
    """The members one training job writes: a carrier's whole snapshot run, else the member itself."""
    o = cfg.options_for(member)
    return snapshot_names(o.snapshot_of, o.snapshots) if o.snapshots >= 2 and o.snapshot_of else [member]


class SnapshotWriter(TrainingCallback):
    """At the end of cycle k < K of a snapshot run, the weights as they are then become finished member k."""

    def __init__(self, dataset: Dataset, splits: Splits, run: RunDir, placement: dict | None = None):
        self.dataset, self.splits, self.run, self.placement = dataset, splits, run, placement

    def member_start(self, t: MemberTraining) -> None:
        self.write_due(t, only_missing=True)  # a resumed run killed between its checkpoint and the snapshot

    def epoch_end(self, t: MemberTraining, row: dict) -> None:
        self.write_due(t)

    def write_due(self, t: MemberTraining, only_missing: bool = False) -> None:
        if t.opts.snapshots < 2 or not t.history:
            return
        done, ends = t.history[-1]["epoch"], snapshot_ends(t.epochs, t.opts.snapshots)
        if done not in ends[:-1]:
            return
        k = ends.index(done) + 1
        name = snapshot_fields(t, k)["name"]
        if only_missing and self.run.is_finished(name):
            return
        self.run.start_member(name)
        self.run.save_weights(name, t.eval_model, done)
        self.run.write_history(name, [r for r in t.history if r["epoch"] <= done])
        probs_val, probs_test, info = member_outputs(t, t.eval_model, self.dataset, self.splits, self.placement)
        one_view, info["infer_seconds_per_1000_1view"] = one_view_outputs(t, t.eval_model, self.dataset, self.splits)
        self.run.finish_member(name, probs_val, probs_test, info | snapshot_fields(t, k), one_view)
