"""Starting a model from weights trained elsewhere: loading what fits, and telling its head from its backbone.

The *head* is the last ``nn.Linear`` of a model (or its ``head`` attribute when it has one): the
layer that maps features to class logits. Everything else is the *backbone*. Fine-tuning trains
the head alone for the first epochs (``--freeze-epochs``) and the backbone at a fraction of the
learning rate (``--backbone-lr-scale``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from committee.base.errors import CommitteeError


def head_module(model: nn.Module) -> nn.Module:
    """The model's head: its ``head`` attribute, else its last ``nn.Linear`` (one line if it has neither)."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise CommitteeError(
            f"{type(model).__name__}: no head to fine-tune (no nn.Linear layer and no `head` attribute)"
        )
    return linears[-1]


def head_parameter_names(model: nn.Module) -> set[str]:
    """Names (as in ``model.named_parameters()``) of the head's parameters."""
    head = {id(p) for p in head_module(model).parameters()}
    return {name for name, p in model.named_parameters() if id(p) in head}


def set_backbone_frozen(model: nn.Module, frozen: bool, trainable: set[str]) -> None:
    """Freeze (or unfreeze) everything but the head: no gradient, and batch-norm statistics kept as they
    are (eval mode) while frozen. ``trainable``: the parameters that train when nothing is frozen."""
    head = head_parameter_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable and (name in head or not frozen))
    if frozen:
        head_ids = {id(m) for m in head_module(model).modules()}
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in head_ids:
                m.eval()


@dataclass
class InitReport:
    """What an initialisation loaded into a model, by tensor name."""

    file: str
    sha256: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the file: kept as initialised
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model: ignored
    reshaped: list[str] = field(default_factory=list)  # in both, other shapes: kept as initialised

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: how many tensors were loaded, and which were not."""
        parts = [f"{len(self.loaded)} tensors loaded"]
        for what in ("reshaped", "missing", "unexpected"):
            names = getattr(self, what)
            if names:
                parts.append(f"{what} {len(names)} ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
        return ", ".join(parts)


def shape_text(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def load_matching(
    model: nn.Module, state: dict[str, torch.Tensor], partial: bool, file: str = "", sha256: str = ""
) -> InitReport:
    """Copy the tensors of ``state`` into ``model`` by name. Strict (``partial`` False): every tensor of the
    model must be in the file with its shape, and nothing else; else one line naming the first few that
    do not fit. Partial: load those that fit, keep the others as initialised. Returns what happened."""
    own = model.state_dict()
    report = InitReport(file, sha256)
    for name, target in own.items():
        if name not in state:
            report.missing.append(name)
        elif tuple(state[name].shape) != tuple(target.shape):
            report.reshaped.append(name)
        else:
            report.loaded.append(name)
    report.unexpected = [k for k in state if k not in own]
    if not partial and (report.missing or report.unexpected or report.reshaped):
        shapes = [f"{k} {shape_text(state[k])} in the file vs {shape_text(own[k])}" for k in report.reshaped[:3]]
        problems = [
            *([f"shapes: {'; '.join(shapes)}"] if shapes else []),
            *([f"missing: {', '.join(report.missing[:4])}"] if report.missing else []),
            *([f"unexpected: {', '.join(report.unexpected[:4])}"] if report.unexpected else []),
        ]
        raise CommitteeError(
            f"{file}: weights do not fit the model ({'; '.join(problems)}); --init-partial loads what fits"
        )
    if not report.loaded:
        first = next(iter(state))
        raise CommitteeError(f"{file}: no tensor in it fits the model by name and shape (its first: {first})")
    with torch.no_grad():
        for name in report.loaded:
            own[name].copy_(state[name].to(own[name].dtype))
    return report
