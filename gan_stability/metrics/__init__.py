"""Evaluation metrics (mode coverage for mixtures; more to come)."""

from gan_stability.metrics.mixtures import assign, mode_metrics

__all__ = ['assign', 'mode_metrics']
