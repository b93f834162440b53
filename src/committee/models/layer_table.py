"""A Keras-style layer table of a model: each layer's output shape and parameter count."""

from __future__ import annotations

import torch
from torch import nn

from committee.models.registry import count_params, get_spec


def summary(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[dict]:
    """Keras-style rows ``{"layer", "type", "output_shape", "params"}`` for every leaf module."""
    rows: list[dict] = []
    seen: set[str] = set()
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()) or isinstance(module, nn.Identity):
            continue

        def hook(mod, inp, out, name=name):
            if name in seen:  # a module run twice (flip test-time augmentation) is one layer
                return
            seen.add(name)
            rows.append(
                {
                    "layer": name,
                    "type": type(mod).__name__,
                    "output_shape": [None, *out.shape[1:]],
                    "params": sum(p.numel() for p in mod.parameters() if p.requires_grad),
                }
            )

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return rows


def format_summary(name: str, model: nn.Module) -> str:
    """A Keras-style layer table of ``model`` (``committee models --summary NAME``)."""
    lines = [
        f"Model: {name}  ({get_spec(name).description})",
        f"{'Layer (type)':<34}{'Output Shape':<22}{'Param #':>10}",
        "=" * 66,
    ]
    for r in summary(model):
        shape = "(" + ", ".join("None" if s is None else str(s) for s in r["output_shape"]) + ")"
        lines.append(f"{r['layer'] + ' (' + r['type'] + ')':<34}{shape:<22}{r['params']:>10,}")
    buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    lines += [
        "=" * 66,
        f"Trainable params: {count_params(model):,}" + (f"   (+{buffers:,} BN running statistics)" if buffers else ""),
    ]
    return "\n".join(lines)
