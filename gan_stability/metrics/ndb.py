"""Number of statistically Different Bins (NDB) and bin JS divergence.

Richardson & Weiss 2018, "On GANs and GMMs": partition the space
with k-means on real (training) samples into ``K`` bins (the paper uses
``K = 100``), assign real and generated samples to the nearest centre
(Euclidean), and test every bin with a two-sided two-proportion z-test of
``H0: P_k = Q_k`` for the real proportion ``P_k = n_k / N`` and generated
proportion ``Q_k = m_k / M``:

  ``p_pool = (n_k + m_k) / (N + M)``,
  ``z_k = (P_k - Q_k) / sqrt(p_pool (1 - p_pool) (1/N + 1/M))``,
  ``p-value_k = 2 Phi(-|z_k|) = erfc(|z_k| / sqrt 2)``.

A bin is *statistically different* when ``p-value_k < alpha``
(``alpha = 0.05``); a bin that is empty in both sets (pooled standard error
0) is not. ``NDB`` is their number and ``NDB / K`` its fraction; for two
samples of one distribution ``NDB / K`` is about ``alpha``. Missing modes show
up as bins with ``Q_k << P_k``, over-represented ones as ``Q_k >> P_k``. The
paper also reports the Jensen-Shannon divergence of the bin histograms,
``JS(P, Q) = KL(P || A) / 2 + KL(Q || A) / 2``, ``A = (P + Q) / 2``, here in
nats (natural log, ``0 log 0 = 0``; in ``[0, log 2]``).

K-means: Lloyd's algorithm in float64 numpy, initialised by k-means++
(Arthur & Vassilvitskii 2007) from ``np.random.default_rng(seed)``; each
iteration assigns every point to its nearest centre (lowest index on ties)
and moves each centre to the mean of its points; an empty cluster takes
over the point farthest from its centre (among clusters of >= 2 points). It stops when no assignment
changes or after ``max_iter`` iterations. The same data and seed give the
same bins. Inputs of any shape ``[N, ...]`` are flattened to ``[N, D]``
(pixels or features; the paper bins pixels, without whitening).
"""

from __future__ import annotations

import math

import numpy as np

# Rows of the [rows, K] distance block in assign_bins.
_ASSIGN_ELEMENTS = 1 << 22


def _flat(x, what: str) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim < 2 or x.shape[0] < 1:
    raise ValueError(f'{what}: expected samples [N, ...] with N >= 1, got '
                     f'shape {x.shape}')
  x = x.reshape(x.shape[0], -1)
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{what}: samples contain non-finite values')
  return x


def _nearest(x: np.ndarray, centers: np.ndarray):
  """Nearest centre index and squared distance per row (chunked)."""
  c2 = np.sum(centers * centers, axis=1)
  rows = max(1, _ASSIGN_ELEMENTS // max(centers.shape[0], 1))
  labels = np.empty(x.shape[0], np.int64)
  d2 = np.empty(x.shape[0], np.float64)
  for s in range(0, x.shape[0], rows):
    blk = x[s:s + rows]
    d = c2[None, :] - 2.0 * blk @ centers.T  # + |x|^2, constant per row
    lab = np.argmin(d, axis=1)
    labels[s:s + rows] = lab
    d2[s:s + rows] = np.maximum(
        d[np.arange(len(blk)), lab] + np.sum(blk * blk, axis=1), 0.0)
  return labels, d2


def assign_bins(samples, centers) -> np.ndarray:
  """Index of the nearest centre (Euclidean, lowest index on ties): ``[N]``."""
  x = _flat(samples, 'assign_bins samples')
  centers = np.asarray(centers, np.float64)
  if centers.ndim != 2 or centers.shape[1] != x.shape[1]:
    raise ValueError(f'assign_bins: centres {centers.shape} do not match '
                     f'samples of dimension {x.shape[1]}')
  return _nearest(x, centers)[0]


def kmeans(samples, *, num_clusters: int, seed: int = 0,
           max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """k-means++ then Lloyd iterations (see the module docstring).

  Returns:
    ``(centers [K, D], labels [N])``, float64 and int64.

  Raises:
    ValueError: ``num_clusters`` is not in ``[1, N]`` or the data has fewer
      than ``num_clusters`` distinct points.
  """
  x = _flat(samples, 'kmeans samples')
  n = x.shape[0]
  if (isinstance(num_clusters, bool) or int(num_clusters) != num_clusters or
      not 1 <= num_clusters <= n):
    raise ValueError(f'kmeans: num_clusters must be an integer in [1, {n}] '
                     f'(the number of samples), got {num_clusters}')
  if max_iter < 1:
    raise ValueError(f'kmeans: max_iter must be >= 1, got {max_iter}')
  k = int(num_clusters)
  rng = np.random.default_rng(seed)
  centers = np.empty((k, x.shape[1]))
  centers[0] = x[rng.integers(n)]
  d2 = np.sum((x - centers[0]) ** 2, axis=1)
  for i in range(1, k):
    total = d2.sum()
    if not total > 0:
      raise ValueError(f'kmeans: the data has only {i} distinct points, fewer '
                       f'than num_clusters={k}')
    centers[i] = x[rng.choice(n, p=d2 / total)]
    d2 = np.minimum(d2, np.sum((x - centers[i]) ** 2, axis=1))
  labels = None
  for _ in range(max_iter):
    new, d2 = _nearest(x, centers)
    if labels is not None and np.array_equal(new, labels):
      break
    labels = new
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros_like(centers)
    np.add.at(sums, labels, x)
    for j in np.flatnonzero(counts == 0):  # re-seed empty clusters
      movable = np.where(counts[labels] > 1, d2, 0.0)
      far = int(np.argmax(movable))
      if not movable[far] > 0:
        break  # nothing left to move; the centre stays where it is
      old = labels[far]
      sums[old] -= x[far]
      counts[old] -= 1
      sums[j], counts[j], d2[far] = x[far], 1, 0.0
      labels[far] = j
    centers = np.where(counts[:, None] > 0,
                       sums / np.maximum(counts, 1)[:, None], centers)
  return centers, _nearest(x, centers)[0]


def _js(p: np.ndarray, q: np.ndarray) -> float:
  a = (p + q) / 2

  def kl(u):
    nz = u > 0
    return float(np.sum(u[nz] * np.log(u[nz] / a[nz])))

  return max(0.5 * kl(p) + 0.5 * kl(q), 0.0)


def ndb(real, fake, *, num_bins: int = 100, alpha: float = 0.05,
        seed: int = 0, max_iter: int = 100, centers=None) -> dict:
  """NDB, NDB/K and bin JS divergence (Richardson & Weiss 2018).

  Args:
    real: real samples ``[N, ...]`` (k-means is fitted on them unless
      ``centers`` is given).
    fake: generated samples ``[M, ...]``, same per-sample shape.
    num_bins: ``K``, the number of k-means bins.
    alpha: significance level of each per-bin two-sided z-test.
    seed: k-means++ seed.
    max_iter: at most this many Lloyd iterations.
    centers: optional precomputed ``[K, D]`` bins (e.g. from :func:`kmeans`
      on the training set, fitted once and reused at every evaluation).

  Returns:
    ``{'ndb': int, 'ndb_over_k': float, 'js': float (nats),
    'different': bool [K], 'z': [K], 'p_values': [K],
    'real_proportions': [K], 'fake_proportions': [K], 'centers': [K, D]}``;
    ``z > 0`` where the real proportion is the larger (a missing mode).
  """
  x = _flat(real, 'ndb real')
  y = _flat(fake, 'ndb fake')
  if x.shape[1] != y.shape[1]:
    raise ValueError(f'ndb: real and generated samples differ in size: '
                     f'{x.shape[1]} vs {y.shape[1]} values')
  if not 0.0 < alpha < 1.0:
    raise ValueError(f'ndb: alpha must be in (0, 1), got {alpha}')
  if centers is None:
    centers, real_labels = kmeans(x, num_clusters=num_bins, seed=seed,
                                  max_iter=max_iter)
  else:
    centers = np.asarray(centers, np.float64)
    real_labels = assign_bins(x, centers)
  k = centers.shape[0]
  n, m = x.shape[0], y.shape[0]
  p = np.bincount(real_labels, minlength=k) / n
  q = np.bincount(assign_bins(y, centers), minlength=k) / m
  pooled = (p * n + q * m) / (n + m)
  se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / m))
  z = np.where(se > 0, (p - q) / np.where(se > 0, se, 1.0), 0.0)
  p_values = np.array([math.erfc(abs(v) / math.sqrt(2.0)) for v in z])
  different = (se > 0) & (p_values < alpha)
  num = int(different.sum())
  return {'ndb': num, 'ndb_over_k': num / k, 'js': _js(p, q),
          'different': different, 'z': z, 'p_values': p_values,
          'real_proportions': p, 'fake_proportions': q, 'centers': centers}
