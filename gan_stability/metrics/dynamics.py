"""Training-dynamics diagnostics: per-layer spectral norms, sample diversity
and an online alarm for divergence and mode collapse.

The train step itself logs per-network gradient norms (``d_grad_norm``,
``g_grad_norm``), the discriminator gap ``d_gap = mean D(real) - mean
D(fake)``, parameter norms and update/parameter norm ratios
(:mod:`gan_stability.train.step`). This module adds what is computed on the
host at logging steps:

* :func:`layer_sigmas` - the largest singular value ``sigma(W)`` of every
  kernel of a network, with the kernel reshaped to ``[fan_in, fan_out]``
  (the matrix spectral normalisation divides by; Miyato et al. 2018,
  Sec. 2.1), computed exactly by SVD in float64. For a spectrally
  normalised network the effective weight is ``W / sigma_hat`` with
  ``sigma_hat`` the power-iteration estimate stored in ``spectral_stats``;
  its norm ``sigma(W) / sigma_hat`` (1 once the iteration has converged) is
  reported too. The product of the per-layer sigmas bounds D's Lipschitz
  constant (for 1-Lipschitz activations).
* :func:`sample_diversity` - the root-mean-square distance between the two
  halves of a batch of samples, ``sqrt(mean_i ||x_i - x_{i+n/2}||^2 / dim)``,
  a cheap collapse signal: it drops towards 0 when the generator maps every
  latent to the same output.
* :class:`DynamicsMonitor` - online alarms written into ``metrics.jsonl``:
  ``exploding_gradient:<net>`` when a gradient norm exceeds ``grad_factor``
  times the median of its last ``window`` logged values, and ``collapse``
  when the sample diversity falls below ``collapse_ratio`` times the largest
  diversity seen so far in the run. (NaN/Inf values stop the run in the
  training loop; see ``DivergenceError``.)
"""

from __future__ import annotations

import collections
import math
from typing import Any

import jax
import numpy as np


def _path_name(path) -> str:
  return '/'.join(str(getattr(p, 'key', p)) for p in path)


def kernel_sigma(kernel) -> float:
  """Largest singular value of ``kernel`` reshaped to ``[-1, out]``."""
  w = np.asarray(kernel, np.float64)
  w = w.reshape(-1, w.shape[-1]) if w.ndim > 1 else w.reshape(1, -1)
  return float(np.linalg.svd(w, compute_uv=False)[0])


def layer_sigmas(params: Any, spectral_stats: Any = None, *,
                 prefix: str = 'sigma/') -> dict[str, float]:
  """``{prefix + layer: sigma(W)}`` for every ``kernel`` leaf of ``params``.

  With ``spectral_stats`` (Flax ``SpectralNorm`` collection), also
  ``{prefix + layer + '/normalized': sigma(W) / sigma_hat}`` for each
  spectrally normalised kernel.
  """
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    name = _path_name(path)
    if name.endswith('kernel'):
      out[prefix + name[:-len('/kernel')]] = kernel_sigma(leaf)
  if spectral_stats:
    for path, leaf in jax.tree_util.tree_flatten_with_path(spectral_stats)[0]:
      name = _path_name(path)
      if not name.endswith('/kernel/sigma'):
        continue
      layer = name.split('/')[-3]  # '.../SpectralNorm_0/<layer>/kernel/sigma'
      key = prefix + layer
      if key in out:
        out[key + '/normalized'] = out[key] / max(float(leaf), 1e-12)
  return out


def sample_diversity(samples: np.ndarray) -> float:
  """RMS distance between the first and second half of ``samples``
  (``[N, ...]``, ``N >= 2``), per dimension."""
  x = np.asarray(samples, np.float64).reshape(len(samples), -1)
  half = len(x) // 2
  if half == 0:
    raise ValueError(f'sample_diversity: needs >= 2 samples, got {len(x)}')
  d = x[:half] - x[half:2 * half]
  return float(np.sqrt(np.mean(d ** 2)))


class DynamicsMonitor:
  """Online alarms over the logged records of one run (host side).

  ``update(record)`` returns the list of alarms raised by that record (and
  remembers what it needs). Thresholds <= 0 disable an alarm.
  """

  def __init__(self, *, grad_factor: float = 100.0,
               collapse_ratio: float = 0.1, window: int = 20,
               min_history: int = 5):
    self.grad_factor = grad_factor
    self.collapse_ratio = collapse_ratio
    self.min_history = min_history
    self._grads = collections.defaultdict(
        lambda: collections.deque(maxlen=window))
    self._max_diversity = 0.0

  def update(self, record: dict) -> list[str]:
    alarms = []
    if self.grad_factor > 0:
      for net in ('d', 'g'):
        value = record.get(f'{net}_grad_norm')
        if value is None or not math.isfinite(value):
          continue
        history = self._grads[net]
        if (len(history) >= self.min_history
            and value > self.grad_factor * float(np.median(history))):
          alarms.append(f'exploding_gradient:{net}')
        history.append(value)
    diversity = record.get('diversity')
    if self.collapse_ratio > 0 and diversity is not None:
      if (self._max_diversity > 0
          and diversity < self.collapse_ratio * self._max_diversity):
        alarms.append('collapse')
      self._max_diversity = max(self._max_diversity, diversity)
    return alarms
