"""Using a trained committee: :class:`Committee` (predict, abstain, shift, export) and its results."""

from committee.serving.trained import Abstention, Committee, Prediction

__all__ = ["Abstention", "Committee", "Prediction"]
