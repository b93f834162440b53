"""The training loop: plain functions, nanoGPT style.

Data stays in memory as uint8; each epoch draws a seeded permutation and slices
batches out of it (no DataLoader). Loss and accuracy are accumulated as tensors
and read once per epoch, so the hot loop never waits on a host sync.

One member is trained in three steps: :func:`setup_member` (model, optimizer,
random generators, and a resumed checkpoint if any), :func:`run_epoch` (one pass
plus validation, history, best weights and checkpoint), :func:`~committee.training.finishing.finish_member`
(best weights back, probabilities on validation and test, member.json).
:func:`train_step` is the one training step, shared with ``committee bench`` and
``benchmarks/engine_ab.py``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from committee.base.console import log
from committee.config.run_config import MemberOptions, RunConfig
from committee.data.augment import AugmentParams, alternating_flip, augment_batch
from committee.data.dataset import Dataset, batches, to_float
from committee.data.splits import Splits
from committee.models.engine import for_engine
from committee.models.inference import predict_logits
from committee.models.layers import fit_whitening, mirror_views_only
from committee.models.registry import ModelSpec, build_model, get_spec
from committee.models.transfer import InitReport
from committee.store.run_dir import RunDir
from committee.training.callbacks import TrainingCallback, statuses
from committee.training.distillation import distillation_loss, soften
from committee.training.fine_tune import freeze_for_epoch, initialise, trainable_names
from committee.training.finishing import finish_member
from committee.training.precision import cache_key, choose, step_rate
from committee.training.step import (
    make_optimizer,
    member_lr_factor,
    member_seed,
    moving_average,
    train_step,
    training_layout,
)


@dataclass
class MemberTraining:
    """One member in training: what setup built and what the epochs update."""

    name: str
    opts: MemberOptions  # cfg.options_for(name)
    spec: ModelSpec
    model_kwargs: dict
    seed: int
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    layout: torch.memory_format
    aug_params: AugmentParams | None
    generators: dict[str, torch.Generator | None]  # "batches", "augment": both in the checkpoint
    x_train: torch.Tensor  # uint8 (N, S, S) or (N, C, S, S)
    y_train: torch.Tensor  # int64 (N,)
    x_val: torch.Tensor
    y_val: torch.Tensor
    batch_size: int
    epochs: int
    device: str
    patience: int | None
    precision: str = "fp32"
    precision_rates: dict = field(default_factory=dict)  # what an auto choice rests on
    ema: AveragedModel | None = None  # the weights' moving average: evaluated and saved when on
    flip_bits: torch.Tensor | None = None  # bool (N,): alternating flips' first-epoch coin per image
    init: InitReport | None = None  # the initial weights loaded from a file (--init), if any
    trainable: set[str] = field(default_factory=set)  # parameter names that train when nothing is frozen
    teacher: torch.Tensor | None = None  # a student's: the committee's softened log-probabilities (N, C)
    history: list[dict] = field(default_factory=list)
    best_acc: float = -1.0
    best_epoch: int = 0
    stale: int = 0
    train_seconds: float = 0.0
    next_epoch: int = 1

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.x_train) // self.batch_size)

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights that are validated and saved: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def state_module(self) -> torch.nn.Module:
        """What the checkpoint holds: the model, and its moving average when there is one."""
        return self.model if self.ema is None else nn.ModuleDict({"net": self.model, "ema": self.ema})

    @property
    def done(self) -> bool:
        stopped = self.patience is not None and bool(self.history) and self.stale >= self.patience
        return stopped or self.next_epoch > self.epochs


def member_model(cfg: RunConfig, name: str, dataset: Dataset) -> tuple[ModelSpec, dict]:
    """A member's architecture and its factory arguments for this dataset's shape and classes."""
    opts = cfg.options_for(name)
    spec = get_spec(opts.arch)
    return spec, spec.kwargs_for(
        opts.bn,
        opts.dropout,
        opts.width,
        dataset.input_shape,
        len(dataset.class_names),
        whiten=opts.whiten,
        dirac=opts.dirac,
        tta=opts.tta,
        standardize=opts.standardize,
    )


def build_member_model(
    spec: ModelSpec, model_kwargs: dict, seed: int, device: str, x_train: torch.Tensor, freeze_bn_scale: bool
) -> tuple[nn.Module, torch.memory_format]:
    """The member's model, seeded, and its training layout (the model in it); whitening fitted, BN scales
    frozen if asked."""
    torch.manual_seed(seed)
    model = for_engine(build_model(spec.name, **model_kwargs))
    is_conv = spec.is_conv if spec.is_conv is not None else any(isinstance(m, nn.Conv2d) for m in model.modules())
    layout = training_layout(is_conv)
    model = model.to(device, memory_format=layout)
    # Whitening filters from the first 5,000 training images (the validation split is never seen).
    fit_whitening(model, to_float(x_train[:5000]))
    if freeze_bn_scale:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.requires_grad_(False)
    return model, layout


def member_augmentation(
    cfg: RunConfig, name: str, opts: MemberOptions, seed: int
) -> tuple[AugmentParams | None, torch.Generator | None]:
    """The member's augmentation ranges and their own generator (so switching augmentation on leaves
    the batch order unchanged)."""
    aug_params = cfg.augment_params(name) if opts.augment else None
    if aug_params is not None and opts.alt_flip:
        aug_params = dataclasses.replace(aug_params, flip=0.0)  # the alternating flip replaces the coin
    return aug_params, torch.Generator().manual_seed(seed + 1) if aug_params else None


def resume_from_checkpoint(t: MemberTraining, run: RunDir) -> None:
    """Continue ``t`` from its checkpoint: weights, optimizer, generators, best epoch and history."""
    state = run.load_checkpoint(t.name, t.state_module, t.optimizer, t.generators)
    t.best_acc, t.best_epoch = state["best_acc"], state["best_epoch"]
    t.stale, t.train_seconds = state["stale"], state["train_seconds"]
    # history.csv may hold one epoch more than the checkpoint if the kill fell between the two writes.
    t.history = run.history(t.name)[: state["epoch"]]
    t.next_epoch = state["epoch"] + 1
    log(f"{t.name:>10} resuming after epoch {state['epoch']}")


def setup_member(
    name: str, dataset: Dataset, splits: Splits, cfg: RunConfig, run: RunDir, device: str = "cpu", resume: bool = False
) -> MemberTraining:
    """Build the member's model, optimizer and generators; continue from its checkpoint when resuming."""
    opts = cfg.options_for(name)
    spec, model_kwargs = member_model(cfg, name, dataset)
    run.start_member(name)
    seed = member_seed(opts.seed, name)
    x_train = dataset.images[splits.train]
    model, layout = build_member_model(spec, model_kwargs, seed, device, x_train, opts.freeze_bn_scale)
    init = initialise(model, name, cfg)  # a resumed checkpoint below replaces these weights
    aug_params, aug_generator = member_augmentation(cfg, name, opts, seed)
    new_optimizer = lambda net: make_optimizer(  # noqa: E731
        net, opts.optimizer, opts.lr, opts.weight_decay, opts.bias_lr, opts.backbone_lr_scale
    )
    optimizer = new_optimizer(model)
    batch_size = cfg.batch_size or spec.batch_size
    shape, n_classes = dataset.input_shape, len(dataset.class_names)
    precision, rates = choose(
        cfg.precision,
        cache_key(device, f"{spec.name} {model_kwargs} batch {batch_size}"),
        lambda p: step_rate(model, new_optimizer, shape, n_classes, batch_size, device, p, layout),
    )
    if rates:
        log(
            f"{name:>10} precision auto: {precision} (fp32 {rates['fp32']:,.0f}, bf16 {rates['bf16']:,.0f} img/s"
            f"{', cached' if rates['cached'] else ''})"
        )
    ema = moving_average(model, opts.ema) if opts.ema else None
    flip_bits = alternating_flip_bits(len(x_train), seed) if opts.alt_flip else None
    t = MemberTraining(
        name,
        opts,
        spec,
        model_kwargs,
        seed,
        model,
        optimizer,
        layout,
        aug_params,
        {"batches": torch.Generator().manual_seed(seed), "augment": aug_generator},
        x_train,
        dataset.labels[splits.train],
        dataset.images[splits.val],
        dataset.labels[splits.val],
        batch_size,
        cfg.epochs_for(name),
        device,
        cfg.patience,
        precision,
        rates,
        ema,
        flip_bits,
        init=init,
        trainable=trainable_names(model),
        teacher=student_labels(run, opts, len(x_train)),
    )
    if resume and run.has_checkpoint(name):
        resume_from_checkpoint(t, run)
    return t


def alternating_flip_bits(n: int, seed: int) -> torch.Tensor:
    """Alternating flips' first-epoch coin per image, bool ``(N,)``."""
    return torch.rand(n, generator=torch.Generator().manual_seed(seed + 2)) < 0.5


def student_labels(run: RunDir, opts: MemberOptions, n_train: int) -> torch.Tensor | None:
    """A student's softened teacher log-probabilities ``(N_train, C)``; None for any other member."""
    if not opts.teacher:
        return None
    return soften(torch.from_numpy(run.teacher_probs(opts.teacher, n_train)), opts.temperature)


def progress_bar(t: MemberTraining, epoch: int, progress: bool | None, status: str = "") -> tqdm | None:
    """progress None: a bar only on a terminal (tqdm's disable=None), so CI logs stay short; False: none."""
    if progress is False:
        return None
    return tqdm(
        total=len(t.x_train),
        unit="img",
        unit_scale=True,
        leave=False,
        disable=None if progress is None else False,
        desc=f"{t.name} {epoch}/{t.epochs}" + (f" | {status}" if status else ""),
        file=sys.stderr,
    )


def train_pass(t: MemberTraining, epoch: int, bar: tqdm | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over the training split: returns the summed loss and the correct count, as tensors
    (read once per epoch, so the hot loop never waits on a host sync)."""
    opts = t.opts
    loss_sum = torch.zeros((), device=t.device)
    correct = torch.zeros((), dtype=torch.int64, device=t.device)
    for step, idx in enumerate(batches(len(t.x_train), t.batch_size, t.generators["batches"])):
        factor = member_lr_factor(opts.schedule, opts.snapshots, epoch, step, t.epochs, t.steps_per_epoch)
        for group in t.optimizer.param_groups:
            group["lr"] = opts.lr * factor * group.get("lr_scale", 1.0)
        x = to_float(t.x_train[idx]).to(t.device, non_blocking=True)
        if t.flip_bits is not None:
            x = alternating_flip(x, t.flip_bits[idx].to(t.device, non_blocking=True), epoch)
        if t.aug_params is not None:
            x = augment_batch(x, t.aug_params, t.generators["augment"])
        x = x.contiguous(memory_format=t.layout)
        y = t.y_train[idx].to(t.device, non_blocking=True)
        loss_fn = None
        if t.teacher is not None:
            soft = t.teacher[idx].to(t.device, non_blocking=True)
            loss_fn = lambda z: distillation_loss(z, y, soft, opts.temperature, opts.alpha, opts.label_smoothing)  # noqa: E731,B023
        loss, logits = train_step(t.model, t.optimizer, x, y, opts.label_smoothing, t.device, t.precision, loss_fn)
        if t.ema is not None:
            t.ema.update_parameters(t.model)
        loss_sum += loss * len(idx)
        correct += (logits.argmax(1) == y).sum()
        if bar is not None:
            bar.update(len(idx))
            if step % 50 == 0:  # the only in-loop sync, and only when a bar is shown
                bar.set_postfix(loss=f"{loss.item():.3f}")
    if bar is not None:
        bar.close()
    return loss_sum, correct


def keep_best(t: MemberTraining, run: RunDir, epoch: int, val_acc: float) -> bool:
    """Save the weights when validation improved, then the checkpoint; returns whether it improved."""
    # Snapshot members keep the weights at the end of each cycle: every epoch's, not the best's.
    improved = val_acc > t.best_acc or t.opts.snapshots >= 2
    if improved:
        t.best_acc, t.best_epoch, t.stale = val_acc, epoch, 0
        run.save_weights(t.name, t.eval_model, epoch)
    else:
        t.stale += 1
    run.save_checkpoint(
        t.name,
        t.state_module,
        t.optimizer,
        t.generators,
        {
            "epoch": epoch,
            "best_acc": t.best_acc,
            "best_epoch": t.best_epoch,
            "stale": t.stale,
            "train_seconds": t.train_seconds,
        },
    )
    return improved


def run_epoch(
    t: MemberTraining, run: RunDir, progress: bool | None = None, callbacks: list[TrainingCallback] | None = None
) -> dict:
    """Train one epoch, validate, write history, best weights and checkpoint; returns the history row."""
    callbacks = callbacks or []
    epoch, n_train = t.next_epoch, len(t.x_train)
    epoch_start = time.perf_counter()
    t.model.train()
    freeze_for_epoch(t.model, epoch, t.opts.freeze_epochs, t.trainable)
    loss_sum, correct = train_pass(t, epoch, progress_bar(t, epoch, progress, statuses(callbacks, t)))
    epoch_train_seconds = time.perf_counter() - epoch_start
    t.train_seconds += epoch_train_seconds

    with mirror_views_only(t.eval_model):  # picking the best epoch needs no translated views
        val_logits = predict_logits(t.eval_model, t.x_val, device=t.device, precision=t.precision)
    val_loss = F.cross_entropy(val_logits, t.y_val).item()
    val_acc = (val_logits.argmax(1) == t.y_val).float().mean().item()
    row = {
        "epoch": epoch,
        "train_loss": loss_sum.item() / n_train,
        "train_acc": correct.item() / n_train,
        "val_loss": val_loss,
        "val_acc": val_acc,
        "lr": t.optimizer.param_groups[0]["lr"],
        "seconds": time.perf_counter() - epoch_start,
    }
    t.history.append(row)
    run.write_history(t.name, t.history)
    improved = keep_best(t, run, epoch, val_acc)
    for cb in callbacks:
        cb.epoch_end(t, row)
    status = statuses(callbacks, t)
    log(
        f"{t.name:>10} epoch {epoch:>3}/{t.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
        f"val loss {val_loss:.4f} acc {val_acc:.4f}  {n_train / epoch_train_seconds:,.0f} img/s  "
        f"{row['seconds']:.1f}s{'  *best' if improved else ''}{'  | ' + status if status else ''}"
    )
    if t.patience is not None and t.stale >= t.patience:
        log(f"{t.name:>10} early stop: no validation improvement for {t.patience} epochs")
    t.next_epoch += 1
    return row


def train_member(
    name: str,
    dataset: Dataset,
    splits: Splits,
    cfg: RunConfig,
    run: RunDir,
    device: str = "cpu",
    progress: bool | None = None,
    resume: bool = False,
    placement: dict | None = None,
    callbacks: list[TrainingCallback] | None = None,
) -> dict:
    """Train one member, keep its best epoch (by validation accuracy), save its probabilities.

    Writes ``members/<name>/{history.csv, weights.safetensors, probs_val.npy,
    probs_test.npy, member.json}`` and returns the member.json dict. ``callbacks``: a time budget,
    the study's clock, trackers (:mod:`committee.training.callbacks`).
    """
    callbacks = callbacks or []
    t = setup_member(name, dataset, splits, cfg, run, device, resume)
    for cb in callbacks:
        cb.member_start(t)
    while True:
        for cb in callbacks:
            cb.epoch_start(t)  # a budget may lower t.epochs here
        if t.done:
            break
        run_epoch(t, run, progress, callbacks)
    info = finish_member(t, dataset, splits, run, placement)
    for cb in callbacks:
        cb.member_end(t, info)
    return info
