"""Forward Winograd / Toom-Cook convolutions (gan_stability.kernels.winograd_nd)
against the direct correlation (float64 NumPy) and XLA's convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_stability.kernels import winograd, winograd_nd


def _correlate(d, g, m):
  return np.array([np.dot(g, d[i:i + len(g)]) for i in range(m)])


@pytest.mark.parametrize('m, r', [(1, 1), (2, 3), (4, 3), (6, 3), (2, 5),
                                  (4, 5), (2, 7), (3, 7), (4, 7)])
def test_transforms_compute_the_correlation(m, r):
  at, g, bt = winograd_nd.transforms(m, r)
  n = m + r - 1
  assert at.shape == (m, n) and g.shape == (n, r) and bt.shape == (n, n)
  assert np.array_equal(bt, np.round(bt))  # B^T rows scaled to integers
  rng = np.random.default_rng(m * 10 + r)
  for _ in range(5):
    d, k = rng.normal(size=n), rng.normal(size=r)
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), _correlate(d, k, m),
                               rtol=0, atol=1e-12)
  # Linear in g and in d: the identity on basis vectors is the whole check.
  for j in range(r):
    for i in range(n):
      e_g, e_d = np.eye(r)[j], np.eye(n)[i]
      np.testing.assert_allclose(at @ ((g @ e_g) * (bt @ e_d)),
                                 _correlate(e_d, e_g, m), atol=1e-12)


def test_f23_is_lavin_and_grays():
  """F(2, 3) is the form of Lavin & Gray (2016) that kernels/winograd.py
  writes out by hand."""
  at, g, bt = winograd_nd.transforms(2, 3)
  np.testing.assert_array_equal(g, np.array(winograd._WINO_G))
  want_bt = np.zeros((4, 4))
  for row, terms in enumerate(winograd._WINO_BT):
    for sign, col in terms:
      want_bt[row, col] = sign
  want_at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
  # The same products position by position (the sign of the point at
  # infinity may sit in A^T or in B^T).
  for k in range(4):
    np.testing.assert_array_equal(np.outer(at[:, k], bt[k]),
                                  np.outer(want_at[:, k], want_bt[k]))


def _xla_conv(x, k, pad):
  return jax.lax.conv_general_dilated(
      x, k, (1, 1), ((pad[0], pad[0]), (pad[1], pad[1])),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      precision=jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize('kernel, tile, pad, hw', [
    ((3, 3), (2, 2), (1, 1), (8, 8)),
    ((3, 3), (4, 4), (1, 1), (9, 7)),     # odd sizes: tiles cropped
    ((3, 3), (4, 4), (0, 0), (13, 11)),   # 'valid'
    ((5, 5), (2, 2), (2, 2), (7, 7)),
    ((1, 7), (1, 4), (0, 3), (17, 17)),   # the Inception 17x17 layers
    ((7, 1), (4, 1), (3, 0), (17, 17)),
    ((1, 3), (1, 4), (0, 1), (8, 8)),     # the 8x8 layers
    ((3, 1), (2, 1), (1, 0), (8, 5)),
])
def test_conv_equals_xla_conv(kernel, tile, pad, hw):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, *hw, 5)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(*kernel, 5, 6)), jnp.float32)
  want = np.asarray(_xla_conv(x, k, pad))
  got = np.asarray(winograd_nd.conv(x, k, pad, tile))
  assert got.shape == want.shape
  # float32 rounding grows with the interpolation points of larger tiles.
  np.testing.assert_allclose(got, want, rtol=0, atol=3e-5 * np.abs(want).max())
  u = winograd_nd.kernel_transform(k, tile)
  np.testing.assert_array_equal(
      np.asarray(winograd_nd.conv_transformed(x, u, kernel, pad, tile)), got)


def test_bad_tiles_are_refused():
  x, k = jnp.zeros((1, 8, 8, 2)), jnp.zeros((1, 7, 2, 2))
  with pytest.raises(ValueError, match='an axis with one tap takes m = 1'):
    winograd_nd.conv(x, k, (0, 3), (2, 2))
  with pytest.raises(ValueError, match='more than the 13 interpolation'):
    winograd_nd.transforms(13, 3)
  with pytest.raises(ValueError, match='needs m, r >= 1'):
    winograd_nd.transforms(0, 3)
