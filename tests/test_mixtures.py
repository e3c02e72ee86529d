"""2-D mixture data and mode-coverage metrics against hand-derived values."""

import math

import numpy as np
import pytest

from experiments.configs import mog
from gan_stability.data import mixtures
from gan_stability.metrics import assign, mode_metrics



def _next(it):
  """The images (points) of an iterator's next batch, a dict ``{'x': ...}``
  (unconditional data sets have no other key)."""
  batch = next(it)
  assert isinstance(batch, dict) and set(batch) == {'x'}, batch
  return batch['x']

def test_ring_centers_are_distinct_and_on_the_circle():
  c = mixtures.ring_centers(8, 1.0)
  assert c.shape == (8, 2)
  np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-12)
  np.testing.assert_allclose(c[0], [1.0, 0.0], atol=1e-12)
  np.testing.assert_allclose(c[2], [0.0, 1.0], atol=1e-12)
  # Neighbouring modes are 2 sin(pi/8) apart; no duplicate (linspace bug).
  d = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(8) * 10
  np.testing.assert_allclose(d.min(), 2 * math.sin(math.pi / 8), rtol=1e-12)


def test_grid_centers():
  c = mixtures.grid_centers(5, 2.0)
  assert c.shape == (25, 2)
  assert sorted(set(c[:, 0])) == [-4.0, -2.0, 0.0, 2.0, 4.0]
  assert len({tuple(p) for p in c}) == 25


def test_sampling_statistics():
  m = mixtures.Mixture(mixtures.ring_centers(8, 1.0), 0.01)
  x = m.sample(np.random.default_rng(0), 80000)
  idx, _ = assign(x, m.centers)
  counts = np.bincount(idx, minlength=8)
  np.testing.assert_allclose(counts / len(x), 1 / 8, atol=0.01)
  resid = x - m.centers[idx]
  np.testing.assert_allclose(resid.std(axis=0), 0.01, rtol=0.02)
  assert x.dtype == np.float32


def test_iterator_is_deterministic_resumable_and_process_sliced():
  cfg = mog.get_config('smoke')
  m = mixtures.from_config(cfg)
  it = mixtures.MixtureIterator(m, global_batch=8, seed=3)
  batches = [_next(it) for _ in range(5)]
  it2 = mixtures.MixtureIterator(m, global_batch=8, seed=3)
  it2.set_state({'index': 3})
  np.testing.assert_array_equal(_next(it2), batches[3])
  assert it2.get_state() == {'index': 4}
  # Two "processes" each see half of the same global batch.
  halves = [_next(mixtures.MixtureIterator(m, global_batch=8, seed=3,
                                          process_index=p, process_count=2))
            for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), batches[0])
  other_seed = _next(mixtures.MixtureIterator(m, global_batch=8, seed=4))
  assert not np.allclose(other_seed, batches[0])


def test_mode_metrics_hand_computed():
  centers = mixtures.ring_centers(8, 1.0)
  sigma = 0.01
  # 3 modes hit exactly, 100 samples each -> 3 modes, 100% HQ,
  # KL(p || U) = sum (1/3) log((1/3) * 8) = log(8/3).
  samples = np.repeat(centers[:3], 100, axis=0)
  r = mode_metrics(samples, centers, sigma)
  assert r['modes'] == 3
  assert r['high_quality'] == pytest.approx(100.0)
  assert r['kl'] == pytest.approx(math.log(8 / 3), rel=1e-12)
  # Perfectly balanced: KL 0, all modes.
  r = mode_metrics(np.repeat(centers, 10, axis=0), centers, sigma)
  assert (r['modes'], r['kl']) == (8, pytest.approx(0.0, abs=1e-12))
  # Just inside / just outside 3 sigma.
  inside = centers[:1] + np.array([[0.0299, 0.0]])
  outside = centers[1:2] + np.array([[0.0, 0.0301]])
  r = mode_metrics(np.concatenate([inside, outside]), centers, sigma)
  assert r['modes'] == 1 and r['high_quality'] == pytest.approx(50.0)
  assert r['kl'] == pytest.approx(math.log(8 / 2))
  # Far samples: low quality but still in the histogram (all nearest mode 0).
  r = mode_metrics(np.array([[5.0, 0.0]] * 4), centers, sigma)
  assert (r['modes'], r['high_quality']) == (0, 0.0)
  assert r['kl'] == pytest.approx(math.log(8))
  # min_count: a mode needs that many HQ samples.
  s = np.concatenate([np.repeat(centers[:1], 5, 0), np.repeat(centers[1:2], 1, 0)])
  assert mode_metrics(s, centers, sigma, min_count=2)['modes'] == 1


def test_mode_metrics_nonfinite_samples_are_low_quality():
  centers = mixtures.grid_centers(5, 2.0)
  s = np.array([[0.0, 0.0], [np.nan, 0.0], [np.inf, 1.0], [2.0, 2.0]])
  r = mode_metrics(s, centers, 0.05)
  assert r['modes'] == 2
  assert r['high_quality'] == pytest.approx(50.0)
  assert r['kl'] == pytest.approx(math.log(25 / 2))
