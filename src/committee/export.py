"""Export a whole committee (members and its rule) as one ONNX graph.

Input ``images``: ``(N, C, S, S)`` (Fashion-MNIST: ``(N, 1, 28, 28)``), uint8 in [0, 255] or float in [0, 1] (one graph
per dtype; choose with ``--input-dtype``). Output ``probabilities``: ``(N, K)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from committee.ensemble import DEFAULT_RULE, EXPORTABLE_RULES
from committee.errors import CommitteeError, UsageError


class CommitteeModule(nn.Module):
    """Members + a fitted rule as one module: images ``(N, C, S, S)`` -> probabilities ``(N, K)``."""

    def __init__(self, members: list[nn.Module], weights: list[float] | None, vote: bool = False, uint8_input: bool = False,
                 temperature: float | None = None):
        super().__init__()
        self.members = nn.ModuleList(members)
        w = torch.tensor(weights if weights is not None else [1.0] * len(members), dtype=torch.float32)
        self.register_buffer("weights", w / w.sum())
        self.vote, self.uint8_input, self.temperature = vote, uint8_input, temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if self.uint8_input else images
        if self.vote:
            # Hard vote: the share of members whose top class is c (ties resolved by argmax: lowest index).
            logits = [m(x) for m in self.members]
            outs = [F.one_hot(z.argmax(dim=1), z.shape[1]).float() for z in logits]
            return torch.stack(outs).mean(dim=0)
        probs = torch.stack([F.softmax(m(x), dim=1) for m in self.members])  # (M, N, K)
        mean = (probs * self.weights[:, None, None]).sum(dim=0)
        if self.temperature is None:
            return mean
        # ensemble.temperature_scale: softmax(log p / T)
        return F.softmax(torch.log(mean.clamp_min(1e-15)) / self.temperature, dim=1)


def build_committee_module(run_dir: str | Path, rule: str, uint8_input: bool) -> CommitteeModule:
    """The run's finished members and its fitted ``rule`` as one module."""
    from committee.pipeline import load_committee

    if rule not in EXPORTABLE_RULES:
        raise UsageError(f"rule {rule!r} cannot be exported; choose from {', '.join(EXPORTABLE_RULES)}")
    models, params = load_committee(run_dir, rule)
    return CommitteeModule(list(models.values()), params.get("weights"), vote=rule == "vote", uint8_input=uint8_input,
                           temperature=params.get("temperature")).eval()


def export_onnx(run_dir: str | Path, out: Path, rule: str = DEFAULT_RULE, input_dtype: str = "uint8") -> Path:
    """Write the committee as ONNX (atomically) and return its path."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise CommitteeError("ONNX export needs the onnx and onnxscript packages: pip install 'committee[export]'") from None
    from committee.fileio import atomic_path

    from committee.rundir import RunDir

    module = build_committee_module(run_dir, rule, input_dtype == "uint8")
    shape = (2, *RunDir(run_dir).input_shape())
    example = torch.randint(0, 256, shape, dtype=torch.uint8) if input_dtype == "uint8" else torch.rand(shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    with atomic_path(out) as tmp:
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=["images"],
                                    output_names=["probabilities"], dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(tmp))
    return out
