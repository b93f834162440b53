"""Knowledge distillation (Hinton et al. 2015): one student trained on a committee's soft labels.

The loss of a batch, with student logits ``z`` ``(B, C)``, labels ``y`` ``(B,)`` and the teacher's
probabilities ``p`` ``(B, C)``, at temperature ``T`` and soft weight ``alpha``::

    q_T = softmax(log p / T)                       # the teacher softened (its own logits up to a constant)
    loss = alpha * T^2 * KL(q_T || softmax(z / T))  # batch mean of sum_c q_T,c (log q_T,c - log_softmax(z / T)_c)
         + (1 - alpha) * cross_entropy(z, y)

``T^2`` keeps the soft term's gradients the same size as the hard term's when ``T`` changes.

The teacher's probabilities are computed once per training image (unaugmented) and cached in the run
(``teachers/<rule>.npy``): an augmented view learns its source image's soft label. Computing them per
augmented batch instead would run every member forward on every step, K more forward passes per step
(K members); the augmentations used here (small shifts, flips, erasing) keep an image's class, and the
cached labels cost one inference pass over the training split.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def soften(teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's probabilities ``(N, C)`` at ``temperature``: ``softmax(log p / T)``, as log-probabilities."""
    return torch.log_softmax(torch.log(teacher_probs.clamp_min(1e-12)) / temperature, dim=1)


def distillation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_log_probs: torch.Tensor,
    temperature: float,
    alpha: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The documented loss above: ``teacher_log_probs`` ``(B, C)`` already softened (:func:`soften`)."""
    student = torch.log_softmax(logits / temperature, dim=1)
    soft = F.kl_div(student, teacher_log_probs, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def distilled_from(opts) -> dict:
    """What member.json records of a student's teacher: ``opts`` is its MemberOptions."""
    return {"teacher": f"committee:{opts.teacher}", "temperature": opts.temperature, "alpha": opts.alpha}
