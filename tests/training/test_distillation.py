"""The distillation loss against a hand computation (committee.training.distillation)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from committee.training.distillation import distillation_loss, soften


def by_hand(z: np.ndarray, y: np.ndarray, p: np.ndarray, t: float, alpha: float) -> float:
    q = p ** (1 / t)
    q = q / q.sum(axis=1, keepdims=True)  # the teacher at temperature t
    s = np.exp(z / t)
    s = s / s.sum(axis=1, keepdims=True)  # the student at temperature t
    kl = np.mean(np.sum(q * (np.log(q) - np.log(s)), axis=1))
    hard = np.exp(z)
    hard = hard / hard.sum(axis=1, keepdims=True)
    ce = -np.mean(np.log(hard[np.arange(len(y)), y]))
    return alpha * t * t * kl + (1 - alpha) * ce


def test_loss_is_the_documented_one():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    p = rng.dirichlet(np.ones(4), size=5)
    y = np.array([0, 1, 2, 3, 0])
    for t, alpha in ((1.0, 0.5), (4.0, 0.9), (2.5, 1.0), (3.0, 0.0)):
        got = distillation_loss(torch.tensor(z), torch.tensor(y), soften(torch.tensor(p), t), t, alpha)
        assert abs(float(got) - by_hand(z, y, p, t, alpha)) < 1e-6, (t, alpha)


def test_no_soft_weight_is_cross_entropy_and_a_perfect_student_has_no_soft_loss():
    z = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    y = torch.tensor([0, 2])
    teacher = torch.softmax(torch.randn(2, 3), 1)
    assert torch.isclose(distillation_loss(z, y, soften(teacher, 3.0), 3.0, 0.0), F.cross_entropy(z, y))
    # A student whose logits are the teacher's log-probabilities matches it at every temperature: KL = 0.
    assert abs(float(distillation_loss(torch.log(teacher), y, soften(teacher, 3.0), 3.0, 1.0))) < 1e-6
