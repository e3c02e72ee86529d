"""Sample-diversity diagnostics: birthday-paradox duplicates and MS-SSIM.

* **Birthday paradox test** (Arora & Zhang 2017, "Do GANs actually learn the
  distribution? An empirical study"): if a distribution has support
  size ``S`` (``S`` equally likely items), a batch of ``s`` samples contains a
  duplicate with probability about ``1 - exp(-s^2 / (2 S))``, which is about
  1/2 at ``s ~ sqrt(S)``. So when batches of ``s`` samples contain a
  (near-)duplicate in at least half of the trials, the support size is
  estimated as about ``s^2``. :func:`birthday_paradox` returns the closest
  pairs of one batch for a human (or a threshold) to judge;
  :func:`duplicate_rate` applies a distance threshold to many batches and
  returns the fraction of batches with a duplicate and the implied support
  size.
* **MS-SSIM diversity** (as used by Odena et al. 2017, AC-GAN): the
  mean MS-SSIM of random pairs of generated images; lower means more diverse
  (pairs of different natural images score low, a collapsed generator scores
  near 1).

Distances are Euclidean, between flattened samples (pixel space) or, if
``features`` ``[N, D]`` are given, between those rows (e.g. classifier
embeddings; the paper judged pixel-space candidates by eye). They are
computed with :mod:`gan_stability.metrics.manifold`'s streaming JAX blocks;
the distances of the selected nearest pairs are recomputed as
``sqrt(sum((a - b)^2))``, so exact copies are at distance 0 and a small
``threshold`` is meaningful.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from gan_stability.metrics import image_quality
from gan_stability.metrics import manifold


def _vectors(samples, features, what: str) -> np.ndarray:
  x = np.asarray(samples if features is None else features, np.float64)
  n = np.shape(samples)[0]
  if x.ndim < 2 or x.shape[0] != n:
    raise ValueError(f'{what}: expected samples [N, ...] and features [N, D] '
                     f'for the same N; got {np.shape(samples)} and '
                     f'{None if features is None else np.shape(features)}')
  x = x.reshape(n, -1)
  if features is not None and np.ndim(features) != 2:
    raise ValueError(f'{what}: features must be [N, D], got '
                     f'{np.shape(features)}')
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{what}: non-finite values')
  return x - x.mean(axis=0)


def birthday_paradox(samples, *, features=None, num_pairs: int = 20,
                     block_size: int | None = None) -> dict:
  """The ``num_pairs`` closest pairs of a batch of ``s`` samples.

  Every pair ``i < j`` of the batch is ranked by ``||v_i - v_j||`` (``v`` the
  flattened samples or the given ``features``); the closest are the
  duplicate candidates to inspect.

  Args:
    samples: ``[s, ...]`` one batch (e.g. ``s = 400`` images).
    features: optional ``[s, D]`` embedding in which to measure distances.
    num_pairs: how many pairs to return (at most ``s (s - 1) / 2``).
    block_size: rows per distance block (``None``: automatic).

  Returns:
    ``{'pairs': int64 [P, 2] (i < j, closest first), 'distances': float64
    [P], 'batch_size': s, 'support_size_estimate': s ** 2}``; the last is the
    support size the test suggests *if* batches of this size contain a true
    duplicate at least half of the time (judge the pairs over several
    batches).
  """
  x = _vectors(samples, features, 'birthday_paradox')
  s = x.shape[0]
  if s < 2:
    raise ValueError(f'birthday_paradox: need a batch of >= 2 samples, got {s}')
  if isinstance(num_pairs, bool) or int(num_pairs) != num_pairs or \
      num_pairs < 1:
    raise ValueError(f'birthday_paradox: num_pairs must be >= 1, got '
                     f'{num_pairs}')
  p = int(min(num_pairs, s * (s - 1) // 2))
  k = min(p, s - 1)
  # Each global top-p pair (i, j) is among row i's k nearest columns j > i.
  d2, idx = manifold._knn_sq(x, x, k=k, mask='upper', refine=True,
                             block_size=block_size)
  rows = np.repeat(np.arange(s), k)
  d2, cols = d2.ravel(), idx.ravel()
  ok = np.isfinite(d2)
  rows, cols, d2 = rows[ok], cols[ok], d2[ok]
  order = np.lexsort((cols, rows, d2))[:p]  # by distance, then (i, j)
  return {'pairs': np.stack([rows[order], cols[order]], axis=1).astype(
              np.int64),
          'distances': np.sqrt(d2[order]),
          'batch_size': s,
          'support_size_estimate': s * s}


def duplicate_rate(samples, *, threshold: float, batch_size: int | None = None,
                   features=None, block_size: int | None = None) -> dict:
  """Near-duplicate statistics at a distance ``threshold``.

  The samples are cut into ``B = floor(N / s)`` consecutive batches of
  ``s = batch_size`` (default: one batch of all ``N``; a remainder is
  ignored). Two samples of one batch are duplicates when
  ``||v_i - v_j|| <= threshold``.

  Returns:
    * ``'duplicate_fraction'``: fraction of the ``B s`` samples with at
      least one duplicate in their batch;
    * ``'batch_duplicate_probability'``: ``p``, fraction of batches with at
      least one duplicate pair (the birthday-test statistic);
    * ``'paradox_triggered'``: ``p >= 0.5``;
    * ``'support_size_estimate'``: ``s^2``, Arora & Zhang's estimate, which
      applies when ``paradox_triggered`` (otherwise the support is likely
      larger);
    * ``'uniform_support_estimate'``: the support size ``S`` of a uniform
      distribution whose duplicate probability ``1 - exp(-s (s - 1) / (2 S))``
      equals ``p``: ``S = -s (s - 1) / (2 log(1 - p))`` (``inf`` at ``p = 0``,
      ``0`` at ``p = 1``);
    * ``'batch_size'``, ``'num_batches'``.
  """
  x = _vectors(samples, features, 'duplicate_rate')
  n = x.shape[0]
  s = n if batch_size is None else batch_size
  if isinstance(s, bool) or int(s) != s or not 2 <= s <= n:
    raise ValueError(f'duplicate_rate: batch_size must be an integer in '
                     f'[2, {n}], got {batch_size}')
  if not threshold >= 0:
    raise ValueError(f'duplicate_rate: threshold must be >= 0, got '
                     f'{threshold}')
  s = int(s)
  num_batches = n // s
  dup_samples, dup_batches = 0, 0
  for b in range(num_batches):
    blk = x[b * s:(b + 1) * s]
    d2, _ = manifold._knn_sq(blk, blk, k=1, mask='self', refine=True,
                             block_size=block_size)
    has = np.sqrt(d2[:, 0]) <= threshold
    dup_samples += int(has.sum())
    dup_batches += int(has.any())
  p = dup_batches / num_batches
  if p == 0:
    uniform = float('inf')
  elif p == 1:
    uniform = 0.0
  else:
    uniform = -s * (s - 1) / (2.0 * math.log1p(-p))
  return {'duplicate_fraction': dup_samples / (num_batches * s),
          'batch_duplicate_probability': p,
          'paradox_triggered': p >= 0.5,
          'support_size_estimate': s * s,
          'uniform_support_estimate': uniform,
          'batch_size': s,
          'num_batches': num_batches}


def random_pairs(key: jax.Array, n: int, num_pairs: int) -> np.ndarray:
  """``[num_pairs, 2]`` int64 index pairs ``(i, j)``, ``i != j``, each
  uniform over the ``n (n - 1)`` ordered pairs (independent draws):
  ``i ~ U{0..n-1}``, ``j = (i + U{1..n-1}) mod n``."""
  if n < 2:
    raise ValueError(f'random_pairs: need n >= 2, got {n}')
  k1, k2 = jax.random.split(key)
  i = jax.random.randint(k1, (num_pairs,), 0, n)
  j = (i + jax.random.randint(k2, (num_pairs,), 1, n)) % n
  return np.stack([np.asarray(i), np.asarray(j)], axis=1).astype(np.int64)


def pairwise_ms_ssim_diversity(images, *, key: jax.Array, num_pairs: int,
                               data_range, num_scales: int | None = None,
                               chunk_size: int = 256,
                               **ms_ssim_kwargs) -> float:
  """Mean MS-SSIM over ``num_pairs`` random pairs of distinct images.

  Pairs come from :func:`random_pairs` (``key``); MS-SSIM is
  :func:`gan_stability.metrics.image_quality.ms_ssim` with
  ``data_range`` (e.g. 2.0 for images in ``[-1, 1]``) and
  ``ms_ssim_kwargs``. ``num_scales=None`` uses as many scales as the image
  size allows, at most 5 (:func:`image_quality.max_ms_ssim_scales`; 2 for
  28 x 28 with the default window), so compare values only at one image
  size and setting. Lower is more diverse.

  Args:
    images: ``[N, H, W, C]``, ``N >= 2``.
    key: JAX PRNG key for the pairs.
    num_pairs: number of pairs.
    data_range: width of the pixel value range.
    num_scales: MS-SSIM scales (``None``: as many as fit, up to 5).
    chunk_size: pairs per MS-SSIM call (bounds memory).
    **ms_ssim_kwargs: passed to ``ms_ssim`` (``sigma``, ``K1``, ...).

  Returns:
    The mean as a Python float.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[0] < 2:
    raise ValueError(f'pairwise_ms_ssim_diversity: expected [N, H, W, C] '
                     f'with N >= 2, got {images.shape}')
  if isinstance(num_pairs, bool) or int(num_pairs) != num_pairs or \
      num_pairs < 1:
    raise ValueError(f'pairwise_ms_ssim_diversity: num_pairs must be >= 1, '
                     f'got {num_pairs}')
  if num_scales is None:
    window = {k: ms_ssim_kwargs[k] for k in
              ('gaussian_weights', 'sigma', 'win_size') if k in ms_ssim_kwargs}
    num_scales = image_quality.max_ms_ssim_scales(
        images.shape[1], images.shape[2], **window)
    if num_scales < 1:
      raise ValueError(f'pairwise_ms_ssim_diversity: images of '
                       f'{images.shape[1:3]} are smaller than the SSIM window')
  num_pairs = int(num_pairs)
  pairs = random_pairs(key, images.shape[0], num_pairs)
  chunk = max(1, min(int(chunk_size), num_pairs))
  # Pad to whole chunks (one compiled shape); padded values are dropped.
  padded = np.concatenate(
      [pairs, np.repeat(pairs[:1], -num_pairs % chunk, axis=0)])
  values = []
  for s in range(0, len(padded), chunk):
    p = padded[s:s + chunk]
    values.append(np.asarray(image_quality.ms_ssim(
        jnp.asarray(images[p[:, 0]]), jnp.asarray(images[p[:, 1]]),
        data_range=data_range, num_scales=num_scales, **ms_ssim_kwargs),
                             np.float64))
  return float(np.concatenate(values)[:num_pairs].mean())
