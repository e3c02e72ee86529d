"""Full-reference image similarity in JAX: PSNR, SSIM and MS-SSIM.

All functions take two image batches ``a``, ``b`` of the same shape
``[N, H, W, C]`` (NHWC, any real dtype; computed in float32, or float64 with
``jax_enable_x64`` and float64 inputs) and return per-image values ``[N]`` as a
JAX array; they are pure and can be used under ``jit``/``vmap`` (the
hyper-parameters other than ``data_range`` must be Python constants).
``data_range`` is the width of the value range (255 for uint8 pixels, 2 for
images in ``[-1, 1]``) and must always be given.

* **PSNR**: ``10 log10(data_range^2 / MSE)``, MSE over all ``H * W * C``
  values of an image (``inf`` for identical images); matches
  ``skimage.metrics.peak_signal_noise_ratio`` image by image.
* **SSIM** (Wang, Bovik, Sheikh & Simoncelli 2004, "Image Quality Assessment:
  From Error Visibility to Structural Similarity", eq. 13):
  ``SSIM(x, y) = (2 mu_x mu_y + C1)(2 s_xy + C2) /
  ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))`` with local weighted means,
  variances and covariance, ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``,
  ``L = data_range``; the value of an image is the mean of this map over the
  positions where the window lies fully inside the image, averaged over
  channels. Defaults are the paper's setting: an 11-tap Gaussian window with
  ``sigma = 1.5`` (``2 * int(3.5 sigma + 0.5) + 1`` taps, normalised to sum
  1), population (co)variances, ``K1 = 0.01``, ``K2 = 0.03``. These equal
  scikit-image's ``structural_similarity(a_n, b_n, data_range=L,
  channel_axis=-1, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)`` (which crops the same ``(taps - 1) / 2``
  border, so its padding mode never matters). With
  ``gaussian_weights=False`` a uniform ``win_size x win_size`` window is used
  (default 7, with ``use_sample_covariance`` scaling the (co)variances by
  ``NP / (NP - 1)``, ``NP = win_size^2``), equal to scikit-image's call with
  the same ``win_size`` and ``use_sample_covariance``.
* **MS-SSIM** (Wang, Simoncelli & Bovik 2003, "Multi-scale Structural
  Similarity for Image Quality Assessment", eq. 7):
  ``MS-SSIM = [l_M]^(w_M) prod_{j=1..M} [cs_j]^(w_j)``, where ``cs_j`` is the
  mean of the contrast-structure map ``(2 s_xy + C2) / (s_x^2 + s_y^2 + C2)``
  at scale ``j`` and the last factor uses the mean of the full SSIM map
  (``l_M cs_M``), as in the authors' MATLAB code; weights
  ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)`` for ``M = 5`` scales. Between
  scales both images are downsampled by 2x2 average pooling with stride 2
  (an odd row / column count is first padded by repeating the last row /
  column, so ``n -> ceil(n / 2)``, as MATLAB's ``imfilter(.., 'symmetric')``
  followed by ``(1:2:end)``). Each per-scale mean is clipped at 0 before the
  power (so the result is in ``[0, 1]``; negative correlations are rare and
  would otherwise give NaN), MS-SSIM is computed per channel, then averaged
  over channels.

Small images: every scale must be at least as large as the window (11 for
the default Gaussian). 5 scales need ``H, W >= 161`` with the default window
(``max_ms_ssim_scales`` gives the number that fits). With fewer scales,
``num_scales = M' < 5``, the first ``M'`` weights are used, renormalised to
sum to 1. For 28 x 28 (MNIST) that is ``num_scales=2`` (28 and 14 pixels) with
the default window, or e.g. ``num_scales=3`` with ``sigma=0.5`` (5-tap window;
28, 14, 7 pixels). ``num_scales=1`` gives exactly SSIM (when it is >= 0).
A request that does not fit raises a ValueError that names the largest
number of scales that does.

Cost: the window sums are two banded matmuls per map (``O(H^2 W + H W^2)``
per image and channel, at full float32 precision), which is fast for
GAN-sized images (a 256 x 256 image in milliseconds on a CPU after
compilation) but grows quickly for megapixel images.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# Gaussian windows are truncated at 3.5 sigma (Wang et al.'s 11 taps at 1.5).
_TRUNCATE = 3.5


def _pair(a, b, what: str):
  a = jnp.asarray(a)
  b = jnp.asarray(b)
  if a.shape != b.shape:
    raise ValueError(f'{what}: images have different shapes {a.shape} and '
                     f'{b.shape}')
  if a.ndim != 4:
    raise ValueError(f'{what}: expected NHWC image batches [N, H, W, C], got '
                     f'shape {a.shape}')
  dtype = jnp.promote_types(jnp.promote_types(a.dtype, b.dtype), jnp.float32)
  return a.astype(dtype), b.astype(dtype)


def _check_range(data_range, what: str):
  if isinstance(data_range, (int, float, np.number)) and not data_range > 0:
    raise ValueError(f'{what}: data_range must be > 0 (the width of the '
                     f'value range, e.g. 255 or 2.0), got {data_range}')


def window_taps(*, gaussian_weights: bool = True, sigma: float = 1.5,
                win_size: int = 7) -> tuple[float, ...]:
  """The normalised 1-D window (the 2-D window is its outer product).

  Gaussian: ``exp(-x^2 / (2 sigma^2))`` at ``x = -r..r``,
  ``r = int(3.5 sigma + 0.5)``, divided by its sum (scipy.ndimage's kernel
  with ``truncate=3.5``); uniform: ``win_size`` taps of ``1 / win_size``.
  """
  if gaussian_weights:
    if not sigma > 0:
      raise ValueError(f'sigma must be > 0, got {sigma}')
    r = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * x * x / (sigma * sigma))
    w /= w.sum()
  else:
    if (isinstance(win_size, bool) or int(win_size) != win_size or
        win_size < 1 or win_size % 2 != 1):
      raise ValueError(f'win_size must be an odd integer >= 1, got {win_size}')
    w = np.full(int(win_size), 1.0 / int(win_size))
  return tuple(float(v) for v in w)


def _scale_sizes(h: int, w: int, num_scales: int):
  sizes = [(h, w)]
  for _ in range(num_scales - 1):
    h, w = -(-h // 2), -(-w // 2)
    sizes.append((h, w))
  return sizes


def max_ms_ssim_scales(height: int, width: int, *,
                       gaussian_weights: bool = True, sigma: float = 1.5,
                       win_size: int = 7, limit: int = 5) -> int:
  """Largest number of scales (at most ``limit``) whose images all hold the
  window; 0 if not even the full-size image does."""
  taps = len(window_taps(gaussian_weights=gaussian_weights, sigma=sigma,
                         win_size=win_size))
  return sum(1 for h, w in _scale_sizes(height, width, limit)
             if min(h, w) >= taps)


def _band(size: int, taps) -> np.ndarray:
  """``[size - n + 1, size]`` matrix of the 'valid' correlation with taps."""
  n = len(taps)
  m = np.zeros((size - n + 1, size))
  for i in range(size - n + 1):
    m[i, i:i + n] = taps
  return m


def _filter_valid(x, taps):
  """Separable 'valid' correlation (no padding) of ``[..., H, W, C]`` with
  the window ``taps x taps``, as two banded matmuls (a few XLA ops whatever
  the window size; full float32 precision, no TF32 / bf16 on accelerators)."""
  h, w = x.shape[-3:-1]
  bh = jnp.asarray(_band(h, taps), x.dtype)
  bw = jnp.asarray(_band(w, taps), x.dtype)
  hi = jax.lax.Precision.HIGHEST
  y = jnp.einsum('ph,...hwc->...pwc', bh, x, precision=hi)
  return jnp.einsum('qw,...pwc->...pqc', bw, y, precision=hi)


def _ssim_terms(x, y, taps, k1, k2, cov_norm):
  """Per-image, per-channel means ``[N, C]`` of the SSIM map and of the
  contrast-structure map. ``x``, ``y`` are already divided by data_range.

  Second moments are taken about each image's channel means (they do not
  depend on the shift), which keeps float32 cancellation small.
  """
  mx = jnp.mean(x, axis=(1, 2), keepdims=True)
  my = jnp.mean(y, axis=(1, 2), keepdims=True)
  x0, y0 = x - mx, y - my
  moments = jnp.stack([x0, y0, x0 * x0, y0 * y0, x0 * y0])  # [5, N, H, W, C]
  f = _filter_valid(moments, taps)
  ux0, uy0, uxx, uyy, uxy = f
  vx = cov_norm * (uxx - ux0 * ux0)
  vy = cov_norm * (uyy - uy0 * uy0)
  vxy = cov_norm * (uxy - ux0 * uy0)
  ux, uy = ux0 + mx, uy0 + my
  c1, c2 = k1 * k1, k2 * k2
  lum = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
  cs = (2 * vxy + c2) / (vx + vy + c2)
  return jnp.mean(lum * cs, axis=(1, 2)), jnp.mean(cs, axis=(1, 2))


def _downsample(x):
  """2x2 average pooling, stride 2; odd sizes repeat their last row/col."""
  _, h, w, _ = x.shape
  if h % 2:
    x = jnp.concatenate([x, x[:, -1:]], axis=1)
  if w % 2:
    x = jnp.concatenate([x, x[:, :, -1:]], axis=2)
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _ssim_settings(gaussian_weights, sigma, win_size, use_sample_covariance,
                   k1, k2):
  if not (k1 >= 0 and k2 >= 0):
    raise ValueError(f'K1 and K2 must be >= 0, got {k1}, {k2}')
  taps = window_taps(gaussian_weights=gaussian_weights, sigma=sigma,
                     win_size=win_size)
  np_ = len(taps) ** 2
  if use_sample_covariance and np_ < 2:
    raise ValueError('use_sample_covariance needs a window of >= 2 pixels')
  cov_norm = np_ / (np_ - 1.0) if use_sample_covariance else 1.0
  return taps, float(cov_norm)


@jax.jit
def _psnr(a, b, data_range):
  mse = jnp.mean((a - b) ** 2, axis=(1, 2, 3))
  return 10.0 * jnp.log10(jnp.asarray(data_range, a.dtype) ** 2 / mse)


def psnr(a, b, *, data_range) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image: ``[N]``.

  ``10 log10(data_range^2 / mean((a - b)^2))``, the mean over the
  ``H * W * C`` values of each image; ``inf`` where the images are equal.
  """
  _check_range(data_range, 'psnr')
  a, b = _pair(a, b, 'psnr')
  return _psnr(a, b, data_range)


@functools.partial(jax.jit, static_argnames=('taps', 'k1', 'k2', 'cov_norm'))
def _scaled_terms(a, b, data_range, *, taps, k1, k2, cov_norm):
  """``(x, y, ssim [N, C], cs [N, C])`` with ``x = a / data_range``, ...

  One compiled program per image shape and setting, shared by :func:`ssim`
  and every scale of :func:`ms_ssim` (XLA compile time, not arithmetic,
  dominates on a CPU).
  """
  x, y = a / data_range, b / data_range
  return (x, y) + _ssim_terms(x, y, taps, k1, k2, cov_norm)


def ssim(a, b, *, data_range, gaussian_weights: bool = True,
         sigma: float = 1.5, win_size: int = 7,
         use_sample_covariance: bool = False, K1: float = 0.01,  # noqa: N803
         K2: float = 0.03) -> jax.Array:  # noqa: N803
  """Structural similarity per image (Wang et al. 2004): ``[N]``.

  Mean over the valid positions (window fully inside the image) of
  ``(2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2
  + C2))``, ``C1 = (K1 data_range)^2``, ``C2 = (K2 data_range)^2``, averaged
  over channels. Defaults: Gaussian window, ``sigma = 1.5`` (11 taps),
  population (co)variances, ``K1 = 0.01``, ``K2 = 0.03`` (Wang et al. 2004;
  equal to scikit-image's ``structural_similarity`` with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  channel_axis=-1``). ``win_size`` is used only for the uniform window
  (``gaussian_weights=False``); a Gaussian window's size follows ``sigma``.

  Raises:
    ValueError: shapes differ or are not NHWC, ``data_range <= 0``, or the
      window is larger than the image.
  """
  _check_range(data_range, 'ssim')
  a, b = _pair(a, b, 'ssim')
  taps, cov_norm = _ssim_settings(gaussian_weights, sigma, win_size,
                                  use_sample_covariance, K1, K2)
  h, w = a.shape[1:3]
  if min(h, w) < len(taps):
    raise ValueError(f'ssim: images of {h} x {w} are smaller than the '
                     f'{len(taps)} x {len(taps)} window; use a smaller sigma '
                     '(or gaussian_weights=False with a smaller win_size)')
  _, _, s, _ = _scaled_terms(a, b, data_range, taps=taps, k1=float(K1),
                             k2=float(K2), cov_norm=cov_norm)
  return jnp.mean(s, axis=-1)


@jax.jit
def _ms_step(x, y, acc, cs, w):
  """Multiplies ``acc`` by ``max(cs, 0) ** w``; 2x2-pools ``x`` and ``y``."""
  return _downsample(x), _downsample(y), acc * jnp.maximum(cs, 0.0) ** w


def ms_ssim(a, b, *, data_range, num_scales: int | None = None,
            weights=MS_SSIM_WEIGHTS, gaussian_weights: bool = True,
            sigma: float = 1.5, win_size: int = 7,
            use_sample_covariance: bool = False, K1: float = 0.01,  # noqa: N803
            K2: float = 0.03) -> jax.Array:  # noqa: N803
  """Multi-scale SSIM per image (Wang, Simoncelli & Bovik 2003): ``[N]``.

  ``prod_{j < M} max(cs_j, 0)^(w_j) * max(ssim_M, 0)^(w_M)`` per channel,
  averaged over channels, where ``cs_j`` / ``ssim_j`` are the means of the
  contrast-structure / SSIM maps of :func:`ssim`'s settings at scale ``j``
  and scale ``j + 1`` is the 2x2 average pool of scale ``j`` (see the module
  docstring). ``M = num_scales`` (default ``len(weights)``, i.e. 5); the
  weights are ``weights[:M]``, renormalised to sum to 1 when
  ``M < len(weights)`` (all five defaults are used as published).

  Raises:
    ValueError: bad shapes or settings, or a scale smaller than the window
      (the message gives the largest ``num_scales`` that fits).
  """
  _check_range(data_range, 'ms_ssim')
  a, b = _pair(a, b, 'ms_ssim')
  weights = tuple(float(v) for v in weights)
  if num_scales is None:
    num_scales = len(weights)
  if (isinstance(num_scales, bool) or int(num_scales) != num_scales or
      not 1 <= num_scales <= len(weights)):
    raise ValueError(f'ms_ssim: num_scales must be an integer in '
                     f'[1, {len(weights)}], got {num_scales}')
  num_scales = int(num_scales)
  if any(not (v >= 0 and math.isfinite(v)) for v in weights):
    raise ValueError(f'ms_ssim: weights must be finite and >= 0: {weights}')
  if num_scales < len(weights):
    total = sum(weights[:num_scales])
    if not total > 0:
      raise ValueError(f'ms_ssim: the first {num_scales} weights sum to 0')
    weights = tuple(v / total for v in weights[:num_scales])
  taps, cov_norm = _ssim_settings(gaussian_weights, sigma, win_size,
                                  use_sample_covariance, K1, K2)
  h, w = a.shape[1:3]
  sizes = _scale_sizes(h, w, num_scales)
  if min(sizes[-1]) < len(taps):
    fit = max_ms_ssim_scales(h, w, gaussian_weights=gaussian_weights,
                             sigma=sigma, win_size=win_size,
                             limit=len(MS_SSIM_WEIGHTS))
    raise ValueError(
        f'ms_ssim: images of {h} x {w} are too small for {num_scales} scales '
        f'with a {len(taps)}-tap window (scale sizes {sizes}; the smallest '
        f'must be >= {len(taps)}); at most num_scales={fit} fits, or use a '
        'smaller sigma / win_size')
  settings = dict(taps=taps, k1=float(K1), k2=float(K2), cov_norm=cov_norm)
  x, y, s, cs = _scaled_terms(a, b, data_range, **settings)
  acc = jnp.ones_like(cs)
  for wj in weights[:-1]:
    x, y, acc = _ms_step(x, y, acc, cs, wj)
    _, _, s, cs = _scaled_terms(x, y, 1.0, **settings)
  return jnp.mean(acc * jnp.maximum(s, 0.0) ** weights[-1], axis=-1)
