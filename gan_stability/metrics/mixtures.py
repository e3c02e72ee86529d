"""Mode-coverage metrics for samples of a known Gaussian mixture.

Definitions (PacGAN, Lin et al. 2018, sec. 5; VEEGAN, Srivastava et al. 2017):
each sample is assigned to its nearest mode centre; it is *high quality* when
that distance is below ``3 sigma``. A mode is *captured* when at least
``min_count`` (default 1) high-quality samples are assigned to it. The
reverse KL is ``KL(p_gen || uniform) = sum_k p_k log(p_k * K)`` over the
histogram ``p`` of nearest-mode assignments of all samples (``0 log 0 = 0``);
it is 0 for perfectly balanced modes and ``log K`` when every sample falls in
one mode.
"""

from __future__ import annotations

import numpy as np


def assign(samples: np.ndarray, centers: np.ndarray):
  """Nearest centre index and distance for each sample."""
  samples = np.asarray(samples, np.float64)
  d2 = np.sum((samples[:, None, :] - centers[None, :, :]) ** 2, axis=-1)
  idx = np.argmin(d2, axis=1)
  return idx, np.sqrt(d2[np.arange(len(samples)), idx])


def mode_metrics(samples: np.ndarray, centers: np.ndarray, sigma: float, *,
                 threshold_sigmas: float = 3.0, min_count: int = 1) -> dict:
  """``{'modes', 'high_quality', 'kl'}`` for ``samples`` ``[N, dim]``.

  ``high_quality`` is the percentage (0-100) of samples within
  ``threshold_sigmas * sigma`` of their nearest centre. Non-finite samples
  count as low quality and are left out of the histogram.
  """
  samples = np.asarray(samples, np.float64)
  n, k = samples.shape[0], centers.shape[0]
  finite = np.all(np.isfinite(samples), axis=1)
  idx, dist = assign(np.where(finite[:, None], samples, 0.0), centers)
  hq = finite & (dist < threshold_sigmas * sigma)
  hq_counts = np.bincount(idx[hq], minlength=k)
  counts = np.bincount(idx[finite], minlength=k).astype(np.float64)
  if counts.sum() > 0:
    p = counts / counts.sum()
    nz = p > 0
    kl = float(np.sum(p[nz] * np.log(p[nz] * k)))
  else:
    kl = float('nan')
  return {
      'modes': int(np.sum(hq_counts >= min_count)),
      'high_quality': 100.0 * float(np.sum(hq)) / max(n, 1),
      'kl': kl,
  }
