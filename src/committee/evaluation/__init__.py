"""Scoring from saved probabilities: metrics, a run's results, comparisons, seeds, ablations, shift."""
