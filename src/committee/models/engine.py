"""Rewrite a model into a faster form that computes the same function.

The registry builds models the way the seed (and a tutorial) writes them; training
and inference run :func:`for_engine`'s rewrite of them. Two rewrites, both measured
on this 2-core CPU with ``committee bench`` and ``benchmarks/engine_ab.py``:

* ``ReLU -> MaxPool2d`` becomes ``MaxPool2d -> ReLU``. ReLU is monotonic, so the
  max of the rectified window is the rectified max: outputs *and gradients* are
  bit-for-bit the same, but ReLU and its backward touch 4x fewer elements. In
  ``deep_cnn``'s profile ReLU backward alone was 11 % of the training step.
* ``nn.Dropout`` becomes :class:`FastDropout`. PyTorch's CPU dropout draws one
  ``bernoulli_`` per element (21 % of ``bn_cnn``'s step); FastDropout draws 16
  random bits per element from 64-bit words, ~6x faster, with the same keep
  probability (to 1/65536) and the same inverted scaling.

Parameter-free modules only move or change class, so state_dict keys are
unchanged and weights load into either form.
"""

from __future__ import annotations

import torch
from torch import nn

_INT64 = torch.iinfo(torch.int64)


def keep_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Boolean tensor shaped and strided like ``like``: True with probability ``1 - p``.

    Each element gets 16 random bits (four per int64 word from the global torch RNG),
    so ``p`` is honoured to 1/65536.
    """
    n = like.numel()
    words = torch.randint(_INT64.min, _INT64.max, (-(-n // 4),), dtype=torch.int64, device=like.device)
    bits = words.view(torch.int16)[:n]
    # int16 bits are uniform on [-32768, 32767]: drop the lowest round(p * 65536) values.
    mask = bits >= -32768 + round(p * 65536)
    # i.i.d. bits, so any layout is as good as any other: match a channels_last input's strides
    # so the multiply that follows runs without a layout conversion.
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return mask.as_strided(like.shape, like.stride())
    return mask.view(like.shape)


class FastDropout(nn.Dropout):
    """Inverted dropout like ``nn.Dropout`` (zero with probability p, scale kept values by 1/(1-p)),
    with a cheaper mask on CPU. Identity in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        scale = keep_mask(x, self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * scale


def for_engine(model: nn.Module) -> nn.Module:
    """Rewrite ``model`` in place into its faster equivalent form (see the module doc); returns it."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is nn.Dropout:
                setattr(module, name, FastDropout(child.p))
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if type(module[i]) is nn.ReLU and type(module[i + 1]) is nn.MaxPool2d:
                    module[i], module[i + 1] = module[i + 1], module[i]
    return model
