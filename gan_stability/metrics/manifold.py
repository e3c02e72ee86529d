"""k-NN manifold diagnostics on feature sets: precision / recall, density /
coverage and nearest-neighbour (memorisation) distances.

All distances are Euclidean, ``||a - b||``, on features ``[N, D]`` (Inception
pool features, classifier embeddings or flattened pixels). ``NND_k(x)`` is the
distance from ``x`` to its ``k``-th nearest *other* point of its own set
(``x`` itself is not counted, duplicates of ``x`` are); ``B(x, r)`` is the ball
of radius ``r`` around ``x``.

* **Improved precision and recall** (Kynkäänniemi et al. 2019, "Improved
  Precision and Recall Metric for Assessing Generative Models"): with real
  features ``X = {x_i}_{i=1..N}`` and generated ``Y = {y_j}_{j=1..M}``,
  ``precision = 1/M sum_j 1[exists i: ||y_j - x_i|| <= NND_k(x_i)]`` and
  ``recall = 1/N sum_i 1[exists j: ||x_i - y_j|| <= NND_k(y_j)]``
  (closed balls, ``<=``, as in the paper's ``f(phi, Phi)``), default
  ``k = 3``.
* **Density and coverage** (Naeem et al. 2020, "Reliable Fidelity and
  Diversity Metrics for Generative Models"):
  ``density = 1/(k M) sum_j sum_i 1[y_j in B(x_i, NND_k(x_i))]`` and
  ``coverage = 1/N sum_i 1[exists j: y_j in B(x_i, NND_k(x_i))]``, with real
  balls only, default ``k = 5``. Membership is strict,
  ``||y_j - x_i|| < NND_k(x_i)``, as in the authors' ``prdc`` code; then two
  identical sets without ties give ``density = 1`` exactly (each ball holds
  its centre and the ``k - 1`` neighbours nearer than the ``k``-th).
* **Nearest-neighbour distances** ``min_i ||q - r_i||`` of queries to a
  reference set, and :func:`memorisation_report`, which compares those of
  generated samples and of held-out real samples to the training set: a
  generator that copies training examples has many generated samples closer
  to the training set than almost all held-out data.

Computation: squared distances ``||a||^2 + ||b||^2 - 2 a.b`` (clipped at 0;
all sets are first centred on the mean of the reference set, in float64, to
limit cancellation) in jit-compiled JAX, one block of query rows against the
whole reference set at a time, so memory is ``O(block * N)`` and never
``O(N * M)``; ``block_size=None`` picks blocks of about 8M distances
(32 MB in float32). Matmuls use ``Precision.HIGHEST`` (no TF32 / bf16 passes
on GPUs). Balls are compared in squared distances of that formula for both
radii and memberships (so identical sets behave consistently); the distances
that :func:`nearest_neighbour_distances` returns are recomputed as
``sqrt(sum((a - b)^2))`` for the selected neighbour (exactly 0 for an exact
copy; the formula above alone can leave ``sqrt(eps) ||a||``, about
``3e-4 ||a||`` in float32). Arithmetic is float32
unless ``jax_enable_x64`` is on; results are returned as Python floats /
float64 numpy arrays.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# Entries of one [rows, cols] block of distances when block_size is None.
_BLOCK_ELEMENTS = 1 << 23


def _features_2d(feats, what: str) -> np.ndarray:
  feats = np.asarray(feats, np.float64)
  if feats.ndim != 2:
    raise ValueError(f'{what}: expected features [N, D], got shape '
                     f'{feats.shape}')
  if feats.shape[0] < 1:
    raise ValueError(f'{what}: empty feature set')
  if not np.all(np.isfinite(feats)):
    raise ValueError(f'{what}: features contain non-finite values')
  return feats


def _check_dims(what: str, *sets: np.ndarray) -> None:
  dims = {s.shape[1] for s in sets}
  if len(dims) != 1:
    raise ValueError(f'{what}: feature dimensions differ: '
                     f'{[s.shape[1] for s in sets]}')


def _check_k(what: str, k, n: int, set_name: str) -> int:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f'{what}: k must be an integer >= 1, got {k!r}')
  if k >= n:
    raise ValueError(f'{what}: k={k} needs at least k + 1 = {k + 1} '
                     f'{set_name} samples (the k-th nearest *other* point), '
                     f'got {n}')
  return int(k)


def _centred(reference: np.ndarray, *others: np.ndarray):
  """float64 sets minus the mean of ``reference`` (distances are unchanged)."""
  mean = reference.mean(axis=0)
  return tuple(s - mean for s in (reference,) + others)


def _device(x: np.ndarray) -> jax.Array:
  dtype = jax.dtypes.canonicalize_dtype(np.float64)  # float32 unless x64
  return jnp.asarray(x.astype(dtype))


def _block_rows(num_rows: int, num_cols: int, block_size) -> int:
  if block_size is None:
    block_size = _BLOCK_ELEMENTS // max(num_cols, 1)
  elif isinstance(block_size, bool) or int(block_size) != block_size or \
      block_size < 1:
    raise ValueError(f'block_size must be an integer >= 1, got {block_size!r}')
  return int(max(1, min(num_rows, block_size)))


def _row_blocks(x: np.ndarray, rows: int):
  """``(start, valid rows, padded block)`` covering ``x`` (last block padded
  to ``rows`` so that every block has one shape and one compilation)."""
  n = x.shape[0]
  for start in range(0, n, rows):
    blk = x[start:start + rows]
    if blk.shape[0] < rows:
      blk = np.concatenate(
          [blk, np.zeros((rows - blk.shape[0], x.shape[1]), x.dtype)])
    yield start, min(rows, n - start), blk


def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
  """``[A, B]`` squared Euclidean distances, clipped at 0."""
  ab = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  d2 = jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :]
  return jnp.maximum(d2 - 2.0 * ab, 0.0)


@functools.partial(jax.jit, static_argnames=('k', 'mask', 'refine'))
def _knn_block(rows, cols, row_start, *, k: int, mask: str, refine: bool):
  """The ``k`` smallest squared distances (ascending) and their column
  indices for a block of rows. ``mask``: 'none'; 'self' leaves out column
  ``row_start + r`` for row ``r`` (queries are the reference set); 'upper'
  keeps only columns after the row's own index (pairs ``i < j``). Left-out
  entries are ``+inf``. ``refine`` recomputes the ``k`` selected distances as
  ``sum((a - b)^2)`` (exactly 0 for equal rows, no cancellation) and
  re-sorts them."""
  d2 = _sq_dists(rows, cols)
  if mask != 'none':
    r = row_start + jnp.arange(rows.shape[0])[:, None]
    c = jnp.arange(cols.shape[0])[None, :]
    d2 = jnp.where((c == r) if mask == 'self' else (c <= r), jnp.inf, d2)
  neg, idx = jax.lax.top_k(-d2, k)
  d2 = -neg
  if refine:
    exact = jnp.sum((rows[:, None, :] - cols[idx]) ** 2, axis=-1)
    d2 = jnp.where(jnp.isinf(d2), jnp.inf, exact)
    order = jnp.argsort(d2, axis=1, stable=True)
    d2 = jnp.take_along_axis(d2, order, axis=1)
    idx = jnp.take_along_axis(idx, order, axis=1)
  return d2, idx


def _knn_sq(queries: np.ndarray, reference: np.ndarray, *, k: int,
            mask: str = 'none', refine: bool = False, block_size=None):
  """Streaming k-NN: float64 ``[N, k]`` squared distances (ascending) and
  int64 ``[N, k]`` reference indices. ``queries``/``reference`` are float64
  numpy arrays (already centred)."""
  n = queries.shape[0]
  rows = _block_rows(n, reference.shape[0], block_size)
  if refine:  # the [rows, k, D] differences stay within the same budget
    rows = max(1, min(rows, _BLOCK_ELEMENTS // (k * queries.shape[1])))
  ref = _device(reference)
  d2 = np.empty((n, k), np.float64)
  idx = np.empty((n, k), np.int64)
  for start, valid, blk in _row_blocks(queries, rows):
    bd, bi = _knn_block(_device(blk), ref, start, k=k, mask=mask,
                        refine=refine)
    d2[start:start + valid] = np.asarray(bd, np.float64)[:valid]
    idx[start:start + valid] = np.asarray(bi)[:valid]
  return d2, idx


def _knn_radii_sq(x: np.ndarray, k: int, block_size=None) -> np.ndarray:
  """``NND_k(x_i)^2`` for every row of ``x`` (itself excluded)."""
  d2, _ = _knn_sq(x, x, k=k, mask='self', block_size=block_size)
  return d2[:, k - 1]


@jax.jit
def _ball_block(fake, fake_r2, valid, real, real_r2):
  """Ball memberships of one block of generated rows against all reals.

  Returns per generated row: ``[B]`` any real closed ball holds it
  (precision), ``[B]`` number of open real balls holding it (density); per
  real: ``[N]`` some valid row of the block lies in its open ball (coverage),
  ``[N]`` it lies in the closed ball of some valid row (recall).
  """
  d2 = _sq_dists(fake, real)
  in_closed = d2 <= real_r2[None, :]
  in_open = d2 < real_r2[None, :]
  ok = valid[:, None]
  return (jnp.any(in_closed, axis=1), jnp.sum(in_open, axis=1),
          jnp.any(in_open & ok, axis=0),
          jnp.any((d2 <= fake_r2[:, None]) & ok, axis=0))


def _ball_stats(real: np.ndarray, fake: np.ndarray, real_r2: np.ndarray,
                fake_r2: np.ndarray, block_size=None):
  """Sums of :func:`_ball_block` over all generated rows: (#generated in a
  closed real ball, #(generated, real ball) open memberships, #reals whose
  open ball holds a generated point, #reals in a closed generated ball)."""
  n, m = real.shape[0], fake.shape[0]
  rows = _block_rows(m, n, block_size)
  real_d, real_r2_d = _device(real), _device(real_r2)
  fake_r2 = np.concatenate([fake_r2, np.full(rows, -np.inf)])
  precision_hits, density_count = 0, 0
  coverage = np.zeros(n, bool)
  recall = np.zeros(n, bool)
  for start, valid, blk in _row_blocks(fake, rows):
    mask = np.arange(rows) < valid
    p, d, c, r = _ball_block(_device(blk), _device(fake_r2[start:start + rows]),
                             jnp.asarray(mask), real_d, real_r2_d)
    precision_hits += int(np.sum(np.asarray(p)[:valid]))
    density_count += int(np.sum(np.asarray(d)[:valid]))
    coverage |= np.asarray(c)
    recall |= np.asarray(r)
  return precision_hits, density_count, int(coverage.sum()), int(recall.sum())


def precision_recall(real_feats, fake_feats, *, k: int = 3,
                     block_size: int | None = None) -> tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019).

  ``precision = 1/M sum_j 1[exists i: ||y_j - x_i|| <= NND_k(x_i)]``: the
  fraction of generated samples inside at least one real k-NN ball
  (fidelity); ``recall = 1/N sum_i 1[exists j: ||x_i - y_j|| <= NND_k(y_j)]``:
  the fraction of real samples inside at least one generated k-NN ball
  (diversity). The paper uses ``k = 3`` and 50k samples of each.

  Args:
    real_feats: ``[N, D]`` real features (``N > k``).
    fake_feats: ``[M, D]`` generated features (``M > k``).
    k: neighbourhood size.
    block_size: query rows per distance block (``None``: automatic).

  Returns:
    ``(precision, recall)`` as Python floats in ``[0, 1]``.
  """
  real = _features_2d(real_feats, 'precision_recall real_feats')
  fake = _features_2d(fake_feats, 'precision_recall fake_feats')
  _check_dims('precision_recall', real, fake)
  k = _check_k('precision_recall', k, real.shape[0], 'real')
  _check_k('precision_recall', k, fake.shape[0], 'generated')
  real, fake = _centred(real, fake)
  real_r2 = _knn_radii_sq(real, k, block_size)
  fake_r2 = _knn_radii_sq(fake, k, block_size)
  p, _, _, r = _ball_stats(real, fake, real_r2, fake_r2, block_size)
  return p / fake.shape[0], r / real.shape[0]


def density_coverage(real_feats, fake_feats, *, k: int = 5,
                     block_size: int | None = None) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020).

  ``density = 1/(k M) sum_j sum_i 1[||y_j - x_i|| < NND_k(x_i)]`` (about 1
  when the generated samples follow the real distribution; above 1 when they
  crowd into dense real regions; unbounded) and
  ``coverage = 1/N sum_i 1[exists j: ||y_j - x_i|| < NND_k(x_i)]`` (the
  fraction of real balls holding at least one generated sample, in
  ``[0, 1]``). Only real balls are used, which makes both robust to generated
  outliers. The paper uses ``k = 5``.

  Args:
    real_feats: ``[N, D]`` real features (``N > k``).
    fake_feats: ``[M, D]`` generated features.
    k: neighbourhood size.
    block_size: query rows per distance block (``None``: automatic).

  Returns:
    ``(density, coverage)`` as Python floats.
  """
  real = _features_2d(real_feats, 'density_coverage real_feats')
  fake = _features_2d(fake_feats, 'density_coverage fake_feats')
  _check_dims('density_coverage', real, fake)
  k = _check_k('density_coverage', k, real.shape[0], 'real')
  real, fake = _centred(real, fake)
  real_r2 = _knn_radii_sq(real, k, block_size)
  _, d, c, _ = _ball_stats(real, fake, real_r2,
                           np.full(fake.shape[0], -np.inf), block_size)
  return d / (k * fake.shape[0]), c / real.shape[0]


def nearest_neighbour_distances(queries, reference, *,
                                block_size: int | None = None) -> np.ndarray:
  """``min_i ||q_n - r_i||`` for every query: float64 ``[N]``.

  ``queries`` ``[N, D]`` and ``reference`` ``[R, D]`` are separate sets (a
  query equal to a reference point gets distance 0).
  """
  q = _features_2d(queries, 'nearest_neighbour_distances queries')
  ref = _features_2d(reference, 'nearest_neighbour_distances reference')
  _check_dims('nearest_neighbour_distances', q, ref)
  ref, q = _centred(ref, q)
  d2, _ = _knn_sq(q, ref, k=1, refine=True, block_size=block_size)
  return np.sqrt(d2[:, 0])


def memorisation_report(train, generated, held_out, *,
                        percentiles=(1, 5, 25, 50, 75),
                        threshold_percentile: float = 1.0,
                        block_size: int | None = None) -> dict:
  """Compares nearest-training-neighbour distances of generated and held-out
  samples (a memorisation / copying check).

  With ``g_j = min_i ||generated_j - train_i||`` and
  ``h_j = min_i ||held_out_j - train_i||`` (:func:`nearest_neighbour_distances`)
  and ``t`` the ``threshold_percentile``-th percentile of ``h``
  (``np.percentile``, linear interpolation), returns:

  * ``'generated_mean'``, ``'held_out_mean'``: means of ``g`` and ``h``;
  * ``'generated_p{q}'``, ``'held_out_p{q}'`` for each ``q`` in
    ``percentiles`` (e.g. ``'generated_p50'``, the median);
  * ``'threshold'``: ``t``;
  * ``'frac_generated_closer'``: ``mean_j 1[g_j < t]``. Held-out data is an
    independent sample from the data distribution, so a generator that does
    not copy gives about ``threshold_percentile / 100``; a generator that
    reproduces training examples gives much more;
  * ``'frac_held_out_closer'``: ``mean_j 1[h_j < t]``, the same statistic for
    the held-out set itself (about ``threshold_percentile / 100``);
  * ``'median_ratio'``: ``median(g) / median(h)`` (well below 1 suggests
    copying; ``inf`` if ``median(h) = 0``);
  * ``'num_generated'``, ``'num_held_out'``.

  Use equal numbers of generated and held-out samples and the same feature
  space for all three sets.
  """
  g = nearest_neighbour_distances(generated, train, block_size=block_size)
  h = nearest_neighbour_distances(held_out, train, block_size=block_size)
  if not 0.0 <= threshold_percentile <= 100.0:
    raise ValueError('memorisation_report: threshold_percentile must be in '
                     f'[0, 100], got {threshold_percentile}')
  report = {'generated_mean': float(g.mean()), 'held_out_mean': float(h.mean())}
  for q in percentiles:
    report[f'generated_p{q:g}'] = float(np.percentile(g, q))
    report[f'held_out_p{q:g}'] = float(np.percentile(h, q))
  t = float(np.percentile(h, threshold_percentile))
  med_g, med_h = float(np.median(g)), float(np.median(h))
  report.update(
      threshold=t,
      frac_generated_closer=float(np.mean(g < t)),
      frac_held_out_closer=float(np.mean(h < t)),
      median_ratio=(med_g / med_h if med_h > 0 else
                    (float('inf') if med_g > 0 else float('nan'))),
      num_generated=int(g.shape[0]),
      num_held_out=int(h.shape[0]))
  return report
