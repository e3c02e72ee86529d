"""Evaluation: the metric registry (:mod:`.registry`: name -> outputs,
needs, computation; config validation reads it), the evaluators the training
loop runs (:mod:`.evaluators`) and offline evaluation of a run's checkpoint
with the same evaluators (:mod:`.offline`, imported by module). The metric
functions themselves are in :mod:`gan_stability.metrics`."""

from gan_stability.eval.evaluators import (ImageEvaluator, MixtureEvaluator,
                                           make_evaluator)
from gan_stability.eval.registry import METRICS, SPACES

__all__ = ['ImageEvaluator', 'METRICS', 'MixtureEvaluator', 'SPACES',
           'make_evaluator']
