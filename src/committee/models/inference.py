"""Class probabilities from a trained member, with no autograd, in the fastest layout.

Conv members are evaluated on a channels_last copy in batches of 128, which ran
several times faster than the default layout at batch 1024 on 2 cores
(``benchmarks/engine_ab.py``, its two "inference" rows; figures in
``benchmarks/results/``).
"""

from __future__ import annotations

import contextlib
import copy
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from committee.data.dataset import to_float

CONV_BATCH = 128


DENSE_BATCH = 1024


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _is_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@torch.inference_mode()
def predict_logits(
    model: nn.Module, images: torch.Tensor, device: str = "cpu", precision: str = "fp32"
) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> float32 logits ``(N, 10)``, in eval mode; ``model`` is left as it was.

    ``precision`` bf16: autocast (see :mod:`committee.training.precision`)."""
    conv = _is_conv(model)
    if conv:
        # A copy, so training keeps its own layout; copying <1M parameters takes milliseconds.
        net = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
        layout, batch = torch.channels_last, CONV_BATCH
    else:
        was_training, net = model.training, model.eval()
        layout, batch = torch.contiguous_format, DENSE_BATCH
    with autocast(device, precision):
        out = [
            net(to_float(images[i : i + batch]).to(device).contiguous(memory_format=layout)).float().cpu()
            for i in range(0, len(images), batch)
        ]
    if not conv:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 10)


def predict_probs(model: nn.Module, images: torch.Tensor, device: str = "cpu", precision: str = "fp32") -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> softmax probabilities, float32 ``(N, 10)``."""
    return F.softmax(predict_logits(model, images, device, precision), dim=1).numpy().astype(np.float32)


def timed_predict_probs(
    model: nn.Module, images: torch.Tensor, device: str = "cpu", precision: str = "fp32"
) -> tuple[np.ndarray, float]:
    """Probabilities and the seconds they took per 1,000 images (after a warm-up batch)."""
    predict_logits(model, images[:CONV_BATCH], device=device, precision=precision)
    start = time.perf_counter()
    probs = predict_probs(model, images, device=device, precision=precision)
    seconds = time.perf_counter() - start
    return probs, 1000.0 * seconds / max(len(images), 1)
