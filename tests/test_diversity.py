"""Birthday-paradox duplicates, duplicate rates and MS-SSIM diversity."""

import math
import os

import jax
import numpy as np
import pytest

from gan_stability.data import idx
from gan_stability.metrics import diversity
from gan_stability.metrics import image_quality

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.environ.get(
    'GAN_STABILITY_DATA_DIR',
    os.path.normpath(os.path.join(TESTS_DIR, '..', '..', 'shared', 'data')))


def _all_pairs(x):
  """Every pair i < j of [s, D] sorted by distance (brute force)."""
  i, j = np.triu_indices(len(x), k=1)
  d = np.linalg.norm(x[i] - x[j], axis=1)
  order = np.argsort(d, kind='stable')
  return np.stack([i[order], j[order]], axis=1), d[order]


def test_planted_duplicate_is_the_closest_pair():
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, size=(64, 8, 8, 3))
  images[50] = images[10] + rng.normal(0, 1e-3, size=(8, 8, 3))
  r = diversity.birthday_paradox(images, num_pairs=20, block_size=9)
  assert r['pairs'][0].tolist() == [10, 50]
  assert r['distances'][0] < 0.05 < 1.0 < r['distances'][1]
  assert r['batch_size'] == 64 and r['support_size_estimate'] == 64 ** 2
  # The 20 closest pairs and distances agree with brute force.
  want_pairs, want_d = _all_pairs(images.reshape(64, -1))
  np.testing.assert_array_equal(r['pairs'], want_pairs[:20])
  np.testing.assert_allclose(r['distances'], want_d[:20], rtol=1e-4,
                             atol=1e-3)
  assert np.all(np.diff(r['distances']) >= 0)
  # In a feature space where 3 and 7 coincide, they are the closest pair.
  feats = rng.normal(size=(64, 5)) * 1e3  # large norms: exact copies still 0
  feats[7] = feats[3]
  r = diversity.birthday_paradox(images, features=feats, num_pairs=3)
  assert r['pairs'][0].tolist() == [3, 7] and r['distances'][0] == 0.0
  # num_pairs is capped at s (s - 1) / 2.
  r = diversity.birthday_paradox(images[:4], num_pairs=100)
  assert r['pairs'].shape == (6, 2)
  np.testing.assert_array_equal(r['pairs'],
                                _all_pairs(images[:4].reshape(4, -1))[0])


def test_duplicate_rate_counts():
  # 40 distinct points in 4 batches of 10; duplicates planted in batches 0
  # (one pair) and 2 (a triple), plus a cross-batch copy that must not count.
  rng = np.random.default_rng(1)
  x = rng.normal(size=(40, 6)) * 10
  x[3] = x[7]
  x[21] = x[22] = x[28]
  x[35] = x[5]  # batch 3 copies a batch-0 point
  r = diversity.duplicate_rate(x, threshold=1e-3, batch_size=10)
  # Samples with a duplicate: 3, 7, 21, 22, 28 -> 5 / 40. Batches: 2 / 4.
  assert r['duplicate_fraction'] == 5 / 40
  assert r['batch_duplicate_probability'] == 0.5 and r['paradox_triggered']
  assert r['support_size_estimate'] == 100 and r['num_batches'] == 4
  # Uniform support S with 1 - exp(-10 * 9 / (2 S)) = 0.5: S = 45 / ln 2.
  assert r['uniform_support_estimate'] == pytest.approx(45 / math.log(2))
  one = diversity.duplicate_rate(x, threshold=1e-3)  # one batch of 40
  assert one['duplicate_fraction'] == 7 / 40 and one['num_batches'] == 1
  none = diversity.duplicate_rate(x[8:20], threshold=1e-3)
  assert none['batch_duplicate_probability'] == 0.0
  assert none['uniform_support_estimate'] == math.inf
  assert not none['paradox_triggered']
  with pytest.raises(ValueError, match='batch_size'):
    diversity.duplicate_rate(x, threshold=1.0, batch_size=41)


def test_birthday_estimate_of_a_known_support():
  # Samples drawn uniformly from S = 300 distinct items. For batches of
  # s = 24, P(duplicate) = 1 - prod_{i<24} (1 - i / 300) = 0.6113, so the
  # paradox triggers (support ~ s^2 = 576, the right order) and the uniform
  # estimate recovers S up to sampling noise (200 batches).
  rng = np.random.default_rng(2)
  items = rng.normal(size=(300, 16))
  p_true = 1 - np.prod(1 - np.arange(24) / 300)
  assert p_true == pytest.approx(0.6113, abs=1e-4)
  x = items[rng.integers(0, 300, size=24 * 200)]
  r = diversity.duplicate_rate(x, threshold=1e-3, batch_size=24)
  assert abs(r['batch_duplicate_probability'] - p_true) < 0.1
  assert r['paradox_triggered'] and r['support_size_estimate'] == 576
  assert 200 < r['uniform_support_estimate'] < 450


def test_random_pairs_are_distinct_and_uniform():
  pairs = diversity.random_pairs(jax.random.key(0), 5, 20000)
  assert pairs.shape == (20000, 2) and pairs.dtype == np.int64
  assert np.all(pairs[:, 0] != pairs[:, 1])
  counts = np.bincount(pairs[:, 0] * 5 + pairs[:, 1], minlength=25)
  off = counts[np.arange(25) % 6 != 0]  # the 20 ordered pairs i != j
  np.testing.assert_allclose(off / 20000, 1 / 20, atol=0.006)


def test_pairwise_ms_ssim_diversity():
  rng = np.random.default_rng(3)
  noise = rng.uniform(-1, 1, size=(40, 28, 28, 1))
  key = jax.random.key(1)
  got = diversity.pairwise_ms_ssim_diversity(noise, key=key, num_pairs=50,
                                             data_range=2.0, chunk_size=16)
  # The documented computation: 2 scales fit 28 x 28 with the 11-tap window.
  p = diversity.random_pairs(key, 40, 50)
  want = image_quality.ms_ssim(noise[p[:, 0]], noise[p[:, 1]],
                               data_range=2.0, num_scales=2)
  assert got == pytest.approx(float(np.mean(want)), abs=1e-6)
  assert got < 0.1  # independent noise images are very diverse
  # A collapsed generator (one image repeated) scores 1.
  same = np.repeat(noise[:1], 10, axis=0)
  assert diversity.pairwise_ms_ssim_diversity(
      same, key=key, num_pairs=50, data_range=2.0) == pytest.approx(1.0,
                                                                    abs=1e-6)


def test_ms_ssim_diversity_of_real_digits():
  path = os.path.join(DATA_DIR, 'mnist')
  if not os.path.isfile(os.path.join(path, 't10k-images-idx3-ubyte.gz')):
    pytest.skip(f'real MNIST IDX files not found in {path} '
                '(set GAN_STABILITY_DATA_DIR)')
  x, y = idx.load_idx_dataset(path, 'test')
  x = x[:2000].astype(np.float32) / 127.5 - 1.0
  y = y[:2000]
  key = jax.random.key(2)
  mixed = diversity.pairwise_ms_ssim_diversity(x[:400], key=key,
                                               num_pairs=64, data_range=2.0)
  ones = diversity.pairwise_ms_ssim_diversity(x[y == 1][:200], key=key,
                                              num_pairs=64, data_range=2.0)
  # Pairs of one class are more alike than pairs of all classes.
  assert 0.0 < mixed < ones < 1.0
