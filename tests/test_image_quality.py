"""PSNR / SSIM / MS-SSIM.

Always run: hand-computed values and a brute-force float64 numpy SSIM (one
window at a time). With scikit-image installed: agreement with
``skimage.metrics`` to 1e-4 on random images, real MNIST digits (from
``$GAN_STABILITY_DATA_DIR``, default ``../shared/data``; skipped if absent)
and ``skimage.data.camera()`` / ``astronaut()``.
"""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_stability.data import idx
from gan_stability.metrics import image_quality as iq

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.environ.get(
    'GAN_STABILITY_DATA_DIR',
    os.path.normpath(os.path.join(TESTS_DIR, '..', '..', 'shared', 'data')))

W = iq.MS_SSIM_WEIGHTS
TOL = 1e-4

# ------------------------------------------------- references (numpy) ---


def _taps(gaussian, sigma=1.5, win_size=7):
  if gaussian:
    r = int(3.5 * sigma + 0.5)
    x = np.arange(-r, r + 1)
    w = np.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()
  return np.full(win_size, 1.0 / win_size)


def _np_ssim_maps(x, y, data_range, *, gaussian=True, sigma=1.5, win_size=7,
                  sample_cov=False, k1=0.01, k2=0.03):
  """SSIM and c*s maps of one 2-D image pair, window by window (float64)."""
  w1 = _taps(gaussian, sigma, win_size)
  win = np.outer(w1, w1)
  n = len(w1)
  norm = n * n / (n * n - 1) if sample_cov else 1.0
  c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
  h, w = x.shape[0] - n + 1, x.shape[1] - n + 1
  s, cs = np.empty((h, w)), np.empty((h, w))
  for i in range(h):
    for j in range(w):
      px, py = x[i:i + n, j:j + n], y[i:i + n, j:j + n]
      mx, my = (win * px).sum(), (win * py).sum()
      vx = norm * (win * (px - mx) ** 2).sum()
      vy = norm * (win * (py - my) ** 2).sum()
      vxy = norm * (win * (px - mx) * (py - my)).sum()
      cs[i, j] = (2 * vxy + c2) / (vx + vy + c2)
      s[i, j] = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs[i, j]
  return s, cs


def _np_ssim(a, b, data_range, **kw):
  """Per-image SSIM of NHWC batches: channel mean of the map means."""
  return np.array([np.mean([_np_ssim_maps(a[n, ..., c], b[n, ..., c],
                                          data_range, **kw)[0].mean()
                            for c in range(a.shape[-1])])
                   for n in range(a.shape[0])])


def _np_down(x):
  """2x2 mean, odd sizes padded by repeating the last row / column."""
  x = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2)), mode='edge')
  return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))


def _np_ms_ssim(a, b, data_range, num_scales, **kw):
  w = np.array(W[:num_scales]) / (sum(W[:num_scales]) if num_scales < 5 else 1)
  out = []
  for n in range(a.shape[0]):
    per_channel = []
    for c in range(a.shape[-1]):
      x, y, v = a[n, ..., c], b[n, ..., c], 1.0
      for j in range(num_scales):
        s, cs = _np_ssim_maps(x, y, data_range, **kw)
        v *= max(s.mean() if j == num_scales - 1 else cs.mean(), 0) ** w[j]
        x, y = _np_down(x), _np_down(y)
      per_channel.append(v)
    out.append(np.mean(per_channel))
  return np.array(out)


def _noisy_pair(rng, shape, scale=255.0, noise=0.15):
  a = rng.uniform(0, scale, shape)
  b = np.clip(a + rng.normal(0, noise * scale, shape), 0, scale)
  return a, b


def _smooth_pair(rng, shape):
  """Correlated, image-like pair (cumulative sums of noise) in [0, 1]."""
  a = np.cumsum(np.cumsum(rng.normal(size=shape), axis=1), axis=2)
  a = (a - a.min()) / (a.max() - a.min())
  b = np.clip(a + rng.normal(0, 0.05, shape), 0, 1)
  return a, b


# -------------------------------------------- always run (no skimage) ---


def test_psnr_hand_values():
  a = np.zeros((2, 4, 4, 1))
  b = a.copy()
  b[0, 1, 2, 0] = 1.0  # MSE 1/16 -> 10 log10(16) = 12.0412 dB
  got = np.asarray(iq.psnr(a, b, data_range=1.0))
  assert got[0] == pytest.approx(10 * math.log10(16), abs=1e-5)
  assert got[1] == np.inf  # identical images
  # data_range 255, every value off by 5: 10 log10(255^2 / 25) = 34.1514 dB.
  got = iq.psnr(np.full((1, 3, 3, 3), 100.), np.full((1, 3, 3, 3), 105.),
                data_range=255)
  assert float(got[0]) == pytest.approx(20 * math.log10(255 / 5), abs=1e-4)


def test_ssim_of_constant_and_identical_images():
  # Image 0: constant images have zero (co)variances, so c*s = C2 / C2 = 1
  # and SSIM = (2 a b + C1) / (a^2 + b^2 + C1). a = 0.5, b = 0.25, L = 1:
  # C1 = 1e-4, SSIM = 0.2501 / 0.3126 = 0.800064.
  # Image 1: identical random images: SSIM = MS-SSIM = 1.
  rng = np.random.default_rng(0)
  a = np.stack([np.full((24, 24, 1), 0.5), rng.uniform(size=(24, 24, 1))])
  b = np.stack([np.full((24, 24, 1), 0.25), a[1]])
  want = (2 * .5 * .25 + 1e-4) / (.5 ** 2 + .25 ** 2 + 1e-4)
  assert want == pytest.approx(0.800064, abs=1e-6)
  np.testing.assert_allclose(iq.ssim(a, b, data_range=1.0), [want, 1.0],
                             atol=1e-6)
  # MS-SSIM: c*s = 1 at every scale and the images stay constant, so with 2
  # scales (24 and 12 pixels; weights renormalised: w2 = 0.2856 / 0.3304 =
  # 0.86441) MS-SSIM = 0.800064 ** 0.86441 = 0.824635.
  w2 = W[1] / (W[0] + W[1])
  assert want ** w2 == pytest.approx(0.824635, abs=1e-5)
  np.testing.assert_allclose(iq.ms_ssim(a, b, data_range=1.0, num_scales=2),
                             [want ** w2, 1.0], atol=1e-6)


@pytest.mark.parametrize('kw', [
    {},  # Gaussian, sigma 1.5, 11 taps, population covariance
    {'gaussian_weights': False, 'win_size': 3, 'sample_cov': True},
    {'gaussian_weights': False, 'win_size': 7, 'sample_cov': False},
    {'sigma': 0.8, 'k1': 0.05, 'k2': 0.1},
])
def test_ssim_matches_brute_force_numpy(kw):
  rng = np.random.default_rng(1)
  a, b = _noisy_pair(rng, (2, 14, 13, 2))
  ours = dict(kw)
  ref = dict(kw)
  if 'gaussian_weights' in kw:
    ref['gaussian'] = ref.pop('gaussian_weights')
  ours['use_sample_covariance'] = ours.pop('sample_cov', False)
  for name in ('k1', 'k2'):
    if name in ours:
      ours[name.upper()] = ours.pop(name)
  got = np.asarray(iq.ssim(a, b, data_range=255, **ours))
  np.testing.assert_allclose(got, _np_ssim(a, b, 255, **ref), atol=TOL)
  assert got.shape == (2,) and np.all(got < 0.9)


def test_ms_ssim_matches_brute_force_numpy_with_odd_sizes():
  rng = np.random.default_rng(2)
  a, b = _smooth_pair(rng, (2, 27, 23, 2))  # 27x23 -> 14x12 -> 7x6 (odd)
  got = np.asarray(iq.ms_ssim(a, b, data_range=1.0, num_scales=3, sigma=0.5))
  want = _np_ms_ssim(a, b, 1.0, 3, sigma=0.5)  # 5-tap window
  np.testing.assert_allclose(got, want, atol=TOL)
  # One scale is SSIM.
  np.testing.assert_allclose(iq.ms_ssim(a, b, data_range=1.0, num_scales=1),
                             iq.ssim(a, b, data_range=1.0), atol=1e-6)


def test_small_images_and_errors():
  assert iq.max_ms_ssim_scales(28, 28) == 2  # 28, 14 (7 < 11 taps)
  assert iq.max_ms_ssim_scales(28, 28, sigma=0.5) == 3  # 5 taps: 28, 14, 7
  assert iq.max_ms_ssim_scales(161, 161) == 5  # ... 21, 11
  assert iq.max_ms_ssim_scales(160, 400) == 4  # 160 / 16 = 10 < 11
  assert iq.max_ms_ssim_scales(8, 8) == 0
  assert len(iq.window_taps()) == 11
  x = np.zeros((1, 28, 28, 1))
  with pytest.raises(ValueError, match='at most num_scales=2 fits'):
    iq.ms_ssim(x, x, data_range=1.0)
  with pytest.raises(ValueError, match='smaller than the 11 x 11 window'):
    iq.ssim(np.zeros((1, 10, 30, 1)), np.zeros((1, 10, 30, 1)),
            data_range=1.0)
  with pytest.raises(ValueError, match='different shapes'):
    iq.psnr(x, np.zeros((1, 28, 28, 3)), data_range=1.0)
  with pytest.raises(ValueError, match='NHWC'):
    iq.ssim(x[0], x[0], data_range=1.0)
  with pytest.raises(ValueError, match='data_range'):
    iq.ssim(x, x, data_range=0)
  with pytest.raises(ValueError, match='odd'):
    iq.ssim(x, x, data_range=1.0, gaussian_weights=False, win_size=4)
  with pytest.raises(ValueError, match='num_scales'):
    iq.ms_ssim(x, x, data_range=1.0, num_scales=6)


def test_usable_under_jit():
  rng = np.random.default_rng(3)
  a, b = (jnp.asarray(v, jnp.float32) for v in _smooth_pair(rng, (2, 24, 24, 1)))
  f = jax.jit(lambda x, y, r: (iq.psnr(x, y, data_range=r),
                               iq.ssim(x, y, data_range=r),
                               iq.ms_ssim(x, y, data_range=r, num_scales=2)))
  for got, want in zip(f(a, b, 1.0), (iq.psnr(a, b, data_range=1.0),
                                      iq.ssim(a, b, data_range=1.0),
                                      iq.ms_ssim(a, b, data_range=1.0,
                                                 num_scales=2))):
    np.testing.assert_allclose(got, want, rtol=1e-5)
  # uint8 inputs work and give the float result.
  u, v = (np.rint(np.asarray(t) * 255).astype(np.uint8) for t in (a, b))
  np.testing.assert_allclose(iq.ssim(u, v, data_range=255),
                             iq.ssim(u.astype(np.float32),
                                     v.astype(np.float32), data_range=255),
                             atol=1e-6)


# ------------------------------------------------------ scikit-image ---


def _sk_ssim(a, b, data_range, **kw):
  from skimage.metrics import structural_similarity
  kw = {'gaussian_weights': True, 'sigma': 1.5,
        'use_sample_covariance': False, **kw}
  return np.array([structural_similarity(a[n], b[n], data_range=data_range,
                                         channel_axis=-1, **kw)
                   for n in range(a.shape[0])])


def _sk_psnr(a, b, data_range):
  from skimage.metrics import peak_signal_noise_ratio
  return np.array([peak_signal_noise_ratio(a[n], b[n], data_range=data_range)
                   for n in range(a.shape[0])])


def _sk_ms_ssim(a, b, data_range, num_scales):
  """MS-SSIM from scikit-image parts (even sizes only).

  cs_j: scikit-image's SSIM with K1 = 1e6, which makes the luminance factor
  1 - (mu_x - mu_y)^2 / (mu_x^2 + mu_y^2 + (1e6 L)^2) = 1 - O(1e-12);
  downsampling: ``skimage.transform.downscale_local_mean`` (2x2 mean).
  """
  from skimage.metrics import structural_similarity
  from skimage.transform import downscale_local_mean
  w = np.array(W[:num_scales]) / (sum(W[:num_scales]) if num_scales < 5 else 1)
  kw = dict(data_range=data_range, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False)
  out = []
  for n in range(a.shape[0]):
    per_channel = []
    for c in range(a.shape[-1]):
      x, y, v = a[n, ..., c], b[n, ..., c], 1.0
      for j in range(num_scales):
        assert x.shape[0] % 2 == 0 and x.shape[1] % 2 == 0
        if j == num_scales - 1:
          v *= max(structural_similarity(x, y, **kw), 0) ** w[j]
        else:
          v *= max(structural_similarity(x, y, K1=1e6, **kw), 0) ** w[j]
        x, y = downscale_local_mean(x, (2, 2)), downscale_local_mean(y, (2, 2))
      per_channel.append(v)
    out.append(np.mean(per_channel))
  return np.array(out)


def _mnist_test_digits(n):
  path = os.path.join(DATA_DIR, 'mnist')
  if not os.path.isfile(os.path.join(path, 't10k-images-idx3-ubyte.gz')):
    pytest.skip(f'real MNIST IDX files not found in {path} '
                '(set GAN_STABILITY_DATA_DIR)')
  x, _ = idx.load_idx_dataset(path, 'test')
  return x[:n].astype(np.float64)


@pytest.mark.parametrize('shape', [(3, 40, 37, 3), (2, 11, 64, 1)])
def test_matches_skimage_on_random_images(shape):
  pytest.importorskip('skimage')
  a, b = _noisy_pair(np.random.default_rng(4), shape)
  np.testing.assert_allclose(iq.ssim(a, b, data_range=255),
                             _sk_ssim(a, b, 255), atol=TOL)
  # scikit-image's own defaults: uniform 7x7 window, sample covariance.
  if min(shape[1:3]) >= 7:
    np.testing.assert_allclose(
        iq.ssim(a, b, data_range=255, gaussian_weights=False,
                use_sample_covariance=True),
        _sk_ssim(a, b, 255, gaussian_weights=False,
                 use_sample_covariance=True), atol=TOL)
  np.testing.assert_allclose(iq.psnr(a, b, data_range=255),
                             _sk_psnr(a, b, 255), atol=TOL)


def test_matches_skimage_on_mnist_digits():
  pytest.importorskip('skimage')
  x = _mnist_test_digits(32)
  a, b = x[:16], x[16:]  # 16 pairs of different real digits
  got = np.asarray(iq.ssim(a, b, data_range=255))
  np.testing.assert_allclose(got, _sk_ssim(a, b, 255), atol=TOL)
  np.testing.assert_allclose(iq.psnr(a, b, data_range=255),
                             _sk_psnr(a, b, 255), atol=TOL)
  # A digit against a noisy copy of itself.
  noisy = np.clip(a + np.random.default_rng(5).normal(0, 20, a.shape), 0, 255)
  np.testing.assert_allclose(iq.ssim(a, noisy, data_range=255),
                             _sk_ssim(a, noisy, 255), atol=TOL)
  # MS-SSIM on 28 x 28: 2 scales (28, 14) fit the 11-tap window.
  for other in (b, noisy):
    np.testing.assert_allclose(
        iq.ms_ssim(a, other, data_range=255, num_scales=2),
        _sk_ms_ssim(a, other, 255, 2), atol=TOL)
  assert got.mean() < 0.5  # different digits are dissimilar


def test_matches_skimage_on_natural_images():
  data = pytest.importorskip('skimage.data')
  try:
    cam = data.camera().astype(np.float64)
    astro = data.astronaut().astype(np.float64)
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f'scikit-image sample images unavailable: {e}')
  rng = np.random.default_rng(6)
  cam = cam[None, 64:320, 128:384, None]  # [1, 256, 256, 1], the man
  cam_noisy = np.clip(cam + rng.normal(0, 25, cam.shape), 0, 255)
  np.testing.assert_allclose(iq.ssim(cam, cam_noisy, data_range=255),
                             _sk_ssim(cam, cam_noisy, 255), atol=TOL)
  np.testing.assert_allclose(iq.psnr(cam, cam_noisy, data_range=255),
                             _sk_psnr(cam, cam_noisy, 255), atol=TOL)
  # Full 5-scale MS-SSIM (256 -> 128 -> 64 -> 32 -> 16).
  np.testing.assert_allclose(iq.ms_ssim(cam, cam_noisy, data_range=255),
                             _sk_ms_ssim(cam, cam_noisy, 255, 5), atol=TOL)
  astro = astro[None, 32:224, 160:352]  # RGB, 192 x 192 (the face)
  astro_noisy = np.clip(astro + rng.normal(0, 25, astro.shape), 0, 255)
  np.testing.assert_allclose(iq.ssim(astro, astro_noisy, data_range=255),
                             _sk_ssim(astro, astro_noisy, 255), atol=TOL)
  np.testing.assert_allclose(
      iq.ms_ssim(astro, astro_noisy, data_range=255),  # 192 ... 12: 5 scales
      _sk_ms_ssim(astro, astro_noisy, 255, 5), atol=TOL)
