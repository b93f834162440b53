"""``committee distill``: one student trained on a finished committee's soft labels, saved in the run as a
companion model (scored like a member, never in the committee). The loss is
:mod:`committee.training.distillation`'s; this module plans the student and computes its teacher's labels.
"""

from __future__ import annotations

import time

import numpy as np

from committee.base.console import log
from committee.base.errors import CommitteeError, UsageError
from committee.config.run_config import RunConfig
from committee.data.sources import load_cached
from committee.rules.committee_rules import check_rules
from committee.serving.trained import Committee
from committee.store.run_dir import RunDir
from committee.study.baselines import NOT_A_SNAPSHOT
from committee.study.preparation import check_members_fit

STUDENT = "student"


def student_options(
    cfg: RunConfig,
    infos: dict[str, dict],
    arch: str | None,
    epochs: int | None,
    rule: str,
    temperature: float,
    alpha: float,
) -> dict:
    """The student's member options (pure): the options of the best member (on validation) with the student's
    architecture, else the run's with it; by default that member's epochs; the teacher's rule, ``temperature``
    and soft weight ``alpha``."""
    best = max(infos, key=lambda n: infos[n]["best_val_acc"])
    arch = arch or cfg.options_for(best).arch
    same = [m for m in sorted(infos, key=lambda n: -infos[n]["best_val_acc"]) if cfg.options_for(m).arch == arch]
    base = cfg.options_for(same[0]).to_dict() if same else {**cfg.options_for(None).to_dict(), "arch": arch}
    base |= NOT_A_SNAPSHOT
    epochs = epochs or int(infos[same[0] if same else best]["epochs_run"])
    label = f"student of committee:{rule} (T {temperature:g}, alpha {alpha:g}), {arch}, {epochs} epochs"
    return {**base, "epochs": epochs, "teacher": rule, "temperature": temperature, "alpha": alpha, "variant": label}


def plan_student(
    run: RunDir, name: str, arch: str | None, epochs: int | None, rule: str, temperature: float, alpha: float
) -> RunConfig:
    """Check everything a student needs (two or more members, a known rule, an architecture that fits the data)
    and add it to config.json; nothing is written when a check fails."""
    cfg = run.config()
    members = run.finished_members()
    if len(members) < 2:
        raise UsageError(f"{run.path}: distill needs a committee of 2+ finished members, this run has {len(members)}")
    if name in (*cfg.members, *cfg.companions):
        raise UsageError(f"{run.path} already has {name!r}: finish it with --resume, or train another with --name")
    check_rules([rule])
    infos = {m: run.member_info(m) for m in members}
    options = student_options(cfg, infos, arch, epochs, rule, temperature, alpha)
    new = cfg.replace(companions=(*cfg.companions, name), member_options={**cfg.member_options, name: options})
    new.check()
    try:
        check_members_fit(new, [name], load_cached(cfg.data_spec(), allow_download=False))
    except CommitteeError as exc:
        raise UsageError(f"--student {options['arch']}: {exc}") from None
    run.save_config(new)
    log(f"{name}: {options['variant']}")
    return new


def teacher_labels(run: RunDir, rule: str) -> np.ndarray:
    """The committee's probabilities ``(N_train, C)`` on the run's training images (unaugmented), saved in the
    run once (``teachers/<rule>.npy``) and reused by ``--resume``."""
    cfg = run.config()
    idx = run.splits()["train"]
    if run.has_teacher(rule):
        return run.teacher_probs(rule, len(idx))
    start = time.perf_counter()
    images = load_cached(cfg.data_spec(), allow_download=False).images[idx].numpy()
    probs = Committee.load(run.path, rule).predict_proba(images)
    run.write_teacher(rule, probs)
    log(f"teacher committee:{rule}: soft labels of {len(idx):,} training images in {time.perf_counter() - start:.1f} s")
    return probs
