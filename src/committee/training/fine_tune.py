"""Fine-tuning a member: its initial weights from a file (``--init``), and its head trained alone for the
first epochs (``--freeze-epochs``). The backbone's learning-rate fraction is an optimizer group
(:func:`committee.training.step.make_optimizer`)."""

from __future__ import annotations

from torch import nn

from committee.base.console import log
from committee.config.run_config import RunConfig
from committee.models.transfer import InitReport, load_matching, set_backbone_frozen
from committee.store.init_weights import read_init_state


def initialise(model: nn.Module, member: str, cfg: RunConfig, quiet: bool = False) -> InitReport | None:
    """Load ``cfg.init[member]`` into ``model`` (strict, or what fits with ``cfg.init_partial``); None
    when the member starts from scratch. Logs one line of what was loaded and what was not."""
    source = cfg.init.get(member)
    if source is None:
        return None
    state, path, sha = read_init_state(source)
    report = load_matching(model, state, cfg.init_partial, str(path), sha)
    if not quiet:
        log(f"{member:>10} init from {path}: {report.summary()}")
    return report


def trainable_names(model: nn.Module) -> set[str]:
    """The parameters that train when nothing is frozen (batch-norm scales may be fixed already)."""
    return {name for name, p in model.named_parameters() if p.requires_grad}


def freeze_for_epoch(model: nn.Module, epoch: int, freeze_epochs: int, trainable: set[str]) -> None:
    """Head only during epochs 1..freeze_epochs, everything after (a pure function of the epoch, so a
    resumed run freezes the same epochs). Call after ``model.train()``."""
    if freeze_epochs:
        set_backbone_frozen(model, epoch <= freeze_epochs, trainable)
