"""k-NN manifold metrics: precision / recall, density / coverage, NN distances.

Checked three ways: hand-computed 1-D point sets (integer coordinates, so the
float32 distances are exact and the ``<=`` / ``<`` boundary conventions are
tested), a brute-force float64 numpy implementation of the published
definitions on random data, and limiting cases (identical / far-apart sets).
"""

import numpy as np
import pytest

from gan_stability.metrics import manifold

# Real X = {0, 2, 6, 14} and generated Y = {3, 4, 22, 23, 40} on a line.
REAL_1D = np.array([[0.], [2.], [6.], [14.]])
FAKE_1D = np.array([[3.], [4.], [22.], [23.], [40.]])


def _brute_force(real, fake, k):
  """The published definitions, literally, in float64."""
  d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
  d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
  d_fr = np.linalg.norm(fake[:, None] - real[None], axis=-1)  # [M, N]
  # k-th nearest *other* point: column 0 of the sorted row is the point itself.
  r_real = np.sort(d_rr, axis=1)[:, k]
  r_fake = np.sort(d_ff, axis=1)[:, k]
  m, n = len(fake), len(real)
  precision = np.mean([any(d_fr[j, i] <= r_real[i] for i in range(n))
                       for j in range(m)])
  recall = np.mean([any(d_fr[j, i] <= r_fake[j] for j in range(m))
                    for i in range(n)])
  density = sum(d_fr[j, i] < r_real[i] for j in range(m)
                for i in range(n)) / (k * m)
  coverage = np.mean([any(d_fr[j, i] < r_real[i] for j in range(m))
                      for i in range(n)])
  return precision, recall, density, coverage


def test_hand_computed_1d_k1():
  # k = 1 real radii (distance to the nearest other real point):
  #   0 -> 2, 2 -> 2, 6 -> 4, 14 -> 8.
  # Precision (closed balls): 3 (|3-2| = 1 <= 2), 4 (|4-6| = 2 <= 4) and 22
  #   (|22-14| = 8 <= 8, exactly on the sphere) are inside, 23 and 40 are
  #   not: 3/5.
  # k = 1 generated radii: 3 -> 1, 4 -> 1, 22 -> 1, 23 -> 1, 40 -> 17.
  # Recall: real 2 is in the ball of 3 (|2-3| = 1 <= 1); 0 (nearest 3 at 3
  #   > 1), 6 (4 at 2 > 1; 40 at 34 > 17) and 14 are not: 1/4.
  p, r = manifold.precision_recall(REAL_1D, FAKE_1D, k=1)
  assert p == pytest.approx(3 / 5) and r == pytest.approx(1 / 4)
  # Density / coverage (open balls): 3 is in the balls of 2 (1 < 2) and 6
  #   (3 < 4); 4 only in the ball of 6 (2 < 4; |4-2| = 2 is not < 2); 22 is
  #   on the sphere of 14 (8, not < 8): (2 + 1 + 0 + 0 + 0) / (1 * 5) = 0.6.
  # Coverage: the balls of 2 and 6 hold a generated point, those of 0 and 14
  #   do not: 2/4.
  d, c = manifold.density_coverage(REAL_1D, FAKE_1D, k=1)
  assert d == pytest.approx(0.6) and c == pytest.approx(0.5)


def test_hand_computed_1d_k2():
  # k = 2 real radii: 0 -> 6 (dists 2, 6, 14), 2 -> 4 (2, 4, 12),
  #   6 -> 6 (6, 4, 8), 14 -> 12 (14, 12, 8).
  # Precision: 3, 4, 22 (8 <= 12), 23 (9 <= 12) inside, 40 (26) not: 4/5.
  # Generated radii: 3 -> 19, 4 -> 18, 22 -> 18, 23 -> 17, 40 -> 18; every
  #   real point is within 19 of 3 (|14-3| = 11): recall 1.
  p, r = manifold.precision_recall(REAL_1D, FAKE_1D, k=2)
  assert p == pytest.approx(4 / 5) and r == 1.0
  # Density: 3 and 4 lie in all four open balls (e.g. |3-14| = 11 < 12,
  #   |4-14| = 10 < 12), 22 and 23 only in the ball of 14, 40 in none:
  #   (4 + 4 + 1 + 1 + 0) / (2 * 5) = 1.0. Coverage: every ball is hit: 1.
  d, c = manifold.density_coverage(REAL_1D, FAKE_1D, k=2)
  assert d == pytest.approx(1.0) and c == 1.0
  for k in (1, 2):
    got = (*manifold.precision_recall(REAL_1D, FAKE_1D, k=k),
           *manifold.density_coverage(REAL_1D, FAKE_1D, k=k))
    np.testing.assert_allclose(got, _brute_force(REAL_1D, FAKE_1D, k))


@pytest.mark.parametrize('k,block_size', [(3, None), (3, 7), (5, 1), (1, 64)])
def test_matches_brute_force(k, block_size):
  rng = np.random.default_rng(k + (block_size or 0))
  real = rng.normal(size=(157, 6))
  fake = 0.8 * rng.normal(size=(123, 6)) + 0.4  # partly overlapping
  want = _brute_force(real, fake, k)
  p, r = manifold.precision_recall(real, fake, k=k, block_size=block_size)
  d, c = manifold.density_coverage(real, fake, k=k, block_size=block_size)
  np.testing.assert_allclose([p, r, d, c], want, atol=1e-12)
  assert 0 < p < 1 and 0 < r < 1 and 0 < c < 1  # a non-trivial case


def test_identical_and_disjoint_sets():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 10))
  assert manifold.precision_recall(x, x) == (1.0, 1.0)
  d, c = manifold.density_coverage(x, x)
  assert c == 1.0
  # Each open ball holds its centre and the k - 1 nearer neighbours: exactly
  # k per ball, so density 1 (up to a float tie on a sphere).
  assert d == pytest.approx(1.0, abs=2 / (5 * 300))
  far = rng.normal(size=(200, 10)) + 100.0
  assert manifold.precision_recall(x, far) == (0.0, 0.0)
  assert manifold.density_coverage(x, far) == (0.0, 0.0)


def test_mode_dropping_shows_in_recall_and_coverage():
  # Real: two clusters; generated: only the first. Fidelity stays high,
  # diversity halves.
  rng = np.random.default_rng(1)
  real = np.concatenate([rng.normal(size=(200, 2)),
                         rng.normal(size=(200, 2)) + 20.0])
  fake = rng.normal(size=(400, 2))
  p, r = manifold.precision_recall(real, fake)
  d, c = manifold.density_coverage(real, fake)
  assert p > 0.9 and 0.4 < r <= 0.5
  # Each generated point still lies in about k real balls of its cluster:
  # density (a fidelity measure) stays near 1 while coverage halves.
  assert 0.4 < c <= 0.5 and 0.8 < d < 1.2


def test_nearest_neighbour_distances_and_offset_precision():
  rng = np.random.default_rng(2)
  ref = rng.normal(size=(301, 8))
  q = rng.normal(size=(97, 8))
  want = np.linalg.norm(q[:, None] - ref[None], axis=-1).min(axis=1)
  got = manifold.nearest_neighbour_distances(q, ref, block_size=10)
  assert got.shape == (97,) and got.dtype == np.float64
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # A large common offset cancels out (the sets are centred first), even
  # in float32.
  got = manifold.nearest_neighbour_distances(q + 1e4, ref + 1e4)
  np.testing.assert_allclose(got, want, rtol=1e-4)
  # A query equal to a reference point is at distance 0.
  assert manifold.nearest_neighbour_distances(ref[5:6], ref)[0] == 0.0


def test_memorisation_report():
  rng = np.random.default_rng(3)
  train = rng.normal(size=(400, 4))
  held_out = rng.normal(size=(200, 4))
  honest = rng.normal(size=(200, 4))
  copier = train[:200] + 1e-3 * rng.normal(size=(200, 4))
  good = manifold.memorisation_report(train, honest, held_out)
  bad = manifold.memorisation_report(train, copier, held_out)
  h = manifold.nearest_neighbour_distances(held_out, train)
  assert good['threshold'] == pytest.approx(np.percentile(h, 1))
  assert good['held_out_p50'] == pytest.approx(np.median(h))
  assert good['frac_held_out_closer'] == pytest.approx(0.01)
  assert good['frac_generated_closer'] < 0.06
  assert 0.7 < good['median_ratio'] < 1.4
  assert bad['frac_generated_closer'] == 1.0 and bad['median_ratio'] < 0.05
  assert bad['generated_p50'] < 0.01 < good['generated_p1']
  assert bad['num_generated'] == 200 and bad['num_held_out'] == 200
  assert set(good) >= {'generated_mean', 'held_out_mean', 'generated_p1',
                       'generated_p5', 'generated_p25', 'generated_p75'}


def test_validation_and_block_bound():
  x = np.zeros((4, 2))
  with pytest.raises(ValueError, match='k=4 needs at least'):
    manifold.precision_recall(x, x + 1, k=4)
  with pytest.raises(ValueError, match='k must be an integer'):
    manifold.density_coverage(x, x, k=0)
  with pytest.raises(ValueError, match='dimensions differ'):
    manifold.precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))
  with pytest.raises(ValueError, match='non-finite'):
    manifold.nearest_neighbour_distances(np.full((2, 2), np.nan), x)
  with pytest.raises(ValueError, match=r'\[N, D\]'):
    manifold.nearest_neighbour_distances(np.zeros(3), x)
  # 50k x 50k is streamed in blocks of at most 2^23 distances (32 MB).
  rows = manifold._block_rows(50_000, 50_000, None)
  assert 1 <= rows and rows * 50_000 <= 2 ** 23
