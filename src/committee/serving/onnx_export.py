"""Export a whole committee (members and its rule) as one ONNX graph.

Input ``images``: ``(N, C, S, S)`` (Fashion-MNIST: ``(N, 1, 28, 28)``), uint8 in [0, 255] or float in [0, 1] (one graph
per dtype; choose with ``--input-dtype``). Output ``probabilities``: ``(N, K)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from committee.base.errors import CommitteeError, UsageError
from committee.base.fileio import atomic_path, remove_stale_temps
from committee.rules.committee_rules import EXPORTABLE_RULES


class Committee(Protocol):
    """What export reads of a trained committee (:class:`committee.serving.trained.Committee`)."""

    rule: str
    rule_params_: dict
    members_: dict[str, nn.Module]
    input_shape: tuple[int, int, int]


class CommitteeModule(nn.Module):
    """Members + a fitted rule as one module: images ``(N, C, S, S)`` -> probabilities ``(N, K)``."""

    def __init__(
        self,
        members: list[nn.Module],
        weights: list[float] | None,
        vote: bool = False,
        uint8_input: bool = False,
        temperature: float | None = None,
    ):
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


def build_committee_module(committee: Committee, uint8_input: bool) -> CommitteeModule:
    """A trained committee's members and fitted rule as one module."""
    if committee.rule not in EXPORTABLE_RULES:
        raise UsageError(f"rule {committee.rule!r} cannot be exported; choose from {', '.join(EXPORTABLE_RULES)}")
    params = committee.rule_params_
    return CommitteeModule(
        list(committee.members_.values()),
        params.get("weights"),
        vote=committee.rule == "vote",
        uint8_input=uint8_input,
        temperature=params.get("temperature"),
    ).eval()


def export_onnx(committee: Committee, out: Path, input_dtype: str = "uint8") -> Path:
    """Write the committee as ONNX (atomically) and return its path."""
    try:
        import onnx  # noqa: F401  (optional: pip install 'committee[export]')
    except ImportError:
        raise CommitteeError(
            "ONNX export needs the onnx and onnxscript packages: pip install 'committee[export]'"
        ) from None
    module = build_committee_module(committee, input_dtype == "uint8")
    shape = (2, *committee.input_shape)
    example = torch.randint(0, 256, shape, dtype=torch.uint8) if input_dtype == "uint8" else torch.rand(shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    remove_stale_temps(out)  # left by an export that was killed
    with atomic_path(out) as tmp:
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        program.save(str(tmp))
    return out
