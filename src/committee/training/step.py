"""One training step and what it needs: optimizer, learning-rate schedule, moving average of the
weights, seeds, device and memory layout. Shared by the loop, ``committee bench`` and the
precision measurement.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import torch
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel

from committee.base.errors import CommitteeError, UsageError
from committee.models.inference import autocast
from committee.models.transfer import head_parameter_names


def member_seed(seed: int, name: str) -> int:
    """Different members of one run start from different, reproducible seeds."""
    return zlib.crc32(f"{seed}:{name}".encode())


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    return device


def training_layout(is_conv: bool) -> torch.memory_format:
    """channels_last for conv nets (training 1.5-1.8x faster on the seed's CNNs at their batch
    sizes here: ``benchmarks/engine_ab.py``, "contiguous layout" column)."""
    return torch.channels_last if is_conv else torch.contiguous_format


def make_optimizer(
    model: torch.nn.Module,
    kind: str,
    lr: float,
    weight_decay: float = 0.0,
    bias_lr: float = 1.0,
    backbone_lr_scale: float = 1.0,
) -> torch.optim.Optimizer:
    """Adam (the seed's), AdamW or Nesterov SGD over the trainable parameters; weight decay
    skips biases and norm weights, whose learning rate is ``bias_lr`` times the others'
    (each group's ``lr_scale``, applied by the schedule in :func:`run_epoch`). With
    ``backbone_lr_scale`` != 1 everything but the head (:mod:`committee.models.transfer`)
    learns at that fraction of the head's rate (fine-tuning).

    fused: one kernel per parameter group for the whole update, several times faster
    optimizer steps than foreach here (``benchmarks/engine_ab.py``, "foreach Adam" column).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = head_parameter_names(model) if backbone_lr_scale != 1.0 else None
    parts = (
        [(named, 1.0)]
        if head is None
        else [
            ([(n, p) for n, p in named if n not in head], backbone_lr_scale),
            ([(n, p) for n, p in named if n in head], 1.0),
        ]
    )
    groups = []
    for params, scale in parts:
        decay = [p for _, p in params if p.ndim > 1]
        other = [p for _, p in params if p.ndim <= 1]
        groups += [
            {"params": decay, "weight_decay": weight_decay, "lr_scale": scale, "lr": lr * scale},
            {"params": other, "weight_decay": 0.0, "lr_scale": bias_lr * scale, "lr": lr * bias_lr * scale},
        ]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr, fused=True)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, fused=True)
    raise CommitteeError(f"unknown optimizer {kind!r}")


def moving_average(model: torch.nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s weights and buffers whose decay warms up as
    ``min(decay, (1 + n) / (10 + n))`` after n updates, so the first steps' random weights fade
    out quickly (the early average would otherwise be mostly the initialisation).

    n is read from the average's own step count, which stays on the CPU: reading it costs no
    device sync, and a resumed checkpoint restores it.
    """
    ema = AveragedModel(model, use_buffers=True)
    count = ema.n_averaged  # updated in place by update_parameters and by load_state_dict

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], _: torch.Tensor) -> None:
        n = float(count)
        if averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))
        else:  # integer buffers (batch norm's step count) are copied
            torch._foreach_copy_(averaged, current)

    ema.multi_avg_fn = update
    return ema


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The learning rate at ``step`` (0-based) of ``total_steps``, as a fraction of the peak.

    constant: 1. onecycle: linear warm-up from 0.04 to 1 over the first quarter, then
    linear decay to 0 (short budgets, airbench style). cosine: linear warm-up over the
    first 5 %, then half a cosine to 0 (long budgets). A pure function of the step, so a
    resumed run continues on the same curve with no scheduler state to save.
    """
    if schedule == "constant":
        return 1.0
    t = min(step / max(total_steps, 1), 1.0)
    warm = 0.25 if schedule == "onecycle" else 0.05
    if t < warm:
        return 0.04 + 0.96 * t / warm
    rest = (t - warm) / (1 - warm)
    if schedule == "onecycle":
        return 1.0 - rest
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * rest))
    raise CommitteeError(f"unknown schedule {schedule!r}")


def snapshot_ends(epochs: int, snapshots: int) -> list[int]:
    """The last epoch of each of ``snapshots`` cycles in ``epochs``: ``round(k * E / K)``, k = 1..K."""
    return [round(k * epochs / snapshots) for k in range(1, snapshots + 1)]


def member_lr_factor(schedule: str, snapshots: int, epoch: int, step: int, epochs: int, steps_per_epoch: int) -> float:
    """The learning rate at ``step`` (0-based) of ``epoch`` (1-based) as a fraction of the peak: the schedule over
    the whole run, or with ``snapshots`` >= 2 restarted in each cycle (:func:`snapshot_ends`; a constant schedule
    becomes a cosine one: snapshot ensembles, Huang et al. 2017), so each cycle ends at a low rate."""
    if snapshots < 2:
        return lr_factor(schedule, (epoch - 1) * steps_per_epoch + step, epochs * steps_per_epoch)
    ends = snapshot_ends(epochs, snapshots)
    k = next((i for i, end in enumerate(ends) if epoch <= end), len(ends) - 1)
    start = ends[k - 1] if k else 0
    shape = "cosine" if schedule == "constant" else schedule
    return lr_factor(shape, (epoch - 1 - start) * steps_per_epoch + step, (ends[k] - start) * steps_per_epoch)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    label_smoothing: float = 0.0,
    device: str = "cpu",
    precision: str = "fp32",
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch: ``x`` float ``(B, 1, 28, 28)``, ``y`` int64 ``(B,)``.

    ``precision`` fp32 or bf16 (autocast; the loss, weights and optimizer state stay fp32).
    ``loss_fn``: the loss of the fp32 logits ``(B, C)`` instead of cross-entropy (a student's
    distillation loss). Returns the detached loss (a 0-d tensor: reading it would sync) and logits ``(B, 10)``.
    """
    with autocast(device, precision):
        logits = model(x)
        if loss_fn is not None:
            loss = loss_fn(logits.float())
        else:
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()
