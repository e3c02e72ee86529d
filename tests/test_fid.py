"""FID, KID, Inception Score and the reference-statistics cache, checked
against independent numpy / scipy computations and closed forms."""

import os

import jax
import numpy as np
import pytest
import scipy.linalg

from gan_stability.errors import WriteFailed
from gan_stability.metrics import fid_kid as fid_lib


def _correlated(rng, n, d, shift=0.0, scale=1.0):
  mix = rng.normal(size=(d, d)) / np.sqrt(d)
  return shift + scale * rng.normal(size=(n, d)) @ mix + rng.normal(size=(n, d))


# ------------------------------------------------------------------ FID ---


def _scipy_fid(a, b):
  """The textbook formula with scipy's general matrix square root."""
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2)
  covmean = np.real(covmean)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) -
               2 * np.trace(covmean))


def test_fid_matches_scipy_sqrtm():
  rng = np.random.default_rng(0)
  a = _correlated(rng, 400, 24)
  b = _correlated(rng, 300, 24, shift=0.3, scale=1.5)
  expected = _scipy_fid(a, b)
  assert expected > 1.0
  np.testing.assert_allclose(fid_lib.fid(a, b), expected, rtol=1e-8)
  np.testing.assert_allclose(fid_lib.fid(a.astype(np.float32), b),
                             _scipy_fid(a.astype(np.float32).astype(np.float64),
                                        b), rtol=1e-8)


def test_gaussian_stats_is_mean_and_unbiased_cov():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(50, 5))
  mu, sigma = fid_lib.gaussian_stats(a)
  np.testing.assert_allclose(mu, a.mean(0))
  centred = a - a.mean(0)
  np.testing.assert_allclose(sigma, centred.T @ centred / 49)
  with pytest.raises(ValueError, match='at least 2'):
    fid_lib.gaussian_stats(a[:1])
  with pytest.raises(ValueError, match=r'\[N, d\]'):
    fid_lib.gaussian_stats(a[0])


def test_fid_of_a_set_with_itself_is_zero():
  rng = np.random.default_rng(2)
  a = _correlated(rng, 300, 64)
  assert fid_lib.fid(a, a) == pytest.approx(0.0, abs=1e-8)
  # Fewer samples than dimensions: singular covariance, still ~0 and finite.
  b = _correlated(rng, 20, 64)
  assert fid_lib.fid(b, b) == pytest.approx(0.0, abs=1e-8)


def test_fid_closed_form_diagonal_and_commuting():
  """Commuting S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T: the trace term is
  sum_i (sqrt(a_i) - sqrt(b_i))^2."""
  rng = np.random.default_rng(3)
  d = 6
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  a = np.array([1.0, 4.0, 0.25, 9.0, 2.0, 0.5])
  b = np.array([4.0, 1.0, 1.0, 16.0, 2.0, 3.0])
  expected = (np.sum((mu1 - mu2) ** 2) +
              np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
  np.testing.assert_allclose(
      fid_lib.fid_from_stats(mu1, np.diag(a), mu2, np.diag(b)), expected,
      rtol=1e-12)
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  np.testing.assert_allclose(
      fid_lib.fid_from_stats(mu1, q @ np.diag(a) @ q.T, mu2,
                             q @ np.diag(b) @ q.T), expected, rtol=1e-10)


def test_fid_closed_form_scalar_and_singular():
  # 1-D: (0 - 1)^2 + (1 - 2)^2 for N(0, 1) vs N(1, 4).
  assert fid_lib.fid_from_stats([0.0], [[1.0]], [1.0], [[4.0]]) == (
      pytest.approx(2.0, rel=1e-12))
  # Rank-deficient covariances (a general sqrtm(S1 S2) is singular here).
  value = fid_lib.fid_from_stats(np.zeros(3), np.diag([0.0, 1.0, 4.0]),
                                 np.zeros(3), np.diag([1.0, 0.0, 9.0]))
  assert value == pytest.approx(1.0 + 1.0 + 1.0, rel=1e-12)


def test_fid_rejects_bad_input():
  with pytest.raises(ValueError, match='non-finite'):
    fid_lib.fid(np.full((3, 2), np.nan), np.zeros((3, 2)))
  with pytest.raises(ValueError, match='mu'):
    fid_lib.fid_from_stats(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


# ------------------------------------------------------------------ KID ---


def _loop_mmd2(x, y):
  """The unbiased estimator written out term by term."""
  m, d = x.shape
  k = lambda u, v: (float(np.dot(u, v)) / d + 1.0) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
  return (xx + yy) / (m * (m - 1)) - 2.0 * xy / (m * m)


def test_kid_matches_direct_loop_with_same_subsets():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(40, 8))
  b = rng.normal(size=(30, 8)) + 0.5
  key = jax.random.key(7)
  idx_a, idx_b = fid_lib.kid_subset_indices(key, 40, 30, num_subsets=5,
                                            subset_size=20)
  assert idx_a.shape == idx_b.shape == (5, 20)
  for i in range(5):  # without replacement within a subset
    assert len(set(idx_a[i])) == 20 and len(set(idx_b[i])) == 20
  per_subset = [_loop_mmd2(a[i], b[j]) for i, j in zip(idx_a, idx_b)]
  value, std = fid_lib.kid(a, b, key=key, num_subsets=5, subset_size=20,
                           return_std=True)
  np.testing.assert_allclose(value, np.mean(per_subset), rtol=1e-10)
  np.testing.assert_allclose(std, np.std(per_subset), rtol=1e-8)
  assert fid_lib.kid(a, b, key=key, num_subsets=5, subset_size=20) == value


def test_kid_subset_size_is_clipped_to_the_smaller_set():
  idx_a, idx_b = fid_lib.kid_subset_indices(jax.random.key(0), 50, 12,
                                            num_subsets=3, subset_size=1000)
  assert idx_a.shape == idx_b.shape == (3, 12)
  assert all(sorted(row) == list(range(12)) for row in idx_b)
  with pytest.raises(ValueError, match='at least 2'):
    fid_lib.kid(np.zeros((1, 3)), np.zeros((5, 3)), key=jax.random.key(0))


def test_kid_near_zero_for_same_distribution_positive_for_shifted():
  rng = np.random.default_rng(5)
  d = 16
  a, b = rng.normal(size=(2, 1000, d))
  key = jax.random.key(1)
  same, same_std = fid_lib.kid(a, b, key=key, num_subsets=50, subset_size=200,
                               return_std=True)
  shifted = fid_lib.kid(a, b + 0.5, key=key, num_subsets=50, subset_size=200)
  # Unbiased: the same-distribution estimate scatters around 0 (either sign).
  assert abs(same) < same_std
  assert abs(same) < 0.05 * shifted
  assert shifted > 10 * same_std


# ------------------------------------------------------- Inception Score ---


def test_inception_score_uniform_is_one():
  mean, std = fid_lib.inception_score(np.zeros((100, 10)), num_splits=10)
  assert mean == pytest.approx(1.0, abs=1e-12)
  assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize('k', [2, 5, 10])
def test_inception_score_confident_balanced_is_k(k):
  n = 20 * k  # every split of 2k samples holds each class twice
  logits = np.where(np.arange(k)[None, :] == (np.arange(n) % k)[:, None],
                    60.0, -60.0)
  mean, std = fid_lib.inception_score(logits, num_splits=10)
  assert mean == pytest.approx(k, rel=1e-9)
  assert std == pytest.approx(0.0, abs=1e-9)
  # -inf logits (exact zeros in p) are handled and give the same value.
  exact = np.where(logits > 0, 0.0, -np.inf)
  assert fid_lib.inception_score(exact, num_splits=10)[0] == pytest.approx(k)


def test_inception_score_matches_direct_formula():
  rng = np.random.default_rng(6)
  logits = rng.normal(size=(90, 7)) * 3
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  scores = []
  for part in np.split(p, 3):
    py = part.mean(0)
    scores.append(np.exp(np.mean(np.sum(part * np.log(part / py), axis=1))))
  mean, std = fid_lib.inception_score(logits + 100.0, num_splits=3)
  np.testing.assert_allclose([mean, std], [np.mean(scores), np.std(scores)],
                             rtol=1e-10)


# ------------------------------------------------------------- caching ---


def test_reference_stats_computes_once_and_reuses(tmp_path):
  rng = np.random.default_rng(8)
  feats = rng.normal(size=(30, 4))
  calls = []

  def compute():
    calls.append(1)
    return feats

  mu, sigma = fid_lib.reference_stats('toy-train-30', compute,
                                      cache_dir=tmp_path / 'cache')
  assert len(calls) == 1
  assert sorted(os.listdir(tmp_path / 'cache')) == ['toy-train-30.npz']
  np.testing.assert_allclose(mu, feats.mean(0))
  np.testing.assert_allclose(sigma, np.cov(feats, rowvar=False))

  def must_not_run():
    raise AssertionError('features recomputed despite the cache')

  mu2, sigma2 = fid_lib.reference_stats('toy-train-30', must_not_run,
                                        cache_dir=tmp_path / 'cache')
  np.testing.assert_array_equal(mu2, mu)
  np.testing.assert_array_equal(sigma2, sigma)
  # Another name is another entry.
  fid_lib.reference_stats('toy-train-10', lambda: feats[:10],
                          cache_dir=tmp_path / 'cache')
  assert len(os.listdir(tmp_path / 'cache')) == 2


def test_reference_stats_failed_write_leaves_no_file(tmp_path, monkeypatch):
  def broken_savez(*args, **kwargs):
    raise OSError('disk full')

  monkeypatch.setattr(fid_lib.np, 'savez', broken_savez)
  # A failed write is the one-line WriteFailed of every file the runs write.
  with pytest.raises(WriteFailed, match='statistics file .*x.npz.*disk full'):
    fid_lib.reference_stats('x', lambda: np.ones((3, 2)) * [[1], [2], [3]],
                            cache_dir=tmp_path)
  assert os.listdir(tmp_path) == []


def test_reference_stats_bad_name_and_corrupt_cache(tmp_path):
  with pytest.raises(ValueError, match='invalid name'):
    fid_lib.reference_stats('../escape', lambda: None, cache_dir=tmp_path)
  (tmp_path / 'broken.npz').write_text('garbage')
  with pytest.raises(ValueError, match='broken.npz.*delete'):
    fid_lib.reference_stats('broken', lambda: None, cache_dir=tmp_path)
