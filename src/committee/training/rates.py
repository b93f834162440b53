"""How fast a member trains and predicts on this machine, measured in a few seconds: what a time limit plans with.

The training rate is the member's own step at its precision (``auto``: the faster of fp32 and
bf16, the same measurement and cache entry as :func:`committee.training.loop.setup_member`, so
training does not measure again). Inference is timed in eval mode at the two view counts the run
uses: mirror views only (each epoch's validation) and every view (the final predictions). Rates
are cached per processor, torch version, threads, architecture, batch size and precision in
``~/.cache/committee/rates.json``; a damaged or read-only cache only means measuring again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch

from committee.base.fileio import write_bytes
from committee.base.machine import cache_dir
from committee.config.run_config import RunConfig
from committee.data.dataset import Dataset
from committee.models.inference import predict_logits
from committee.models.layers import mirror_views_only
from committee.models.registry import build_model
from committee.training.loop import build_member_model, member_model
from committee.training.precision import cache_key, choose, read_cache, step_rate
from committee.training.step import make_optimizer

# The loop's work beyond the bare step (augmentation, the weights' moving average, alternating flips,
# the learning-rate update): the fast recipe's epochs took 20.2 s on the 2-core Xeon against 18.1 s of
# bare steps (2,980 img/s) and 2.1 s of validation: 1.0-1.1x. The budget corrects what is left after
# the first epochs (down, and back up to the plan).
LOOP_OVERHEAD = 1.05


@dataclass(frozen=True)
class MemberRates:
    """images/second of one member: training (bare step), validation views and all views."""

    precision: str
    train: float
    infer_val: float
    infer_final: float
    cached: bool = False

    def epoch_seconds(self, n_train: int, n_val: int) -> float:
        """One epoch of training plus its validation pass."""
        return LOOP_OVERHEAD * n_train / self.train + n_val / self.infer_val

    def final_seconds(self, n_val: int, n_test: int) -> float:
        """The member's final predictions: validation and test at every view, twice (timed warm-up included)."""
        return (n_val + n_test) / self.infer_final


def infer_rate(model: torch.nn.Module, shape: tuple[int, ...], precision: str, seconds: float = 0.5) -> float:
    """Eval-mode images/second of ``model`` on random uint8 images ``(512, *shape)``."""
    images = torch.randint(0, 256, (512, *shape), dtype=torch.uint8)
    predict_logits(model, images[:128], precision=precision)  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        predict_logits(model, images, precision=precision)
        n += len(images)
    return n / (time.perf_counter() - start)


def measure(cfg: RunConfig, member: str, dataset: Dataset, device: str = "cpu") -> MemberRates:
    """The member's rates on this machine (cached; see the module docstring)."""
    opts = cfg.options_for(member)
    spec, kwargs = member_model(cfg, member, dataset)
    batch = cfg.batch_size or spec.batch_size
    what = f"{spec.name} {kwargs} batch {batch}"
    key = f"{cache_key(device, what)} | {cfg.precision}"
    path = cache_dir("rates.json")
    cache = read_cache(path)
    if key in cache:
        return MemberRates(**{**cache[key], "cached": True})
    shape = dataset.images.shape[1:]
    model, layout = build_member_model(spec, kwargs, 0, device, dataset.images[:512], opts.freeze_bn_scale)
    new_optimizer = lambda net: make_optimizer(  # noqa: E731
        net, opts.optimizer, opts.lr, opts.weight_decay, opts.bias_lr, opts.backbone_lr_scale
    )
    n_classes = len(dataset.class_names)
    input_shape = dataset.input_shape
    precision, auto_rates = choose(
        cfg.precision,
        cache_key(device, what),
        lambda p: step_rate(model, new_optimizer, input_shape, n_classes, batch, device, p, layout),
    )
    train = auto_rates.get(precision) or step_rate(
        model, new_optimizer, input_shape, n_classes, batch, device, precision, layout
    )
    fresh = build_model(spec.name, **kwargs)
    with mirror_views_only(fresh):
        val = infer_rate(fresh, shape, precision)
    rates = MemberRates(precision, train, val, infer_rate(fresh, shape, precision))
    entry = {k: v for k, v in asdict(rates).items() if k != "cached"}
    try:
        write_bytes(path, json.dumps({**read_cache(path), key: entry}, indent=1).encode())
    except OSError:
        pass  # a read-only home: measure again next time
    return rates
