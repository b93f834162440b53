"""Class probabilities from a trained member, in large batches with no autograd."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from committee.data import to_float

EVAL_BATCH = 1024


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = EVAL_BATCH, device: str = "cpu") -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> float32 logits ``(N, 10)`` (model switched to eval mode)."""
    was_training = model.training
    model.eval()
    out = [model(to_float(images[i:i + batch_size]).to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 10)


def predict_probs(model: nn.Module, images: torch.Tensor, batch_size: int = EVAL_BATCH, device: str = "cpu") -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> softmax probabilities, float32 ``(N, 10)``."""
    return F.softmax(predict_logits(model, images, batch_size, device), dim=1).numpy().astype(np.float32)


def timed_predict_probs(model: nn.Module, images: torch.Tensor, device: str = "cpu") -> tuple[np.ndarray, float]:
    """Probabilities and the seconds it took per 1,000 images (after one warm-up batch)."""
    predict_logits(model, images[:64], device=device)
    start = time.perf_counter()
    probs = predict_probs(model, images, device=device)
    seconds = time.perf_counter() - start
    return probs, 1000.0 * seconds / max(len(images), 1)
