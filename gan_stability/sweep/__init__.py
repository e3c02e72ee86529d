"""Ablation sweeps: specs (:mod:`.spec`), the runner (:mod:`.runner`), seeds
vmapped into one program (:mod:`.vmap_seeds`) and the report (:mod:`.report`).

Only :mod:`.spec` is imported here, so sweep files load without JAX.
"""

from gan_stability.sweep import spec
from gan_stability.sweep.spec import Sweep, SweepError, axis, product

__all__ = ['Sweep', 'SweepError', 'axis', 'product', 'spec']
