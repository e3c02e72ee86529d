"""Forward-only Winograd / Toom-Cook convolutions ``F(m, r)`` along each axis,
for inference networks (the FID Inception-v3 of
:mod:`gan_stability.metrics.inception`).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016
(after Winograd 1980 and Toom-Cook): along one axis, ``m`` outputs of a
correlation with an ``r``-tap kernel ``g``, ``y_i = sum_k g_k d_{i+k}``, read
``n = m + r - 1`` inputs ``d`` and are

    y = A^T [(G g) * (B^T d)]

with ``n`` multiplications instead of ``m r``. For a 2-D kernel the
transforms act on both axes (``A^T [(G g G^T) * (B^T d B)] A`` per tile), and
with the ``n_h n_w`` transform-domain positions as a batch axis the products
over channels are ``n_h n_w`` matmuls ``[tiles, ci] x [ci, co]``: ``m_h m_w
r_h r_w / (n_h n_w)`` times fewer multiplications than the direct
convolution (F(4x4, 3x3): 4x; F(2, 7) along one axis: 1.75x). An axis with
``m = 1`` and ``r = 1`` is left alone, so ``1 x 7`` kernels are 1-D
Winograd along the width.

:func:`transforms` builds the matrices exactly (rational arithmetic) from
the interpolation points ``0, 1, -1, 2, -2, 1/2, -1/2, ...`` and infinity:
with ``V_k`` the ``n x k`` matrix that evaluates a polynomial of degree
``k - 1`` at the points (the point at infinity reads the leading
coefficient), the linear convolution of ``g`` and ``h`` is ``V_n^{-1}
[(V_r g) * (V_m h)]``, and the correlation is its transpose in ``h``:
``A^T = V_m^T``, ``G = V_r``, ``B^T = V_n^{-T}`` (each row of ``B^T`` scaled
to integers, ``G``'s row by the inverse). Larger tiles need larger points
and lose float precision (the error grows with ``max |point|^n``); the
Inception uses ``n <= 8``, whose error on the FID features is measured in
``tests/test_inception.py``.

:func:`row_conv` applies ``F(m, kw)`` along the width only and leaves the
height to XLA's convolution (``kh x 1`` kernels, one per transform-domain
position): fewer savings than the 2-D form but 1-D transforms, whose memory
traffic is smaller, which is what pays on larger activations.

The functions here have no custom gradients: they are for forward passes
(autodiff through them is correct but not fast). The training convolutions'
Winograd, with gradients of every order, is :mod:`.winograd`.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

# Interpolation points in the order they are taken (then infinity).
_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2), 3, -3,
           Fraction(1, 3), Fraction(-1, 3), 4, -4)


def _vander(points, k: int) -> list[list[Fraction]]:
  """``n x k``: rows ``[p^0 .. p^(k-1)]`` for the finite points, then the
  point at infinity ``[0 .. 0, 1]`` (a polynomial's leading coefficient)."""
  rows = [[Fraction(p) ** i for i in range(k)] for p in points]
  rows.append([Fraction(0)] * (k - 1) + [Fraction(1)])
  return rows


def _inverse(a: list[list[Fraction]]) -> list[list[Fraction]]:
  """Exact Gauss-Jordan inverse of a square rational matrix."""
  n = len(a)
  m = [row[:] + [Fraction(int(i == j)) for j in range(n)]
       for i, row in enumerate(a)]
  for col in range(n):
    pivot = next(r for r in range(col, n) if m[r][col] != 0)
    m[col], m[pivot] = m[pivot], m[col]
    inv = 1 / m[col][col]
    m[col] = [v * inv for v in m[col]]
    for r in range(n):
      if r != col and m[r][col] != 0:
        f = m[r][col]
        m[r] = [v - f * w for v, w in zip(m[r], m[col])]
  return [row[n:] for row in m]


@functools.cache
def transforms(m: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(A^T [m, n], G [n, r], B^T [n, n])`` of ``F(m, r)``, ``n = m + r -
  1``, as float64 (exact rationals rounded once). ``F(1, 1)`` is the
  identity ``([[1]], [[1]], [[1]])``.

  >>> at, g, bt = transforms(2, 3)
  >>> d, k = np.arange(4.), np.array([1., 2., 3.])
  >>> at @ ((g @ k) * (bt @ d))   # the correlation: [8., 14.]
  array([ 8., 14.])
  """
  if m < 1 or r < 1:
    raise ValueError(f'F(m, r) needs m, r >= 1; got F({m}, {r})')
  n = m + r - 1
  if n == 1:
    one = np.ones((1, 1))
    return one, one, one
  if n - 1 > len(_POINTS):
    raise ValueError(f'F({m}, {r}): tiles of {n} need more than the '
                     f'{len(_POINTS)} interpolation points available')
  points = _POINTS[:n - 1]
  at = [list(col) for col in zip(*_vander(points, m))]  # V_m^T
  g = _vander(points, r)
  bt = [list(col) for col in zip(*_inverse(_vander(points, n)))]  # V_n^-T
  for j, row in enumerate(bt):  # integer rows of B^T, G's row rescaled
    scale = math.lcm(*(v.denominator for v in row))
    nonzero = [abs(v.numerator) * scale // v.denominator for v in row if v]
    scale = Fraction(scale, math.gcd(*nonzero))
    bt[j] = [v * scale for v in row]
    g[j] = [v / scale for v in g[j]]
  as_array = lambda a: np.array([[float(v) for v in row] for row in a])
  return as_array(at), as_array(g), as_array(bt)


def _linear_sum(coefs, terms):
  """``sum_i coefs[i] * terms(i)`` over the nonzero coefficients."""
  out = None
  for i, c in enumerate(coefs):
    if c == 0:
      continue
    t = terms(i)
    t = t if c == 1 else -t if c == -1 else t * np.float32(c)
    out = t if out is None else out + t
  return out


def kernel_transform(kernel: jax.Array, tile: tuple[int, int]) -> jax.Array:
  """``[kh, kw, ci, co] -> [n_h n_w, ci, co]``: ``G_h g G_w^T`` per channel
  pair, positions ``a n_w + b``."""
  kh, kw = kernel.shape[:2]
  _, gh, _ = transforms(tile[0], kh)
  _, gw, _ = transforms(tile[1], kw)
  u = jnp.einsum('ap,bq,pqio->abio', gh.astype(np.float32),
                 gw.astype(np.float32), kernel,
                 precision=jax.lax.Precision.HIGHEST)
  return u.reshape((gh.shape[0] * gw.shape[0],) + kernel.shape[2:])


def conv(x: jax.Array, kernel: jax.Array, padding: tuple[int, int],
         tile: tuple[int, int]) -> jax.Array:
  """Stride-1 convolution of NHWC ``x`` with an HWIO ``kernel`` and symmetric
  zero ``padding`` ``(p_h, p_w)``, by ``F(m_h, kh) x F(m_w, kw)``, ``tile =
  (m_h, m_w)`` outputs per tile along each axis (``1`` for an axis with a
  1-tap kernel).

  The same function as ``lax.conv_general_dilated(x, kernel, (1, 1),
  ((p_h, p_h), (p_w, p_w)))`` up to float rounding. The input is zero-padded
  to whole tiles and the extra outputs cropped.
  """
  return conv_transformed(x, kernel_transform(kernel, tile), kernel.shape[:2],
                          padding, tile)


def conv_transformed(x: jax.Array, u: jax.Array, kernel_size: tuple[int, int],
                     padding: tuple[int, int], tile: tuple[int, int]
                     ) -> jax.Array:
  """:func:`conv` with the kernel already through :func:`kernel_transform`
  (``u``, ``[n_h n_w, ci, co]``) for a ``kernel_size`` kernel: for weights
  used many times, transformed once."""
  b, h, w, _ = x.shape
  (kh, kw), co = kernel_size, u.shape[-1]
  (mh, mw), (ph, pw) = tile, padding
  if (kh == 1 and mh != 1) or (kw == 1 and mw != 1):
    raise ValueError(f'tile {tile} on a {kh}x{kw} kernel: an axis with one '
                     'tap takes m = 1')
  ath, _, bth = transforms(mh, kh)
  atw, _, btw = transforms(mw, kw)
  nh, nw = bth.shape[0], btw.shape[0]
  oh, ow = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
  th, tw = -(-oh // mh), -(-ow // mw)
  xp = jnp.pad(x, ((0, 0), (ph, th * mh + kh - 1 - h - ph),
                   (pw, tw * mw + kw - 1 - w - pw), (0, 0)))
  # B^T d B: each transform-domain position is one signed sum of strided
  # slices of the padded input (one fused pass; computing the two axes one
  # after the other was slower, XLA recomputing the first axis per use).
  coef = np.einsum('iu,jv->ijuv', bth, btw)
  v = jnp.stack([
      _linear_sum(coef[i, j].ravel(), lambda q: xp[:, q // nw:q // nw + mh * th:mh,
                                                   q % nw:q % nw + mw * tw:mw])
      for i in range(nh) for j in range(nw)])
  prod = jnp.einsum('kbhwi,kio->kbhwo', v, u)
  prod = prod.reshape(nh, nw, b, th, tw, co)
  # A^T M A, each output position of a tile one signed sum; then the tiles
  # interleaved.
  coef = np.einsum('ia,jb->ijab', ath, atw)
  y = jnp.stack([jnp.stack([
      _linear_sum(coef[i, j].ravel(), lambda q: prod[q // nw, q % nw])
      for j in range(mw)], axis=-2) for i in range(mh)], axis=2)
  y = y.reshape(b, th * mh, tw * mw, co)
  return y[:, :oh, :ow]


def row_kernel_transform(kernel: jax.Array, m: int) -> jax.Array:
  """``[kh, kw, ci, co] -> [n, kh, 1, ci, co]`` (``n = m + kw - 1``): ``G g``
  along the width only, each transform-domain position a ``kh x 1`` kernel
  for :func:`row_conv_transformed`."""
  _, g, _ = transforms(m, kernel.shape[1])
  u = jnp.einsum('bq,pqio->bpio', g.astype(np.float32), kernel,
                 precision=jax.lax.Precision.HIGHEST)
  return u[:, :, None]


def row_conv(x: jax.Array, kernel: jax.Array, padding: tuple[int, int],
             m: int) -> jax.Array:
  """Stride-1 convolution (as :func:`conv`) by ``F(m, kw)`` along the width
  only: per transform-domain position ``b`` of the width, XLA's convolution
  of ``(B^T d)_b`` with the ``kh x 1`` kernel ``(G g)_b`` along the height.
  ``(m + kw - 1) / (m kw)`` times the direct multiplications, with 1-D
  transforms (cheaper in memory than :func:`conv`'s 2-D ones, which pays on
  larger activations)."""
  return row_conv_transformed(x, row_kernel_transform(kernel, m),
                              kernel.shape[:2], padding, m)


def row_conv_transformed(x: jax.Array, u: jax.Array,
                         kernel_size: tuple[int, int],
                         padding: tuple[int, int], m: int) -> jax.Array:
  """:func:`row_conv` with the kernel already through
  :func:`row_kernel_transform` (``u``)."""
  b, h, w, _ = x.shape
  kh, kw = kernel_size
  ph, pw = padding
  at, _, bt = transforms(m, kw)
  n = bt.shape[0]
  ow = w + 2 * pw - kw + 1
  tw = -(-ow // m)
  xp = jnp.pad(x, ((0, 0), (0, 0), (pw, tw * m + kw - 1 - w - pw), (0, 0)))
  prods = []
  for j in range(n):
    v = _linear_sum(bt[j], lambda q: xp[:, :, q:q + m * tw:m])
    prods.append(jax.lax.conv_general_dilated(
        v, u[j], (1, 1), ((ph, ph), (0, 0)),
        dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
  y = jnp.stack([_linear_sum(at[i], lambda q: prods[q]) for i in range(m)],
                axis=3)  # [b, oh, tw, m, co]
  oh = h + 2 * ph - kh + 1
  return y.reshape(b, oh, tw * m, -1)[:, :, :ow]
