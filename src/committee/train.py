"""The training loop: a plain function, nanoGPT style.

Data stays in memory as uint8; each epoch draws a seeded permutation and slices
batches out of it (no DataLoader). Loss and accuracy are accumulated as tensors
and read once per epoch, so the hot loop never waits on a host sync.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from committee.augment import augment_batch
from committee.config import RunConfig
from committee.data import Dataset, Splits, batches, to_float
from committee.engine import for_engine
from committee.errors import CommitteeError
from committee.fileio import atomic_path, write_json, write_npy, write_text
from committee.models import build_model, count_params, get_spec
from committee.predict import predict_logits, timed_predict_probs
from committee.rundir import RunDir, history_csv, read_history
from committee.weights import load_weights, save_weights


def member_seed(seed: int, name: str) -> int:
    """Different members of one run start from different, reproducible seeds."""
    return zlib.crc32(f"{seed}:{name}".encode())


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        from committee.errors import UsageError
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    return device


def training_layout(is_conv: bool) -> torch.memory_format:
    """channels_last for conv nets: 1.2-1.3x faster training steps here at batch 32-64
    (benchmarks/engine_ab.py), though slower at batch 128 and above."""
    return torch.channels_last if is_conv else torch.contiguous_format


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_member(
    name: str,
    dataset: Dataset,
    splits: Splits,
    cfg: RunConfig,
    run: RunDir,
    device: str = "cpu",
    progress: bool | None = None,
    resume: bool = False,
) -> dict:
    """Train one member, keep its best epoch (by validation accuracy), save its probabilities.

    Writes ``members/<name>/{history.csv, weights.safetensors, probs_val.npy,
    probs_test.npy, member.json}`` and returns the member.json dict.
    """
    opts = cfg.options_for(name)
    spec = get_spec(opts["arch"])
    out = run.member_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    seed = member_seed(opts["seed"], name)
    torch.manual_seed(seed)
    model_kwargs = spec.kwargs_for(opts["bn"], opts["dropout"], opts["width"])
    layout = training_layout(spec.is_conv)
    model = for_engine(build_model(spec.name, **model_kwargs)).to(device, memory_format=layout)
    aug_params = cfg.augment_params(name) if opts["augment"] else None
    # Its own generator, so switching augmentation on leaves the batch order unchanged.
    aug_generator = torch.Generator().manual_seed(seed + 1) if aug_params else None
    optimizer = make_optimizer(model, opts["optimizer"], opts["lr"], opts["weight_decay"])
    generator = torch.Generator().manual_seed(seed)

    x_train, y_train = dataset.images[splits.train], dataset.labels[splits.train]
    x_val, y_val = dataset.images[splits.val], dataset.labels[splits.val]
    n_train = len(x_train)
    batch_size = cfg.batch_size or spec.batch_size
    epochs = cfg.epochs_for(name)
    steps_per_epoch = -(-n_train // batch_size)

    history: list[dict] = []
    best_acc, best_epoch, stale = -1.0, 0, 0
    train_seconds = 0.0
    checkpoint = out / "checkpoint.safetensors"
    generators = {"batches": generator, "augment": aug_generator}
    start_epoch = 1
    if resume and checkpoint.exists():
        state = load_checkpoint(checkpoint, model, optimizer, generators)
        best_acc, best_epoch, stale, train_seconds = state["best_acc"], state["best_epoch"], state["stale"], state["train_seconds"]
        # history.csv may hold one epoch more than the checkpoint if the kill fell between the two writes.
        history = read_history(out / "history.csv")[: state["epoch"]]
        start_epoch = state["epoch"] + 1
        log(f"{name:>10} resuming after epoch {state['epoch']}")
    stopped_early = bool(history) and cfg.patience is not None and stale >= cfg.patience
    for epoch in range(start_epoch, epochs + 1 if not stopped_early else start_epoch):
        epoch_start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        # progress None: a bar only on a terminal (tqdm's disable=None), so CI logs stay short.
        bar = None if progress is False else tqdm(
            total=n_train, unit="img", unit_scale=True, leave=False, disable=None if progress is None else False,
            desc=f"{name} {epoch}/{epochs}", file=sys.stderr)
        for step, idx in enumerate(batches(n_train, batch_size, generator)):
            factor = lr_factor(opts["schedule"], (epoch - 1) * steps_per_epoch + step, epochs * steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = opts["lr"] * factor
            x = to_float(x_train[idx]).to(device, non_blocking=True)
            if aug_params is not None:
                x = augment_batch(x, aug_params, aug_generator)
            x = x.contiguous(memory_format=layout)
            y = y_train[idx].to(device, non_blocking=True)
            with mixed_precision(device):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=opts["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == y).sum()
            if bar is not None:
                bar.update(len(idx))
                if step % 50 == 0:  # the only in-loop sync, and only when a bar is shown
                    bar.set_postfix(loss=f"{loss.item():.3f}")
        if bar is not None:
            bar.close()
        epoch_train_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_train_seconds

        val_logits = predict_logits(model, x_val, device=device)
        val_loss = F.cross_entropy(val_logits, y_val).item()
        val_acc = (val_logits.argmax(1) == y_val).float().mean().item()
        row = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / n_train,
            "train_acc": correct.item() / n_train,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(row)
        write_text(out / "history.csv", history_csv(history))
        improved = val_acc > best_acc
        if improved:
            best_acc, best_epoch, stale = val_acc, epoch, 0
            save_weights(model, out / "weights.safetensors", {"model": name, "epoch": str(epoch)})
        else:
            stale += 1
        save_checkpoint(checkpoint, model, optimizer, generators, {
            "epoch": epoch, "best_acc": best_acc, "best_epoch": best_epoch, "stale": stale, "train_seconds": train_seconds})
        log(f"{name:>10} epoch {epoch:>3}/{epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}  {n_train / epoch_train_seconds:,.0f} img/s  "
            f"{row['seconds']:.1f}s{'  *best' if improved else ''}")
        if cfg.patience is not None and stale >= cfg.patience:
            log(f"{name:>10} early stop: no validation improvement for {cfg.patience} epochs")
            break

    load_weights(model, out / "weights.safetensors")
    probs_val, _ = timed_predict_probs(model, x_val, device=device)
    probs_test, infer_s_per_1000 = timed_predict_probs(model, dataset.images[splits.test], device=device)
    write_npy(out / "probs_val.npy", probs_val)
    write_npy(out / "probs_test.npy", probs_test)
    info = {
        "name": name,
        "arch": spec.name,
        "model_kwargs": model_kwargs,
        "augment": vars(aug_params) if aug_params else None,
        "description": spec.description,
        "params": count_params(model),
        "epochs_run": len(history),
        "epochs_planned": epochs,
        "best_epoch": best_epoch,
        "best_val_acc": best_acc,
        "batch_size": batch_size,
        "lr": opts["lr"],
        "recipe": {k: opts[k] for k in ("optimizer", "schedule", "weight_decay", "label_smoothing")},
        "seed": seed,
        "train_seconds": train_seconds,
        "train_images_per_s": n_train * len(history) / train_seconds if train_seconds else None,
        "infer_seconds_per_1000": infer_s_per_1000,
        "device": device,
    }
    write_json(out / "member.json", info)
    run.record(out / "weights.safetensors", out / "probs_val.npy", out / "probs_test.npy", out / "member.json")
    checkpoint.unlink(missing_ok=True)  # finished: member.json marks it done
    return info


def mixed_precision(device: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed); plain fp32 on CPU, where bf16 is
    3-10x slower on this machine's cores (no AVX512-BF16, ANCHORS.md)."""
    if str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(model: torch.nn.Module, kind: str, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (the seed's), AdamW or Nesterov SGD; weight decay skips biases and norm weights.

    fused: one kernel per parameter group for the whole update, 2.6-2.8x faster optimizer
    steps than foreach here (deep_cnn's Adam step 1.23 -> 0.45 ms; resnet's SGD step 0.48 ->
    0.17 ms), worth 1-3 % of a training step.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr, fused=True)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, fused=True)
    raise CommitteeError(f"unknown optimizer {kind!r}")


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


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generators: dict[str, torch.Generator | None], state: dict) -> None:
    """Everything needed to continue bit-for-bit: weights, optimizer moments, every RNG, loop state.

    One safetensors file (no pickle), written atomically; loop state and optimizer
    hyper-parameters go in its string metadata as JSON.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    for idx, st in opt_state["state"].items():
        for key, value in st.items():
            tensors[f"optim.{idx}.{key}"] = (value if torch.is_tensor(value) else torch.tensor(value)).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    for key, gen in generators.items():
        if gen is not None:
            tensors[f"rng.{key}"] = gen.get_state()
    metadata = {"state": json.dumps(state), "param_groups": json.dumps(opt_state["param_groups"])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generators: dict[str, torch.Generator | None]) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns the loop state."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        state = json.loads(metadata["state"])
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt_state: dict = {"state": {}, "param_groups": json.loads(metadata["param_groups"])}
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                param = params[int(idx)]
                if value.shape == param.shape:
                    # Moments back in their parameter's memory layout (channels_last conv weights):
                    # the fused step walks param, grad and moments in storage order.
                    value = torch.empty_like(param).copy_(value)
                opt_state["state"].setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict(opt_state)
        torch.set_rng_state(tensors["rng.torch"])
        for key, gen in generators.items():
            if gen is not None:
                gen.set_state(tensors[f"rng.{key}"])
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CommitteeError(f"{path}: unusable checkpoint ({str(exc).splitlines()[0]}); delete it to start this member over") from None
    return state


def save_run_inputs(run: RunDir, cfg: RunConfig, dataset: Dataset, splits: Splits, device: str, data_info: dict) -> None:
    """config.json, data.json, splits.npz and the validation/test labels at the run root."""
    import platform

    env = {
        "committee": __import__("committee").__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": torch.get_num_threads(),
    }
    run.path.mkdir(parents=True, exist_ok=True)
    cfg.save(run.config_path, extra=env)
    write_json(run.path / "data.json", data_info)
    labels = dataset.labels.numpy()
    write_npy(run.path / "labels_val.npy", labels[splits.val])
    write_npy(run.path / "labels_test.npy", labels[splits.test])
    for name, idx in splits.items():
        write_npy(run.path / "splits" / f"{name}.npy", idx)
    run.record(run.path / "labels_val.npy", run.path / "labels_test.npy", *(run.path / "splits" / f"{s}.npy" for s, _ in splits.items()))
