"""Sample-quality metrics on Inception features: FID, KID and Inception Score.

* **FID** (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
  Converge to a Local Nash Equilibrium", eq. 6): the Fréchet distance between
  Gaussians fitted to two feature sets,
  ``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``.
  ``tr (S1 S2)^(1/2)`` is computed in float64 as
  ``sum_i sqrt(max(lambda_i, 0))`` over the eigenvalues ``lambda_i`` of the
  symmetric PSD matrix ``S1^(1/2) S2 S1^(1/2)`` (similar to ``S1 S2``, so the
  same eigenvalues), with ``S1^(1/2)`` from an eigen-decomposition of ``S1``.
  Unlike a general ``sqrtm(S1 @ S2)`` this needs no complex arithmetic and
  stays finite for singular covariances (fewer samples than dimensions);
  eigenvalues that round to slightly below 0 are clipped.
* **KID** (Bińkowski et al. 2018, "Demystifying MMD GANs", sec. 4 / App. D):
  the unbiased estimator of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x . y / d + 1)^3``,
  ``MMD^2_u = [sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)] /
  (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2``,
  averaged over random subsets of ``m`` samples of each set.
* **Inception Score** (Salimans et al. 2016, "Improved Techniques for
  Training GANs", sec. 4):
  ``IS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y)`` the marginal over the
  split, reported as mean and std over ``num_splits`` contiguous splits. It
  needs the Inception classifier's logits; the FID weights of
  :mod:`gan_stability.metrics.inception` stop at the pool features (no
  classification layer), so the caller supplies logits from elsewhere.

All functions are pure numpy (float64) apart from the PRNG key of ``kid``;
``reference_stats`` caches ``(mu, sigma)`` of a reference set on disk.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from typing import Callable

import jax
import numpy as np

from gan_stability.errors import DamagedFile, writing

_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


def _features_2d(feats, what: str) -> np.ndarray:
  feats = np.asarray(feats, np.float64)
  if feats.ndim != 2:
    raise ValueError(f'{what}: expected features [N, d], got shape '
                     f'{feats.shape}')
  if not np.all(np.isfinite(feats)):
    raise ValueError(f'{what}: features contain non-finite values')
  return feats


# ------------------------------------------------------------------ FID ---


def gaussian_stats(feats) -> tuple[np.ndarray, np.ndarray]:
  """Mean ``[d]`` and unbiased covariance ``[d, d]`` (float64) of ``[N, d]``."""
  feats = _features_2d(feats, 'gaussian_stats')
  if feats.shape[0] < 2:
    raise ValueError('gaussian_stats: need at least 2 samples for a '
                     f'covariance, got {feats.shape[0]}')
  return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (eigenvalues >= 0)."""
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T


def trace_sqrt_product(s1, s2) -> float:
  """``tr (S1 S2)^(1/2)`` for symmetric PSD ``S1``, ``S2`` (float64)."""
  s1 = np.asarray(s1, np.float64)
  s2 = np.asarray(s2, np.float64)
  r = _sqrt_psd((s1 + s1.T) / 2)
  m = r @ ((s2 + s2.T) / 2) @ r
  w = np.linalg.eigvalsh((m + m.T) / 2)
  return float(np.sum(np.sqrt(np.maximum(w, 0.0))))


def fid_from_stats(mu1, sigma1, mu2, sigma2) -> float:
  """Fréchet distance of ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

  ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr (sigma1 sigma2)^(1/2)``
  (Heusel et al. 2017, eq. 6), in float64. Clipped at 0 from below (it can
  round to about -1e-10 for identical statistics).
  """
  mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
  mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  d = mu1.shape[0]
  if (mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or
      sigma2.shape != (d, d)):
    raise ValueError('fid_from_stats: expected mu [d] and sigma [d, d] for '
                     f'both sets; got {mu1.shape}, {sigma1.shape}, '
                     f'{mu2.shape}, {sigma2.shape}')
  for name, a in (('mu1', mu1), ('sigma1', sigma1), ('mu2', mu2),
                  ('sigma2', sigma2)):
    if not np.all(np.isfinite(a)):
      raise ValueError(f'fid_from_stats: {name} has non-finite values')
  diff = mu1 - mu2
  value = (diff @ diff + np.trace(sigma1) + np.trace(sigma2) -
           2.0 * trace_sqrt_product(sigma1, sigma2))
  return max(float(value), 0.0)


def fid(feats_a, feats_b) -> float:
  """FID between two feature sets ``[N_a, d]`` and ``[N_b, d]``.

  Gaussian fits by :func:`gaussian_stats` (unbiased covariance), then
  :func:`fid_from_stats`. FID is biased upwards for small ``N``; compare
  values only at equal sample sizes (the literature uses 10k-50k). Cost: two
  float64 covariances and two ``d x d`` eigen-decompositions (seconds at
  ``d = 2048`` on a CPU).
  """
  return fid_from_stats(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


# ------------------------------------------------------------------ KID ---


def kid_subset_indices(key: jax.Array, n_a: int, n_b: int, *,
                       num_subsets: int = 100, subset_size: int = 1000
                       ) -> tuple[np.ndarray, np.ndarray]:
  """The subsets :func:`kid` uses: int ``[num_subsets, m]`` for each set.

  ``m = min(subset_size, n_a, n_b)``; each subset is drawn without
  replacement, independently of the others, from ``key``.
  """
  m = min(subset_size, n_a, n_b)
  if m < 2:
    raise ValueError(f'kid: need subsets of at least 2 samples; got sets of '
                     f'{n_a} and {n_b} and subset_size={subset_size}')
  if num_subsets < 1:
    raise ValueError(f'kid: num_subsets must be >= 1, got {num_subsets}')
  key_a, key_b = jax.random.split(key)

  def draw(k, n):
    keys = jax.random.split(k, num_subsets)
    perm = jax.vmap(lambda kk: jax.random.permutation(kk, n)[:m])(keys)
    return np.asarray(perm, np.int64)

  return draw(key_a, n_a), draw(key_b, n_b)


def polynomial_mmd2_unbiased(x, y) -> float:
  """Unbiased ``MMD^2`` of two equal-size samples with ``(x.y/d + 1)^3``."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  m, d = x.shape
  k_xx = (x @ x.T / d + 1.0) ** 3
  k_yy = (y @ y.T / d + 1.0) ** 3
  k_xy = (x @ y.T / d + 1.0) ** 3
  within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy))
  return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / m ** 2)


def kid(feats_a, feats_b, *, key: jax.Array, num_subsets: int = 100,
        subset_size: int = 1000, return_std: bool = False):
  """Kernel Inception Distance (Bińkowski et al. 2018).

  Mean over ``num_subsets`` random subset pairs of the unbiased ``MMD^2``
  with kernel ``k(x, y) = (x . y / d + 1)^3``
  (:func:`polynomial_mmd2_unbiased`).
  ``subset_size`` is clipped to the smaller set size (the estimator needs
  equal sizes), so with fewer than ``subset_size`` samples every subset of
  the smaller set is the whole set in a random order. The estimate is
  unbiased, so it can be slightly negative for equal distributions.

  Args:
    feats_a, feats_b: features ``[N_a, d]``, ``[N_b, d]``.
    key: JAX PRNG key for the subsets (:func:`kid_subset_indices`).
    num_subsets, subset_size: as in Bińkowski et al.'s code (100, 1000).
    return_std: also return the standard deviation (ddof 0) of the
      per-subset estimates (a spread, not a standard error).

  Returns:
    ``kid`` or ``(kid, std)`` as Python floats.

  Cost: three ``m x d x m`` float64 matmuls per subset, about a second per
  subset at ``m = 1000``, ``d = 2048`` on 2 busy CPU cores.
  """
  a = _features_2d(feats_a, 'kid feats_a')
  b = _features_2d(feats_b, 'kid feats_b')
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'kid: feature dimensions differ: {a.shape[1]} vs '
                     f'{b.shape[1]}')
  idx_a, idx_b = kid_subset_indices(key, a.shape[0], b.shape[0],
                                    num_subsets=num_subsets,
                                    subset_size=subset_size)
  values = np.array([polynomial_mmd2_unbiased(a[i], b[j])
                     for i, j in zip(idx_a, idx_b)])
  mean = float(values.mean())
  return (mean, float(values.std())) if return_std else mean


# ------------------------------------------------------- Inception Score ---


def inception_score(logits, *, num_splits: int = 10) -> tuple[float, float]:
  """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016).

  Args:
    logits: ``[N, K]`` classifier logits (softmax taken here in float64).
      For the standard IS these are the 1008-way logits of the 2015
      Inception graph, which the FID weights in this package do not include.
    num_splits: the samples are cut into this many contiguous splits
      (``[i N // S, (i + 1) N // S)``, as in the original code); ``p(y)`` is
      each split's mean prediction.

  Returns:
    ``(mean, std)`` of the per-split scores (std with ddof 0). Uniform
    predictions give 1; confident predictions spread evenly over ``K``
    classes in every split give ``K``.
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or logits.shape[1] < 1:
    raise ValueError(f'inception_score: expected logits [N, K], got shape '
                     f'{logits.shape}')
  n = logits.shape[0]
  if not 1 <= num_splits <= n:
    raise ValueError(f'inception_score: need 1 <= num_splits <= N; got '
                     f'num_splits={num_splits}, N={n}')
  row_max = logits.max(axis=1, keepdims=True)
  if np.any(np.isnan(logits)) or not np.all(np.isfinite(row_max)):
    raise ValueError('inception_score: logits must be finite or -inf, with a '
                     'finite maximum in every row')
  shifted = logits - row_max
  log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
  p = np.exp(log_p)
  scores = []
  for i in range(num_splits):
    part_p = p[i * n // num_splits:(i + 1) * n // num_splits]
    part_log_p = log_p[i * n // num_splits:(i + 1) * n // num_splits]
    with np.errstate(divide='ignore', invalid='ignore'):
      log_py = np.log(part_p.mean(axis=0))  # -inf only where p = 0 throughout
      terms = np.where(part_p > 0, part_log_p - log_py, 0.0)  # 0 log 0 = 0
    terms = part_p * terms
    scores.append(np.exp(terms.sum(axis=1).mean()))
  scores = np.array(scores)
  return float(scores.mean()), float(scores.std())


# ------------------------------------------------------------- caching ---


def reference_stats(name: str, compute_features_fn: Callable[[], np.ndarray],
                    *, cache_dir: str | os.PathLike
                    ) -> tuple[np.ndarray, np.ndarray]:
  """``(mu, sigma)`` of a reference set, computed once and cached on disk.

  The cache file is ``<cache_dir>/<name>.npz`` (arrays ``mu``, ``sigma``,
  ``num_samples``). When it exists it is loaded and ``compute_features_fn``
  is not called; otherwise ``compute_features_fn()`` must return the
  features ``[N, d]``, whose :func:`gaussian_stats` are written to a
  temporary file in ``cache_dir`` and moved into place with ``os.replace``
  (atomic: a concurrent reader sees the old state or the whole file).

  Args:
    name: a key such as ``'mnist-train-10000'`` (letters, digits, ``.``,
      ``_``, ``-``); include everything the statistics depend on (data set,
      split, sample count, resizing), since the cache cannot tell.
    compute_features_fn: no-argument callable returning ``[N, d]`` features.
    cache_dir: created if missing.

  Raises:
    ValueError: an invalid ``name``, or an existing cache file that cannot be
      read (delete it to recompute).
  """
  if not isinstance(name, str) or not _NAME_RE.match(name):
    raise ValueError(f'reference_stats: invalid name {name!r}; use letters, '
                     'digits, ".", "_" and "-" (e.g. "mnist-train-10000")')
  cache_dir = os.fspath(cache_dir)
  path = os.path.join(cache_dir, f'{name}.npz')
  if os.path.exists(path):
    try:
      return load_stats(path)
    except DamagedFile as e:
      raise DamagedFile(f'reference_stats: {e}; delete it to recompute'
                        ) from e
  feats = _features_2d(compute_features_fn(), f'reference_stats({name!r})')
  mu, sigma = gaussian_stats(feats)
  save_stats(path, mu, sigma, num_samples=feats.shape[0])
  return mu, sigma
# ---------------------------------------------------- statistics files ---
# Two layouts of FID statistics files are read (:func:`load_stats`):
#
# * the TTUR layout (Heusel et al. 2017; pytorch-fid's and
#   ``experiments.score --save_stats`` files): an ``.npz`` with ``mu`` [d]
#   and ``sigma`` [d, d], float64;
# * the packed layout (``gan_stability/assets/fid_stats/``): ``mu`` float64
#   and ``sigma_triu``, the upper triangle of ``sigma`` row by row in
#   float32, compressed (a quarter of the size; FID changes by float32
#   rounding only).
#
# Both may carry ``num_samples`` and a JSON ``protocol`` string.


def _open_npz(path: str):
  """``np.load`` of an ``.npz`` archive, or DamagedFile naming ``path``."""
  try:
    z = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise DamagedFile(f'{path}: unreadable statistics file ({e})') from e
  if not isinstance(z, np.lib.npyio.NpzFile):
    raise DamagedFile(f'{path}: a single array, not an .npz archive of FID '
                      'statistics (mu, sigma)')
  return z


def is_stats_file(path: str) -> bool:
  """Whether ``path`` is an ``.npz`` archive holding ``mu`` (statistics, not
  images)."""
  if not (path.endswith('.npz') and os.path.isfile(path)):
    return False
  try:
    with _open_npz(path) as z:
      return 'mu' in z.files
  except DamagedFile:
    return False


def _unpack_triu(packed: np.ndarray) -> np.ndarray:
  # n (n + 1) / 2 = len  ->  n
  n = int(round((np.sqrt(8 * packed.size + 1) - 1) / 2))
  if n * (n + 1) // 2 != packed.size:
    raise ValueError(f'sigma_triu has {packed.size} values, not n (n + 1) / 2')
  sigma = np.zeros((n, n))
  sigma[np.triu_indices(n)] = packed
  return sigma + np.triu(sigma, 1).T


def load_stats(path: str, *, dim: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
  """``(mu, sigma)`` float64 from a statistics file (either layout).

  Raises:
    FileNotFoundError: no such file.
    DamagedFile: not a readable ``.npz``, ``mu`` / ``sigma`` missing, of
      inconsistent shapes (or not ``dim``-dimensional), not finite, or
      ``sigma`` not symmetric. The message names the file.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such statistics file')
  try:
    with _open_npz(path) as z:
      files = set(z.files)
      if 'mu' not in files or not files & {'sigma', 'sigma_triu'}:
        raise DamagedFile(f'{path}: not FID statistics (an .npz with mu and '
                          f'sigma); it holds {sorted(files)}')
      mu = np.asarray(z['mu'], np.float64)
      if 'sigma' in files:
        sigma = np.asarray(z['sigma'], np.float64)
      else:
        sigma = _unpack_triu(np.asarray(z['sigma_triu'], np.float64))
  except DamagedFile:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise DamagedFile(f'{path}: unreadable statistics file '
                      f'({type(e).__name__}: {e})') from e
  if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
    raise DamagedFile(f'{path}: mu has shape {mu.shape} and sigma '
                      f'{sigma.shape}; expected [d] and [d, d]')
  if dim is not None and mu.shape[0] != dim:
    raise DamagedFile(f'{path}: statistics of {mu.shape[0]}-d features, '
                      f'expected {dim}-d (Inception pool features)')
  if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
    raise DamagedFile(f'{path}: mu or sigma has non-finite values')
  if not np.allclose(sigma, sigma.T, rtol=1e-5, atol=1e-8):
    raise DamagedFile(f'{path}: sigma is not symmetric')
  return mu, sigma


def save_stats(path: str, mu: np.ndarray, sigma: np.ndarray, *,
               num_samples: int, protocol: dict | None = None,
               packed: bool = False) -> None:
  """Writes statistics atomically (a temporary file moved into place).

  ``packed=False`` writes the TTUR layout (``mu``, ``sigma`` float64),
  readable by the TTUR code and pytorch-fid; ``packed=True`` the packaged
  layout. ``num_samples`` and ``protocol`` (JSON) are stored beside them.
  """
  directory = os.path.dirname(os.path.abspath(path))
  arrays = {'mu': np.asarray(mu, np.float64),
            'num_samples': np.int64(num_samples),
            'protocol': np.array(json.dumps(protocol or {}, sort_keys=True))}
  if packed:
    arrays['sigma_triu'] = np.asarray(
        sigma, np.float64)[np.triu_indices(len(mu))].astype(np.float32)
  else:
    arrays['sigma'] = np.asarray(sigma, np.float64)
  with writing('statistics file', path):
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.stats.', suffix='.tmp', dir=directory)
    try:
      with os.fdopen(fd, 'wb') as f:
        if packed:
          np.savez_compressed(f, **arrays)
        else:
          np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, path)
    except BaseException:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise


def stats_info(path: str) -> tuple[int | None, dict]:
  """``(num_samples, protocol)`` stored in a statistics file (None and
  ``{}`` where absent).

  Raises:
    DamagedFile: unreadable, or ``num_samples`` not a positive integer, or
      ``protocol`` not a JSON object.
  """
  with _open_npz(path) as z:
    try:
      n = None
      if 'num_samples' in z.files:
        value = z['num_samples']
        if value.shape != () or not np.issubdtype(value.dtype, np.integer) or (
            int(value) < 1):
          raise ValueError(f'num_samples is {value!r}, not a positive integer')
        n = int(value)
      protocol = {}
      if 'protocol' in z.files:
        protocol = json.loads(str(z['protocol']))
        if not isinstance(protocol, dict):
          raise ValueError('protocol is not a JSON object')
    except Exception as e:  # pylint: disable=broad-except
      raise DamagedFile(f'{path}: {type(e).__name__}: {e}') from e
  return n, protocol
