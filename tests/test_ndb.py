"""NDB (Richardson & Weiss 2018): k-means bins, per-bin z-tests, bin JS."""

import math
import os

import numpy as np
import pytest

from gan_stability.data import idx
from gan_stability.metrics import ndb

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.environ.get(
    'GAN_STABILITY_DATA_DIR',
    os.path.normpath(os.path.join(TESTS_DIR, '..', '..', 'shared', 'data')))

# Four well-separated 2-D modes (10 standard deviations apart).
MODES = np.array([[0., 0.], [10., 0.], [0., 10.], [10., 10.]])


def _mixture(seed, n, modes=(0, 1, 2, 3)):
  rng = np.random.default_rng(seed)
  which = np.asarray(modes)[rng.integers(0, len(modes), n)]
  return MODES[which] + rng.normal(size=(n, 2)), which


def test_hand_computed_z_test_and_js():
  # Bins at 0 and 10 (fixed centres). Real: 50 / 50; generated: 70 / 30.
  # P = (.5, .5), Q = (.7, .3); pooled p = (50 + 70) / 200 = 0.6 in bin 0,
  # SE = sqrt(.6 * .4 * (1/100 + 1/100)) = 0.0692820, z = -0.2 / SE =
  # -2.886751, two-sided p-value = erfc(2.886751 / sqrt 2) = 0.003892 < 0.05:
  # both bins differ (bin 1 has z = +2.886751).
  # JS: A = (.6, .4); KL(P||A) = .5 ln(5/6) + .5 ln(5/4) = 0.020411,
  # KL(Q||A) = .7 ln(7/6) + .3 ln(3/4) = 0.021601; JS = 0.021006 nats.
  centers = np.array([[0.], [10.]])
  real = np.array([[0.]] * 50 + [[10.]] * 50)
  fake = np.array([[0.1]] * 70 + [[9.]] * 30)
  r = ndb.ndb(real, fake, centers=centers)
  np.testing.assert_allclose(r['z'], [-2.886751, 2.886751], atol=1e-6)
  np.testing.assert_allclose(r['p_values'], 0.003892, atol=2e-6)
  assert r['ndb'] == 2 and r['ndb_over_k'] == 1.0
  np.testing.assert_array_equal(r['different'], [True, True])
  np.testing.assert_allclose(r['real_proportions'], [.5, .5])
  np.testing.assert_allclose(r['fake_proportions'], [.7, .3])
  js = 0.5 * (.5 * math.log(5 / 6) + .5 * math.log(5 / 4)) + 0.5 * (
      .7 * math.log(7 / 6) + .3 * math.log(3 / 4))
  assert r['js'] == pytest.approx(js) and js == pytest.approx(0.021006,
                                                              abs=1e-6)
  # 55 / 45: z = -0.05 / sqrt(.525 * .475 * .02) = -0.70799, p = 0.479.
  r = ndb.ndb(real, np.array([[0.]] * 55 + [[10.]] * 45), centers=centers)
  assert r['ndb'] == 0
  np.testing.assert_allclose(r['p_values'], 0.4790, atol=1e-4)
  # Cross-check the p-values with scipy's normal distribution.
  stats = pytest.importorskip('scipy.stats')
  np.testing.assert_allclose(r['p_values'], 2 * stats.norm.sf(abs(r['z'])))


def test_kmeans_small_and_deterministic():
  x = np.array([[0.], [1.], [10.], [11.], [0.5]])
  centers, labels = ndb.kmeans(x, num_clusters=2, seed=0)
  order = np.argsort(centers[:, 0])
  np.testing.assert_allclose(centers[order, 0], [0.5, 10.5])
  assert len(set(labels[:2]) | {labels[4]}) == 1 and labels[2] == labels[3]
  np.testing.assert_array_equal(ndb.assign_bins(x, centers), labels)
  data, _ = _mixture(0, 1000)
  a = ndb.kmeans(data, num_clusters=12, seed=3)
  b = ndb.kmeans(data, num_clusters=12, seed=3)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  # Every centre is the mean of its points (a Lloyd fixed point).
  for j in range(12):
    np.testing.assert_allclose(a[0][j], data[a[1] == j].mean(axis=0))
  with pytest.raises(ValueError, match='distinct points'):
    ndb.kmeans(np.zeros((5, 2)), num_clusters=2)
  with pytest.raises(ValueError, match='num_clusters'):
    ndb.kmeans(x, num_clusters=6)


def test_same_distribution_gives_few_different_bins():
  real, _ = _mixture(1, 4000)
  fake, _ = _mixture(2, 4000)
  r = ndb.ndb(real, fake, num_bins=40, seed=0)
  # Each bin is a 5% test, so NDB/K is about 0.05.
  assert r['ndb_over_k'] <= 0.15 and r['js'] < 0.01
  assert r['centers'].shape == (40, 2) and r['different'].shape == (40,)
  np.testing.assert_allclose(r['real_proportions'].sum(), 1.0)


def test_missing_mode_flags_its_bins():
  real, real_mode = _mixture(1, 4000)
  fake, _ = _mixture(3, 4000, modes=(1, 2, 3))  # mode 0 dropped
  same = ndb.ndb(real, _mixture(2, 4000)[0], num_bins=40, seed=0)
  r = ndb.ndb(real, fake, num_bins=40, seed=0)
  labels = ndb.assign_bins(real, r['centers'])
  # With modes 10 sigma apart no bin straddles two modes.
  bin_mode = np.array([np.bincount(real_mode[labels == j]).argmax()
                       for j in range(40)])
  for j in range(40):
    assert np.all(real_mode[labels == j] == bin_mode[j])
  mode0 = bin_mode == 0
  assert mode0.sum() >= 3
  # Every bin of the missing mode is flagged, empty in the generated set and
  # has z > 0 (real proportion larger).
  assert r['different'][mode0].all()
  np.testing.assert_array_equal(r['fake_proportions'][mode0], 0.0)
  assert (r['z'][mode0] > 0).all() and (r['z'][~mode0] <= 0).sum() > 0
  assert r['ndb'] >= mode0.sum() and r['ndb'] > same['ndb']
  assert r['js'] > 0.05 > same['js']
  # Precomputed centres reproduce the fitted run.
  again = ndb.ndb(real, fake, centers=r['centers'])
  assert again['ndb'] == r['ndb'] and again['js'] == r['js']


def test_real_mnist_missing_digit():
  path = os.path.join(DATA_DIR, 'mnist')
  if not os.path.isfile(os.path.join(path, 't10k-images-idx3-ubyte.gz')):
    pytest.skip(f'real MNIST IDX files not found in {path} '
                '(set GAN_STABILITY_DATA_DIR)')
  x, y = idx.load_idx_dataset(path, 'test')
  # A random split: the first and second halves of the MNIST test set come
  # from different writers and differ measurably.
  perm = np.random.default_rng(0).permutation(len(x))[:6000]
  x = x[perm].astype(np.float64) / 255.0  # [6000, 28, 28, 1], flattened
  y = y[perm]
  real, real_y = x[:3000], y[:3000]
  held_out, held_y = x[3000:], y[3000:]
  same = ndb.ndb(real, held_out, num_bins=20, seed=0)
  no_ones = ndb.ndb(real, held_out[held_y != 1], centers=same['centers'])
  assert same['ndb_over_k'] <= 0.25
  # Bins made mostly (> 60%) of real 1s are all flagged when 1s are never
  # generated.
  labels = ndb.assign_bins(real, same['centers'])
  ones = np.array([np.mean(real_y[labels == j] == 1) > 0.6
                   for j in range(20)])
  assert ones.sum() >= 1
  assert no_ones['different'][ones].all() and (no_ones['z'][ones] > 0).all()
  assert no_ones['ndb'] > same['ndb'] and no_ones['js'] > same['js']


def test_validation():
  with pytest.raises(ValueError, match='differ in size'):
    ndb.ndb(np.zeros((10, 2)), np.zeros((10, 3)), num_bins=2)
  with pytest.raises(ValueError, match='alpha'):
    ndb.ndb(np.eye(4), np.eye(4), num_bins=2, alpha=1.5)
  with pytest.raises(ValueError, match='non-finite'):
    ndb.ndb(np.full((4, 2), np.inf), np.zeros((4, 2)), num_bins=2)
