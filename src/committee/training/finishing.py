"""What a trained member leaves in the run: its probabilities on validation and test and member.json
(:func:`finish_member`), and the same for each snapshot of a snapshot run (:func:`snapshot_fields`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from committee.data.dataset import Dataset
from committee.data.splits import Splits
from committee.models.inference import timed_predict_probs
from committee.models.layer_table import summary
from committee.models.layers import one_view_only, view_count
from committee.models.registry import build_model, count_params, input_shape_of
from committee.models.user_models import origin_record
from committee.store.run_dir import RunDir
from committee.training.distillation import distilled_from
from committee.training.step import snapshot_ends

if TYPE_CHECKING:  # the loop's own dataclass; only its annotations are needed here
    from committee.training.loop import MemberTraining


def finish_member(
    t: MemberTraining, dataset: Dataset, splits: Splits, run: RunDir, placement: dict | None = None
) -> dict:
    """Reload the best epoch's weights, save validation and test probabilities and member.json; returns it.

    placement: where it was trained (``node``, ``hostname``), recorded in member.json.
    """
    run.load_weights(t.name, t.model)  # the best epoch's weights (its moving average, with --ema)
    probs_val, probs_test, info = member_outputs(t, t.model, dataset, splits, placement)
    one_view, info["infer_seconds_per_1000_1view"] = one_view_outputs(t, t.model, dataset, splits)
    info |= snapshot_fields(t)
    run.finish_member(t.name, probs_val, probs_test, info, one_view)
    return info


def one_view_outputs(
    t: MemberTraining, model: nn.Module, dataset: Dataset, splits: Splits
) -> tuple[tuple[np.ndarray, np.ndarray] | None, float | None]:
    """For a member with test-time views: its probabilities on the plain image alone, validation and test
    ``(N, C)`` each, and their measured seconds per 1,000 images (the confidence cascade's cheap stage,
    ``rules.cascade``); ``(None, None)`` for a member without views."""
    if view_count(model) == 1:
        return None, None
    with one_view_only(model):
        val, _ = timed_predict_probs(model, t.x_val, device=t.device, precision=t.precision)
        test, seconds = timed_predict_probs(model, dataset.images[splits.test], device=t.device, precision=t.precision)
    return (val, test), seconds


def snapshot_fields(t: MemberTraining, k: int | None = None) -> dict:
    """member.json fields of snapshot ``k`` (default: the last, the run's own) of a snapshot run: its name, its
    cycle's epochs, its validation accuracy and its cycle's seconds (so a snapshot committee costs one run)."""
    if t.opts.snapshots < 2:
        return {}
    ends = snapshot_ends(t.epochs, t.opts.snapshots)
    k = k or len(ends)
    start, end = (ends[k - 2] if k > 1 else 0), ends[k - 1]
    rows = [r for r in t.history if start < r["epoch"] <= end]
    return {
        "name": f"{t.opts.snapshot_of}.s{k}",
        "snapshot": {"of": t.opts.snapshot_of, "k": k, "snapshots": len(ends), "epochs": [start + 1, end]},
        "epochs_run": end,
        "best_epoch": end,
        "best_val_acc": rows[-1]["val_acc"] if rows else t.best_acc,
        "train_seconds": sum(r["seconds"] for r in rows),
    }


def member_outputs(
    t: MemberTraining, model: nn.Module, dataset: Dataset, splits: Splits, placement: dict | None = None
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``model``'s probabilities on validation and test ``(N, C)`` and the member.json of ``t`` with them."""
    probs_val, _ = timed_predict_probs(model, t.x_val, device=t.device, precision=t.precision)
    probs_test, infer_s_per_1000 = timed_predict_probs(
        model, dataset.images[splits.test], device=t.device, precision=t.precision
    )
    n_train = len(t.x_train)
    # The layer table of the model as the registry builds it (flip-TTA models run their net twice:
    # summary records each layer once).
    layers = summary(build_model(t.spec.name, **t.model_kwargs), (1, *input_shape_of(t.model_kwargs)))
    info = {
        "name": t.name,
        "arch": t.spec.name,
        "model_kwargs": t.model_kwargs,
        "augment": vars(t.aug_params) if t.aug_params else None,
        "description": t.spec.description,
        **({"origin": origin_record(t.spec)} if not t.spec.builtin else {}),
        **({"init": t.init.to_dict()} if t.init else {}),
        "params": count_params(model),
        "layers": layers,
        "epochs_run": len(t.history),
        "epochs_planned": t.epochs,
        "best_epoch": t.best_epoch,
        "best_val_acc": t.best_acc,
        "batch_size": t.batch_size,
        "lr": t.opts.lr,
        "recipe": t.opts.recipe(),
        **({"distilled_from": distilled_from(t.opts)} if t.opts.teacher else {}),
        "precision": t.precision,
        **({"precision_rates": t.precision_rates} if t.precision_rates else {}),
        "seed": t.seed,
        "train_seconds": t.train_seconds,
        "train_images_per_s": n_train * len(t.history) / t.train_seconds if t.train_seconds else None,
        "infer_seconds_per_1000": infer_s_per_1000,
        "device": t.device,
        "threads": torch.get_num_threads(),
        **(placement or {}),
    }
    return probs_val, probs_test, info
