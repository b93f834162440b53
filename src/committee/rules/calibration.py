"""Temperature scaling (Guo et al. 2017): one temperature, fitted by validation NLL, softens or
sharpens a committee's probabilities without changing its predictions."""

from __future__ import annotations

import numpy as np


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes, probabilities ``(N, K)``."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-15, None))))


def temperature_scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Soften (T > 1) or sharpen (T < 1) probabilities ``(N, C)``: softmax(log p / T)."""
    z = np.log(np.clip(probs, 1e-15, 1)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The one temperature minimising NLL on ``probs`` ``(N, C)`` (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(
        lambda log_t: nll(temperature_scale(probs, np.exp(log_t)), labels),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(res.x))
