"""Ablation sweeps: specs (:mod:`.spec`), the runner (:mod:`.runner`, which
runs a group of seeds as one vmapped program with
:mod:`gan_stability.train.seeds`) and the report (:mod:`.report`).

Only :mod:`.spec` is imported here, so sweep files load without JAX.
"""

from gan_stability.sweep import spec
from gan_stability.sweep.spec import Sweep, SweepError, axis, product

__all__ = ['Sweep', 'SweepError', 'axis', 'product', 'spec']
