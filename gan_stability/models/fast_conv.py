"""Exact, faster gradients of convolutions (same parameters, same function
as ``flax.linen.ConvTranspose`` / ``flax.linen.Conv``).

XLA's CPU backend runs forward convolutions well, but the backward passes
the GAN models need can be very slow (measured on the 2-core CPU, jax
0.10.2, batch 64; ``experiments/bench/train_steps.py``):

* the **weight gradient of a transposed convolution** (``lhs_dilation``):
  a 4x4 stride-2 ConvTranspose 128 -> 64 at 7x7 takes 7 ms forward but
  370 ms for its VJP;
* the **double gradient of a strided convolution**, which every gradient
  penalty (WGAN-GP, R1, R2) takes through the discriminator: 6 ms forward,
  340-370 ms for the penalty's gradient of a 4x4 stride-2 Conv 64 -> 128;
* **weight gradients inside a whole train step**: XLA picks other kernels
  there than for the same op compiled alone (a 3x3 conv's weight gradient:
  10-13 s per layer in the SN-GAN step). The cause: XLA differentiates a
  convolution into one whose batch and feature dimensions are swapped, and
  only its ``ConvCanonicalization`` pass, which visits the entry computation
  alone, turns that into the form its Eigen kernels take; in a loop body or
  a call the op falls to XLA's naive loop nest (:func:`_conv_weight_grad`).

So every convolution of the models gets a custom VJP whose pieces are
forward convolutions (already in canonical form) and matmuls, which are
fast:

* ``conv_s1`` (stride 1, any kernel, explicit padding): forward is XLA's
  op, or for few channels a matmul form (:func:`_s1_form`: the taps for
  few outputs, im2col for few inputs); ``dx`` is ``conv_s1`` of ``dy`` with
  the adjoint kernel; ``dK`` is :func:`s1_conv_weight_grad`, one canonical
  convolution of ``x`` and ``dy``, or :func:`valid_weight_grad` (matmuls
  over shifted copies of ``x`` or of ``dy``, whichever moves less memory)
  for few channels (:func:`_s1_wgrad_by_matmul`) and with
  ``wgrad='matmul'``.
* 3x3 ``'SAME'`` convs with many channels (:func:`_s1_winograd`) run as
  :func:`winograd_conv`, Winograd's F(2x2, 3x3) (Lavin & Gray 2016): 16
  matmuls on transformed tiles, 2.25x fewer multiplications, the same
  function up to float rounding; the input gradient is the same algorithm
  with the adjoint kernel (read from the transformed kernel in place), the
  kernel gradient 16 matmuls contracting the tiles, each a custom VJP so
  every order stays Winograd.
* ``conv_s2`` / ``conv_t2`` (4x4, stride 2, ``'SAME'``): the strided conv's
  forward is XLA's op; the transposed conv's forward is, by size
  (:func:`_t2_form`), stride-1 2x2 convs producing the four output phases
  (sub-pixel form: one conv per row phase or one per phase) or one matmul
  plus an overlap-add (XLA's ``lhs_dilation`` op fell
  to 130-170 ms inside the SN-GAN step).
* Notation (one spatial axis; the other is the same): ``conv_s2(x, K)`` is
  ``y[i] = sum_t K[t]^T x[2i + t - 1]`` (XLA's SAME padding (1, 1), input
  size even), ``conv_t2(x, W)`` is ``lax.conv_transpose(x, W, (2, 2),
  'SAME')``: input ``j`` adds ``W[t]^T x[j]`` to output ``2j + 2 - t``.
* The two are adjoint: the input gradient of ``conv_s2`` is
  ``conv_t2(dy, adj(K))`` and that of ``conv_t2`` is ``conv_s2(dy, adj(W))``
  with ``adj(K)[t, s] = K[3 - t, 3 - s]^T`` (flip the taps, swap in / out).
  Each VJP calls the other custom-VJP function, so the gradients of any
  order stay on these paths.
* Weight gradients (``wgrad='conv'``, the default): ``dK`` of ``conv_s2``
  is one canonical convolution of ``x`` (batch and channels swapped) with
  ``dy`` dilated by 2 (:func:`s2_conv_weight_grad`); ``dW`` of ``conv_t2``
  is the same with the roles of ``x`` and ``dy`` swapped and the taps
  flipped (:func:`t2_conv_weight_grad`). Each has its own custom VJP (the
  gradient is bilinear in ``x`` and ``dy``; its VJP is a forward conv and an
  input gradient), so the penalties' second order stays on these paths.
* ``wgrad='matmul'`` (``conv_impl='fast_matmul'``, the earlier default):
  ``dK[t, s] = P(x)[t, s]^T dy`` and ``dW[t, s] = x^T P(dy)[3 - t, 3 - s]``
  with the 16 strided patches (``_s2_patches``: ``P[i, t] = z_pad[2i +
  t]``), one matmul; for large layers the same sums as a 2x2 stride-1
  weight gradient on the space-to-depth input (:func:`s2_weight_grad`,
  :func:`t2_weight_grad`). Every such weight gradient is a contraction over
  batch x pixels rows, computed in the orientation XLA:CPU runs 2-4x faster
  (:func:`_rows_dot`). Measured in whole train steps (2-core CPU, jax
  0.10.2, ``cpu_ynn_fusions='reduce'``, one process, median of 8-32
  steps), the canonical convolutions are faster: DCGAN-28 vanilla 83.0 ->
  75.8 ms, WGAN-GP 365 -> 338 ms, SN-GAN 242 -> 218 ms; the std-CNN SN-GAN
  (3x3 stride-1 layers too) 3.72 -> 3.37 s.

Other strides and kernel sizes of strided / transposed convolutions, and odd
inputs to a strided conv, use XLA's ops and gradients unchanged (the models
have none). Earlier versions of this module replaced every convolution's
forward pass by matmuls (im2col, phase and space-to-depth forms); those were
slower than XLA's forward convolutions (5x for a 3x3 conv 64 -> 64, 27x for
64 -> 3 by im2col) and multiplied the zero taps of assembled 3x3 kernels, so
they were removed. The matmul forms kept for few channels are other ones:
the taps (one matmul with ``kh kw C_out`` columns, then a shifted sum) take
4.5 instead of XLA's 15.2 ms for that 64 -> 3 conv (:func:`_s1_form`).

XLA:CPU's own convolution gradients are slow inside ``lax.scan``
(jax-ml/jax#12868); with these custom VJPs scanned loops are as fast, so
the train loops scan unless ``conv_impl`` is ``'native'`` on the CPU
(:func:`gan_stability.train.step.resolve_loop_impl`, which gives the
measurements).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

_DN = ('NHWC', 'HWIO', 'NHWC')


def _native_conv(x, kernel, strides, padding):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                      dimension_numbers=_DN)


def _native_conv_transpose(x, kernel, strides, padding):
  return jax.lax.conv_transpose(x, kernel, strides, padding,
                                dimension_numbers=_DN)


def _adjoint_kernel(kernel: jax.Array) -> jax.Array:
  """``adj(K)[t, s, o, i] = K[kh - 1 - t, kw - 1 - s, i, o]`` (HWIO)."""
  return jnp.swapaxes(kernel[::-1, ::-1], 2, 3)


def _same_pads(k: int) -> tuple[int, int]:
  """XLA's stride-1 ``'SAME'`` padding ``(low, high)`` for kernel size ``k``."""
  return (k - 1) // 2, k - 1 - (k - 1) // 2


def _fwd_saving_inputs(f):
  """The custom-VJP forward rule of ``f(a, b, *static)`` that keeps its two
  array arguments as the residuals (every custom VJP here but the linear
  kernel transforms', which keep nothing)."""
  return lambda a, b, *static: (f(a, b, *static), (a, b))


def _rows_dot(a: jax.Array, b: jax.Array) -> jax.Array:
  """``a^T b`` for ``a`` ``[M, K1]`` and ``b`` ``[M, K2]`` (a weight gradient:
  a contraction over the ``M`` = batch x pixels rows); with a leading batch
  axis (``[k, M, K1]``, ``[k, M, K2]``), the same per ``k``.

  XLA:CPU runs this contraction several times faster when the output has
  fewer rows than columns (measured on one core, jax 0.10.2: ``M`` = 16384,
  ``K1`` = 1024, ``K2`` = 64 takes 79 ms as ``a^T b`` but 19 ms as
  ``(b^T a)^T``; 3136 x 1024 x 128: 12.3 vs 6.0 ms). It rewrites either
  form into the other, so for ``K1 > K2`` the product ``b^T a`` is computed
  behind an ``optimization_barrier`` and then transposed (a small copy).
  """
  t = lambda z: jnp.swapaxes(z, -1, -2)
  if a.shape[-1] <= b.shape[-1]:
    return jnp.matmul(t(a), b)
  return t(jax.lax.optimization_barrier(jnp.matmul(t(b), a)))


def _shift_dy(rows: int, padded_rows: int, ci: int, co: int) -> bool:
  """Whether :func:`valid_weight_grad` should replicate ``dy`` (``'dy'``
  mode) rather than ``x`` (``'x'`` mode).

  Replicating the operand with fewer channels moves less memory, which
  dominates at large ``rows`` (this CPU copies ~5 GB/s): e.g. on one core,
  the 4x4 stride-2 conv 64 -> 64 at 32x32 (batch 64) takes 48 instead of
  93 ms; a 3x3 conv 64 -> 3 at 32x32, 22 instead of 138 ms. With few rows
  the ``'x'`` mode's narrower, deeper matmul is faster (a 4x4 stride-2 conv
  256 -> 256 at 8x8: 18 vs 27 ms; DCGAN-28's 64 -> 128 at 14x14, 3,136
  rows, is 4 % slower in the whole step with ``'dy'``), so ``'dy'`` needs
  at least 4,096 rows and 1.25x less memory.
  """
  return rows >= 4096 and 1.25 * padded_rows * co <= rows * ci


def valid_weight_grad(xp: jax.Array, dy: jax.Array, kh: int, kw: int,
                      mode: str = 'auto') -> jax.Array:
  """``dK[p, q] = sum_(b, i, j) xp[b, i + p, j + q]^T dy[b, i, j]``: the
  kernel gradient of a stride-1 ``'VALID'`` conv of ``xp`` (``[B, oh + kh -
  1, ow + kw - 1, ci]``) whose output gradient is ``dy`` (``[B, oh, ow,
  co]``); returns ``[kh, kw, ci, co]``.

  ``mode='x'``: one matmul per kernel row ``p``, over the ``kw`` column
  shifts of ``xp`` concatenated (``[B oh ow, kw ci]``). ``mode='dy'``: with
  ``u = i + p``, ``dK[p, q] = sum_(b, u, v) xp[b, u, v]^T dy_pq[b, u, v]``
  where ``dy_pq`` is ``dy`` zero-padded by ``(p, kh - 1 - p)`` rows and ``(q,
  kw - 1 - q)`` columns, so one matmul of ``xp`` with the ``kh kw`` shifted
  copies of ``dy`` (``[B H W, kh kw co]``) gives every tap. ``'auto'``
  chooses by :func:`_shift_dy`.
  """
  b, oh, ow, co = dy.shape
  ci = xp.shape[-1]
  hp, wp = xp.shape[1:3]
  if mode == 'auto':
    mode = 'dy' if _shift_dy(b * oh * ow, b * hp * wp, ci, co) else 'x'
  if mode == 'dy':
    shifted = jnp.concatenate(
        [jnp.pad(dy, ((0, 0), (p, kh - 1 - p), (q, kw - 1 - q), (0, 0)))
         for p in range(kh) for q in range(kw)], axis=-1)
    k = _rows_dot(xp.reshape(-1, ci), shifted.reshape(-1, kh * kw * co))
    return k.reshape(ci, kh, kw, co).transpose(1, 2, 0, 3)
  if mode != 'x':
    raise ValueError(f"mode: {mode!r}; allowed: ['auto', 'x', 'dy']")
  d = dy.reshape(-1, co)
  rows = []
  for p in range(kh):
    cols = jnp.concatenate([xp[:, p:p + oh, q:q + ow] for q in range(kw)],
                           axis=-1)
    rows.append(_rows_dot(cols.reshape(-1, kw * ci), d).reshape(kw, ci, co))
  return jnp.stack(rows)


def _conv_weight_grad(x: jax.Array, dy: jax.Array, strides, padding
                      ) -> jax.Array:
  """``dK`` of ``lax.conv_general_dilated(x, K, strides, padding)`` (NHWC,
  HWIO, explicit ``padding``) for output gradient ``dy``, as one convolution
  already in the form XLA:CPU hands to Eigen (NHWC input, HWIO kernel): the
  input is ``x`` with batch and channels swapped (``[C_in, H, W, B]``), the
  kernel is ``dy`` as ``[oh, ow, B, C_out]`` dilated by ``strides``, the
  output ``[C_in, kh, kw, C_out]``.

  XLA differentiates a convolution into the same contraction with other
  dimension numbers and rewrites it into this form (transposes around an
  Eigen convolution) in its ``ConvCanonicalization`` pass, which visits only
  the entry computation: inside a loop body or a call (a scanned train step,
  a custom VJP) the convolution stays non-canonical and runs as XLA's naive
  loop nest (the 4x4 stride-2 64 -> 128 layer of DCGAN-28: 280 ms per call
  in the train step vs 5 ms alone). Written in the canonical form it runs
  on Eigen everywhere.
  """
  lhs = jnp.transpose(x, (3, 1, 2, 0))
  rhs = jnp.transpose(dy, (1, 2, 0, 3))
  out = jax.lax.conv_general_dilated(lhs, rhs, (1, 1), padding,
                                     rhs_dilation=strides,
                                     dimension_numbers=_DN)
  return jnp.transpose(out, (1, 2, 0, 3))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def s1_conv_weight_grad(x: jax.Array, dy: jax.Array, padding) -> jax.Array:
  """Kernel gradient of ``conv_s1(x, K, padding)`` by :func:`_conv_weight_grad`.

  Custom VJP (the gradient is bilinear in ``x`` and ``dy``: ``<G, dK(x,
  dy)> = <dy, conv_s1(x, G)>``): the cotangent of ``dy`` is ``conv_s1(x, G)``
  and that of ``x`` is ``conv_s1``'s input gradient with kernel ``G``, so
  the penalties' second order stays on the fast paths."""
  return _conv_weight_grad(x, dy, (1, 1), padding)


def _s1_cwg_bwd(padding, res, g):
  x, dy = res
  return _s1_dx(dy, g, padding, 'conv'), conv_s1(x, g, padding, 'conv')


s1_conv_weight_grad.defvjp(_fwd_saving_inputs(s1_conv_weight_grad),
                           _s1_cwg_bwd)


@jax.custom_vjp
def s2_conv_weight_grad(x: jax.Array, dy: jax.Array) -> jax.Array:
  """Kernel gradient of ``conv_s2(x, K)`` by :func:`_conv_weight_grad`
  (custom VJP as :func:`s1_conv_weight_grad`: ``conv_s2(x, G)`` for ``dy``,
  ``conv_t2(dy, adj(G))`` for ``x``)."""
  return _conv_weight_grad(x, dy, (2, 2), ((1, 1), (1, 1)))


def _s2_cwg_bwd(res, g):
  x, dy = res
  return conv_t2(dy, _adjoint_kernel(g), 'conv'), conv_s2(x, g, 'conv')


s2_conv_weight_grad.defvjp(_fwd_saving_inputs(s2_conv_weight_grad),
                           _s2_cwg_bwd)


def _space_to_depth(x: jax.Array) -> jax.Array:
  """``[B, 2h, 2w, C] -> [B, h, w, 4C]``: ``out[b, i, j, (2a + c) C + k] =
  x[b, 2i + a, 2j + c, k]``."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def _pad1(x: jax.Array) -> jax.Array:
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


S1_FORMS = ('conv', 'taps', 'im2col')


def _s1_form(ci: int, co: int) -> str:
  """Which forward form :func:`conv_s1` uses for ``ci`` input and ``co``
  output channels: XLA's convolution (``'conv'``), :func:`_s1_taps` or
  :func:`_s1_im2col`.

  XLA:CPU's convolution is slow with few output or input channels: measured
  alone on the 2-core CPU (jax 0.10.2, batch 64, 3x3 at 32x32, median of 15
  calls inside a scan; ms, conv / taps): 64 -> 3 15.2 / 4.5, 64 -> 8 12.5 /
  9.0, 64 -> 16 12.4 / 17.0, 128 -> 8 at 16x16 6.4 / 2.1; (conv / im2col)
  3 -> 64 4.0 / 2.9, 8 -> 64 4.2 / 5.4.
  """
  if co <= 8:
    return 'taps'
  if ci <= 4:
    return 'im2col'
  return 'conv'


def _s1_wgrad_by_matmul(ci: int, co: int) -> bool:
  """Whether :func:`conv_s1`'s kernel gradient (``wgrad='conv'``) is
  :func:`valid_weight_grad` (matmuls) rather than
  :func:`s1_conv_weight_grad` (a convolution whose batch is ``ci``, whose
  features are ``co``: slow when either is small). Measured alone as in
  :func:`_s1_form` (ms, conv / matmul): 64 -> 3 17.5 / 4.4, 3 -> 64 3.3 /
  1.1, 64 -> 8 22.2 / 11.7, 8 -> 64 12.2 / 3.6, 16 -> 64 12.2 / 4.7, 64 ->
  16 20.5 / 20.1, 128 -> 8 at 16x16 9.7 / 3.7; the wider layers of the
  models are as fast or faster as convolutions."""
  return ci <= 16 or co <= 8


def _s1_taps(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """Stride-1 conv as one matmul and a shifted sum: ``P = x @ K'`` holds
  every tap's contribution ``K[t, s]^T x[j]`` (``[B, H, W, kh kw co]``);
  with ``P`` zero-padded like ``x``, ``y[i, j] = sum_(t, s) P_pad[i + t,
  j + s, (t, s)]``. Cheap when ``co`` is small (the matmul's ``kh kw co``
  columns are few)."""
  b, h, w, ci = x.shape
  kh, kw, _, co = kernel.shape
  (t0, t1), (l0, l1) = padding
  oh, ow = h + t0 + t1 - kh + 1, w + l0 + l1 - kw + 1
  k = kernel.transpose(2, 0, 1, 3).reshape(ci, kh * kw * co)
  taps = jnp.dot(x.reshape(b * h * w, ci), k).reshape(b, h, w, kh * kw * co)
  taps = jnp.pad(taps, ((0, 0), (t0, t1), (l0, l1), (0, 0)))
  taps = taps.reshape(b, h + t0 + t1, w + l0 + l1, kh, kw, co)
  return sum(taps[:, t:t + oh, s:s + ow, t, s]
             for t in range(kh) for s in range(kw))


def _s1_im2col(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """Stride-1 conv as one matmul of the ``kh kw`` shifted windows of ``x``
  padded (``[B oh ow, kh kw ci]``) with the kernel. Cheap when ``ci`` is
  small (the windows are ``kh kw`` copies of ``x``)."""
  b = x.shape[0]
  kh, kw, ci, co = kernel.shape
  xp = jnp.pad(x, ((0, 0),) + tuple(padding) + ((0, 0),))
  oh, ow = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
  cols = jnp.concatenate([xp[:, t:t + oh, s:s + ow]
                          for t in range(kh) for s in range(kw)], axis=-1)
  y = jnp.dot(cols.reshape(b * oh * ow, kh * kw * ci),
              kernel.reshape(kh * kw * ci, co))
  return y.reshape(b, oh, ow, co)


# Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
# Neural Networks", CVPR 2016): per 4x4 input tile d and 3x3 kernel g, the
# 2x2 output tile is A^T [(G g G^T) * (B^T d B)] A. One spatial axis:
# B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3), G g = (g0, (g0 + g1 + g2)/2,
# (g0 - g1 + g2)/2, g2), A^T m = (m0 + m1 + m2, m1 - m2 - m3).
_WINO_G = ((1., 0., 0.), (.5, .5, .5), (.5, -.5, .5), (0., 0., 1.))
# B^T as (sign, index) pairs per row.
_WINO_BT = (((1, 0), (-1, 2)), ((1, 1), (1, 2)), ((1, 2), (-1, 1)),
            ((1, 1), (-1, 3)))
# G flip(g) is G g with entries 0 and 3 swapped, so the transformed adjoint
# kernel (flipped taps, in/out swapped) is U[pi(k)]^T, pi this involution of
# the 16 transform-domain positions 4a + c.
_WINO_PI = tuple(4 * (3 - a if a in (0, 3) else a) + (3 - c if c in (0, 3)
                                                       else c)
                 for a in range(4) for c in range(4))
_WINO_MAX_HW = 1024
_WINO_MIN_CHANNELS = 128


def _s1_winograd(x_shape, kernel_shape, padding) -> bool:
  """Whether a stride-1 conv runs as :func:`winograd_conv` (``impl='fast'``):
  3x3 kernel, ``'SAME'`` padding, even sizes up to 32x32 (the range
  measured) and at least 128 channels each way.

  Winograd trades 2.25x fewer multiplications for transforms that read and
  write ``16 / 4`` times the input and output; they pay off with many
  channels. Measured on the 2-core CPU (jax 0.10.2, batch 64, forward +
  VJP inside a scan, ms, XLA conv path / Winograd): 256 -> 512 at 4x4
  28 / 17, 128 -> 256 at 8x8 33 / 23, 256 -> 256 at 16x16 299 / 209,
  128 -> 128 at 32x32 328 / 294; but 64 -> 128 at 16x16 38 / 45, 64 -> 64
  at 32x32 98 / 119, 32 -> 32 at 8x8 to 32x32 slower by 36-48 %. In whole
  train steps (one process, each variant compiled ahead, alternating): the
  ResNet SN-GAN 16.0 -> 10.7 s, the std-CNN SN-GAN 3.26 -> 3.09 s (its
  64 -> 128 layer too: no difference beyond noise)."""
  h, w, ci = x_shape[1:]
  kh, kw, _, co = kernel_shape
  return ((kh, kw) == (3, 3) and tuple(map(tuple, padding)) == ((1, 1), (1, 1))
          and h % 2 == 0 and w % 2 == 0 and h * w <= _WINO_MAX_HW
          and min(ci, co) >= _WINO_MIN_CHANNELS)


def _winograd_input(x: jax.Array, order=None) -> jax.Array:
  """``[B, H, W, C] -> [16, B H/2 W/2, C]``: ``B^T d B`` of every 4x4 tile
  (stride 2) of ``x`` zero-padded by one, positions in ``order`` (default
  ``0..15``). Each output is a signed sum of four strided slices of the
  padded ``x``, so XLA computes all in one pass."""
  b, h, w, c = x.shape
  xp = _pad1(x)
  sl = lambda u, v: xp[:, u:u + h:2, v:v + w:2]
  v = [sum(su * sv * sl(u, v) for su, u in _WINO_BT[k // 4]
           for sv, v in _WINO_BT[k % 4])
       for k in (order or range(16))]
  return jnp.stack(v).reshape(16, b * (h // 2) * (w // 2), c)


def _winograd_output(m: jax.Array, b: int, h: int, w: int, order=None
                     ) -> jax.Array:
  """``[16, B H/2 W/2, co] -> [B, H, W, co]``: ``A^T m A`` per tile, ``m``'s
  positions in ``order``."""
  idx = {k: i for i, k in enumerate(order or range(16))}
  m = m.reshape(16, b, h // 2, w // 2, -1)
  at = lambda f: (f(0) + f(1) + f(2), f(1) - f(2) - f(3))
  cols = [at(lambda c, a=a: m[idx[4 * a + c]]) for a in range(4)]  # [a][s]
  by_s = [at(lambda a, s=s: cols[a][s]) for s in (0, 1)]  # [s][r]
  y = [jnp.stack([by_s[s][r] for s in (0, 1)], axis=3) for r in (0, 1)]
  return jnp.stack(y, axis=2).reshape(b, h, w, -1)


def _winograd_output_adjoint(dy: jax.Array, order=None) -> jax.Array:
  """The adjoint of :func:`_winograd_output`: ``[B, H, W, co] -> [16, B H/2
  W/2, co]``, ``A dy A^T`` per 2x2 tile (rows of ``A``: ``(1, 0), (1, 1),
  (1, -1), (0, -1)``)."""
  b, h, w, co = dy.shape
  d = dy.reshape(b, h // 2, 2, w // 2, 2, co)
  adj = lambda d0, d1: (d0, d0 + d1, d0 - d1, -d1)
  rows = adj(d[:, :, 0], d[:, :, 1])
  m = [t for r in rows for t in adj(r[:, :, :, 0], r[:, :, :, 1])]
  return jnp.stack([m[k] for k in (order or range(16))]).reshape(16, -1, co)


def _wino_coef(a: int, c: int, p: int, q: int) -> float:
  return _WINO_G[a][p] * _WINO_G[c][q]


@jax.custom_vjp
def _winograd_kernel(kernel: jax.Array) -> jax.Array:
  """``[3, 3, ci, co] -> [16, ci, co]``: ``G g G^T``, as elementwise sums
  (one pass over the kernel). Custom VJP: the transpose,
  :func:`_winograd_kernel_t` (autodiff's transpose of these sums pads
  every tap to the full output: 35 ms instead of 1 for a 3x3 256 -> 512
  kernel)."""
  return jnp.stack([sum(_wino_coef(a, c, p, q) * kernel[p, q]
                        for p in range(3) for q in range(3)
                        if _wino_coef(a, c, p, q) != 0)
                    for a in range(4) for c in range(4)])


@jax.custom_vjp
def _winograd_kernel_t(u: jax.Array) -> jax.Array:
  """The transpose of :func:`_winograd_kernel`: ``[16, ci, co] -> [3, 3, ci,
  co]``, ``G^T u G`` (custom VJP: :func:`_winograd_kernel`)."""
  taps = [[sum(_wino_coef(a, c, p, q) * u[4 * a + c]
               for a in range(4) for c in range(4)
               if _wino_coef(a, c, p, q) != 0)
           for q in range(3)] for p in range(3)]
  return jnp.stack([jnp.stack(r) for r in taps])


_winograd_kernel.defvjp(lambda k: (_winograd_kernel(k), None),
                        lambda _, g: (_winograd_kernel_t(g),))
_winograd_kernel_t.defvjp(lambda u: (_winograd_kernel_t(u), None),
                          lambda _, g: (_winograd_kernel(g),))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _wino(x: jax.Array, u: jax.Array, adjoint: bool) -> jax.Array:
  """The Winograd conv of ``x`` with transformed kernel ``u`` (``[16, ci,
  co]``): ``adjoint=False`` maps ``ci -> co`` channels (kernel ``g``),
  ``True`` maps ``co -> ci`` with the adjoint kernel ``adj(g)`` (transformed:
  ``u[pi(k)]^T``, read in place by the matmul). Custom VJP: the input
  gradient is the other direction, the kernel gradient
  :func:`_wino_kernel_grad`; both again custom-VJP functions, so gradients
  of any order stay on these paths."""
  b, h, w, _ = x.shape
  if not adjoint:
    m = jnp.einsum('ktc,kco->kto', _winograd_input(x), u)
    return _winograd_output(m, b, h, w)
  m = jnp.einsum('kto,kco->ktc', _winograd_input(x, _WINO_PI), u)
  return _winograd_output(m, b, h, w, _WINO_PI)


def _wino_bwd(adjoint, res, dy):
  x, u = res
  return _wino(dy, u, not adjoint), _wino_kernel_grad(x, dy, adjoint)


_wino.defvjp(_fwd_saving_inputs(_wino), _wino_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _wino_kernel_grad(x: jax.Array, dy: jax.Array, adjoint: bool
                      ) -> jax.Array:
  """``d<dy, _wino(x, u, adjoint)> / du`` (``[16, ci, co]``): per position
  ``k``, ``(B^T x B)_k^T (A dy A^T)_k`` summed over tiles (``adjoint``: the
  roles of the channels swapped, positions permuted by ``pi``). Custom VJP
  (bilinear in ``x`` and ``dy``): ``_wino(x, g, adjoint)`` for ``dy``,
  ``_wino(dy, g, not adjoint)`` for ``x``."""
  if not adjoint:
    return _rows_dot(_winograd_input(x), _winograd_output_adjoint(dy))
  return _rows_dot(_winograd_output_adjoint(dy, _WINO_PI),
                           _winograd_input(x, _WINO_PI))


def _wkg_bwd(adjoint, res, g):
  x, dy = res
  return _wino(dy, g, not adjoint), _wino(x, g, adjoint)


_wino_kernel_grad.defvjp(_fwd_saving_inputs(_wino_kernel_grad), _wkg_bwd)


def winograd_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 3x3 ``'SAME'`` conv of ``x`` (even ``H``, ``W``) by Winograd
  F(2x2, 3x3): 16 matmuls ``[B H W / 4, ci] x [ci, co]``, 2.25x fewer
  multiplications than the direct conv, and as many for each gradient."""
  return _wino(x, _winograd_kernel(kernel), False)


S1_FORWARD = {'conv': lambda x, k, padding: _native_conv(x, k, (1, 1),
                                                         padding),
              'taps': _s1_taps, 'im2col': _s1_im2col}


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_s1(x: jax.Array, kernel: jax.Array, padding, wgrad: str = 'conv'
            ) -> jax.Array:
  """Stride-1 ``lax.conv_general_dilated(x, kernel, (1, 1), padding)`` (NHWC,
  HWIO; ``padding`` = ``((low, high), (low, high))`` with each at most
  ``k - 1``), with a custom VJP: ``dx`` is ``conv_s1`` of ``dy`` with
  ``adj(K)`` and padding ``(k - 1 - low, k - 1 - high)``; ``dK`` is
  :func:`s1_conv_weight_grad` (``wgrad='conv'``; :func:`valid_weight_grad`
  for few channels, :func:`_s1_wgrad_by_matmul`) or
  :func:`valid_weight_grad` of ``x`` padded (``'matmul'``). The forward pass
  is XLA's convolution, or a matmul form for few channels
  (:func:`_s1_form`)."""
  form = _s1_form(x.shape[-1], kernel.shape[-1])
  return S1_FORWARD[form](x, kernel, padding)


def _s1_dx(dy, kernel, padding, wgrad):
  kh, kw = kernel.shape[:2]
  (t, b), (l, r) = padding
  return conv_s1(dy, _adjoint_kernel(kernel),
                 ((kh - 1 - t, kh - 1 - b), (kw - 1 - l, kw - 1 - r)), wgrad)


def _conv_s1_bwd(padding, wgrad, res, dy):
  x, kernel = res
  dx = _s1_dx(dy, kernel, padding, wgrad)
  if wgrad == 'conv' and not _s1_wgrad_by_matmul(*kernel.shape[2:]):
    return dx, s1_conv_weight_grad(x, dy, padding)
  kh, kw = kernel.shape[:2]
  xp = jnp.pad(x, ((0, 0),) + tuple(padding) + ((0, 0),))
  return dx, valid_weight_grad(xp, dy, kh, kw)


conv_s1.defvjp(_fwd_saving_inputs(conv_s1), _conv_s1_bwd)


def _s2_patches(x: jax.Array) -> jax.Array:
  """``[B, H, W, C] -> [B * H/2 * W/2, 16 * C]``, row ``(b, i, j)`` holding
  ``x_pad[b, 2i + t, 2j + s, c]`` at column ``(4t + s) * C + c`` (``x_pad``:
  ``x`` zero-padded by one on every side; ``H``, ``W`` even).

  Built as four shifted windows of the space-to-depth view of ``x_pad``
  (``t = 2p + a``: ``x_pad[2i + t] = x_pad[2(i + p) + a]``) and one
  transpose, which XLA copies about 1.5x faster than sixteen strided
  slices concatenated (measured alone on one core).
  """
  b, h, w, c = x.shape
  oh, ow = h // 2, w // 2
  x6 = _pad1(x).reshape(b, oh + 1, 2, ow + 1, 2, c)  # [b, i, a, j, s, c]
  win = jnp.stack([jnp.stack([x6[:, p:p + oh, :, q:q + ow] for q in range(2)])
                   for p in range(2)])  # [p, q, b, i, a, j, s', c]
  # columns (t, s, c) = (p, a, q, s', c)
  return win.transpose(2, 3, 5, 0, 4, 1, 6, 7).reshape(b * oh * ow, 16 * c)


def s2_weight_grad(x: jax.Array, dy: jax.Array, mode: str = 'auto'
                   ) -> jax.Array:
  """Kernel gradient of ``conv_s2(x, K)`` for output gradient ``dy``:
  ``dK[t, s] = P(x)[t, s]^T dy`` (``[4, 4, C, C_out]``).

  ``mode='patches'``: one matmul with the 16 strided patches
  (:func:`_s2_patches`, ``[B oh ow, 16 C]``). ``mode='dy'``: the same sum as
  the gradient of a 2x2 stride-1 conv on the space-to-depth input (tap
  ``t = 2p + a``: ``x_pad[2i + t] = s2d(x_pad)[i + p]`` at phase ``a``), by
  :func:`valid_weight_grad` in its ``'dy'`` mode, which replicates ``dy``
  (4 copies) instead of ``x`` (16). ``'auto'`` chooses by :func:`_shift_dy`.
  """
  b, h, w, c = x.shape
  co = dy.shape[-1]
  oh, ow = h // 2, w // 2
  if mode == 'auto':
    mode = ('dy' if _shift_dy(b * oh * ow, b * (oh + 1) * (ow + 1), 4 * c, co)
            else 'patches')
  if mode == 'patches':
    dk = _rows_dot(_s2_patches(x), dy.reshape(-1, co))
    return dk.reshape(4, 4, c, co)
  if mode != 'dy':
    raise ValueError(f"mode: {mode!r}; allowed: ['auto', 'patches', 'dy']")
  k = valid_weight_grad(_space_to_depth(_pad1(x)), dy, 2, 2, 'dy')
  # [p, q, (a, b, c), co] -> [2p + a, 2q + b, c, co]
  k = k.reshape(2, 2, 2, 2, c, co).transpose(0, 2, 1, 3, 4, 5)
  return k.reshape(4, 4, c, co)


def t2_weight_grad(x: jax.Array, dy: jax.Array, mode: str = 'auto'
                   ) -> jax.Array:
  """Kernel gradient of ``conv_t2(x, W)`` for output gradient ``dy``:
  ``dW[t, s] = x^T P(dy)[3 - t, 3 - s]`` (``[4, 4, C_in, C_out]``).

  ``mode='patches'``: one matmul with the patches of ``dy``. ``mode='dy'``
  (named for :func:`valid_weight_grad`'s mode; here it replicates ``x``):
  with ``t' = 3 - t = 2p + a``, ``dW[t] = sum_i x[i]^T s2d(dy_pad)[i + p]``
  at phase ``a``: the 2x2 stride-1 kernel gradient with ``s2d(dy_pad)`` as
  the input and ``x`` as the output gradient. ``'auto'`` chooses by
  :func:`_shift_dy` (for that 2x2 gradient).
  """
  b, h, w, ci = x.shape
  co = dy.shape[-1]
  if mode == 'auto':
    mode = ('dy' if _shift_dy(b * h * w, b * (h + 1) * (w + 1), 4 * co, ci)
            else 'patches')
  if mode == 'patches':
    dw = _rows_dot(x.reshape(-1, ci), _s2_patches(dy))  # [ci, (t', s', co)]
    return dw.reshape(ci, 4, 4, co)[:, ::-1, ::-1].transpose(1, 2, 0, 3)
  if mode != 'dy':
    raise ValueError(f"mode: {mode!r}; allowed: ['auto', 'patches', 'dy']")
  k = valid_weight_grad(_space_to_depth(_pad1(dy)), x, 2, 2, 'dy')
  # [p, q, (a, b, co), ci] -> [t' = 2p + a, s' = 2q + b, ci, co], flipped
  k = k.reshape(2, 2, 2, 2, co, ci).transpose(0, 2, 1, 3, 5, 4)
  return k.reshape(4, 4, ci, co)[::-1, ::-1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_s2(x: jax.Array, kernel: jax.Array, wgrad: str = 'conv'
            ) -> jax.Array:
  """``lax.conv(x, kernel, (2, 2), 'SAME')`` for a 4x4 kernel and even
  ``H``, ``W`` (NHWC, HWIO), with the fast VJP of the module docstring
  (``dK``: :func:`s2_conv_weight_grad` for ``wgrad='conv'``,
  :func:`s2_weight_grad` for ``'matmul'``)."""
  return _native_conv(x, kernel, (2, 2), 'SAME')


def _conv_s2_bwd(wgrad, res, dy):
  x, kernel = res
  dx = conv_t2(dy, _adjoint_kernel(kernel), wgrad)
  if wgrad == 'conv':
    return dx, s2_conv_weight_grad(x, dy)
  return dx, s2_weight_grad(x, dy)


conv_s2.defvjp(_fwd_saving_inputs(conv_s2), _conv_s2_bwd)


T2_FORMS = ('taps', 'rows', 'exact')


def _t2_form(h: int, w: int, co: int) -> str:
  """Which forward form :func:`conv_t2` uses for an ``h x w`` input and
  ``co`` output channels: ``'taps'`` (:func:`_t2_taps`), ``'rows'``
  (:func:`_t2_rows`) or ``'exact'`` (:func:`_t2_exact`).

  Measured alone on the 2-core CPU (jax 0.10.2, batch 64, Eigen
  convolutions, median of 15 calls inside a scan; ms per call, taps /
  phases / rows / exact, where phases was the earlier single 2x2 conv with
  ``4 co`` outputs for all four phases, since removed): 4x4 512 -> 256
  22.7 / 34.4 / 26.7 / 22.9; 4x4 256 -> 256 11.8 / 17.9 / 13.8 / 11.0; 8x8
  256 -> 128 26.9 / 26.0 / 24.0 / 21.0; 7x7 128 -> 64 4.8 / 5.5 / 4.6 /
  4.9; 16x16 128 -> 64 31.6 / 25.1 / 23.5 / 26.2; 14x14 64 -> 1 0.5 / 1.5
  / 2.5 / 1.7. The phases form computed ``(h + 1)(w + 1)`` positions for
  ``h w`` outputs (27 % more at 8x8, 56 % at 4x4); ``'rows'`` wastes ``(w +
  1) / w`` and ``'exact'`` nothing, at the price of two or four
  convolutions with ``2 co`` or ``co`` output channels. In whole train steps (one process,
  the rules timed alternately, median of 12-64 steps), this rule against
  the earlier one (phases from 7x7 up, taps below): std-CNN
  SN-GAN 3446 -> 3341 ms, DCGAN-28 WGAN-GP 341 -> 321 ms, DCGAN-28 SN-GAN
  232 -> 221 ms, DCGAN-28 vanilla 72.0 -> 69.4 ms; at 4x4 the taps beat
  ``'exact'`` in the step (3455 vs 3501 ms) and at 7x7 ``'rows'`` beat it
  (221 vs 231 ms), while at 8x8 ``'exact'`` beat ``'rows'``.
  """
  if co < 16 or h * w <= 16:
    return 'taps'
  if h * w <= 64 and h % 2 == 0 and w % 2 == 0:
    return 'exact'
  return 'rows'


def _t2_phase_kernel(kernel: jax.Array) -> jax.Array:
  """``[4, 4, ci, co] -> [p, a, q, c, ci, co]`` with ``[p, a, q, c] =
  W[2p + a, 2q + c]``: the 2x2 kernel of output phase ``(a, c)``."""
  ci, co = kernel.shape[2:]
  return kernel.reshape(2, 2, 2, 2, ci, co)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_t2(x: jax.Array, kernel: jax.Array, wgrad: str = 'conv'
            ) -> jax.Array:
  """``lax.conv_transpose(x, kernel, (2, 2), 'SAME')`` for a 4x4 kernel
  (NHWC, HWIO), with the fast VJP of the module docstring (``dW``: for
  ``wgrad='conv'`` :func:`s2_conv_weight_grad` with the roles of ``x`` and
  ``dy`` swapped, taps flipped; for ``'matmul'`` :func:`t2_weight_grad`;
  see :func:`t2_conv_weight_grad`). The forward pass is one of the
  :data:`T2_FORMS` by size (:func:`_t2_form`); XLA's own op (an
  ``lhs_dilation`` convolution) took 6 ms at 7x7 -> 14x14 alone but
  130-170 ms for 16x16 -> 32x32 (64 channels) inside the SN-GAN train
  step."""
  _, h, w, _ = x.shape
  return T2_FORWARD[_t2_form(h, w, kernel.shape[-1])](x, kernel)


def _t2_taps(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """:func:`conv_t2` as one matmul and an overlap-add: ``P = x @ W'`` holds
  every tap's contribution ``W[3 - t, 3 - s]^T x[j]`` (``[B, H, W, 16,
  C_out]``) and tap ``t`` of input row ``j`` lands on output row
  ``2j + t - 1`` (:func:`_overlap_add`)."""
  b, h, w, ci = x.shape
  co = kernel.shape[-1]
  kf = kernel[::-1, ::-1].transpose(2, 0, 1, 3).reshape(ci, 16 * co)
  taps = jnp.dot(x.reshape(b * h * w, ci), kf)
  return _overlap_add(taps.reshape(b, h, w, 4, 4, co))


def _t2_rows(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """:func:`conv_t2` as one stride-1 conv per output row phase ``a``
  (sub-pixel form). One spatial axis: output row ``2r + a`` is ``W[a]^T
  x[r - 1 + a] + W[2 + a]^T x[r + a]``, a 2x2 conv with kernel ``K[p] =
  W[2p + a]`` and row padding ``(1 - a, a)``, exactly ``H`` rows. Its two
  column phases ``c`` share one conv: padded by one column on each side it
  yields ``W + 1`` columns of ``2 C_out`` channels, phase ``c`` read at
  columns ``c ... c + W - 1``."""
  b, h, w, ci = x.shape
  co = kernel.shape[-1]
  k6 = _t2_phase_kernel(kernel)
  rows = []
  for a in range(2):
    k = k6[:, a].transpose(0, 1, 3, 2, 4).reshape(2, 2, ci, 2 * co)
    y = _native_conv(x, k, (1, 1), ((1 - a, a), (1, 1)))
    y = y.reshape(b, h, w + 1, 2, co)
    rows.append(jnp.stack([y[:, :, c:c + w, c] for c in range(2)], axis=3))
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, co)


def _t2_exact(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """:func:`conv_t2` as four stride-1 2x2 convs, one per output phase ``(a,
  c)``, each padded ``((1 - a, a), (1 - c, c))`` so that it computes exactly
  the ``H x W`` outputs of its phase (see :func:`_t2_rows`)."""
  b, h, w, _ = x.shape
  co = kernel.shape[-1]
  k6 = _t2_phase_kernel(kernel)
  rows = [jnp.stack([_native_conv(x, k6[:, a, :, c], (1, 1),
                                  ((1 - a, a), (1 - c, c)))
                     for c in range(2)], axis=3)
          for a in range(2)]  # [B, h, w, 2 (c), co] for each a
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, co)


T2_FORWARD = {'taps': _t2_taps, 'rows': _t2_rows, 'exact': _t2_exact}


def _overlap_add(p: jax.Array) -> jax.Array:
  """``[B, H, W, 4, 4, C] -> [B, 2H, 2W, C]``: ``out[2i + t - 1, 2j + s - 1]
  += p[i, j, t, s]`` (dropping the rows/columns -1 and 2H). Output row
  ``2r`` gets taps 1 (of row ``r``) and 3 (of row ``r - 1``); row ``2r + 1``
  gets taps 2 (row ``r``) and 0 (row ``r + 1``); columns likewise."""
  b, h, w, _, _, c = p.shape
  zr = jnp.zeros((b, 1, w, 4, c), p.dtype)
  even = p[:, :, :, 1] + jnp.concatenate([zr, p[:, :-1, :, 3]], axis=1)
  odd = p[:, :, :, 2] + jnp.concatenate([p[:, 1:, :, 0], zr], axis=1)
  r = jnp.stack([even, odd], axis=2)  # [B, H, 2, W, 4(s), C]
  zc = jnp.zeros((b, h, 2, 1, c), p.dtype)
  even = r[:, :, :, :, 1] + jnp.concatenate([zc, r[:, :, :, :-1, 3]], axis=3)
  odd = r[:, :, :, :, 2] + jnp.concatenate([r[:, :, :, 1:, 0], zc], axis=3)
  return jnp.stack([even, odd], axis=4).reshape(b, 2 * h, 2 * w, c)


def t2_conv_weight_grad(x: jax.Array, dy: jax.Array) -> jax.Array:
  """Kernel gradient of ``conv_t2(x, W)`` for output gradient ``dy``, from
  the strided conv's: ``dW[t, s] = sum_j x[j]^T dy_pad[2j + 3 - t]`` (module
  docstring) is ``dK[3 - t, 3 - s]^T`` for ``dK`` = the kernel gradient of
  ``conv_s2(dy, K)`` with output gradient ``x`` (``dK[t'] = sum_j
  dy_pad[2j + t']^T x[j]``)."""
  k = s2_conv_weight_grad(dy, x)  # [t', s', C_out, C_in]
  return jnp.transpose(k[::-1, ::-1], (0, 1, 3, 2))


def _conv_t2_bwd(wgrad, res, dy):
  x, kernel = res
  dx = conv_s2(dy, _adjoint_kernel(kernel), wgrad)
  if wgrad == 'conv':
    return dx, t2_conv_weight_grad(x, dy)
  return dx, t2_weight_grad(x, dy)


conv_t2.defvjp(_fwd_saving_inputs(conv_t2), _conv_t2_bwd)


IMPLS = ('auto', 'native', 'fast', 'fast_matmul')


def resolve_impl(impl: str) -> str:
  """``'auto'`` is ``'fast'`` on the CPU backend and ``'native'`` elsewhere.

  Measured on the 2-core CPU (jax 0.10.2; ``experiments/bench``): the custom
  VJPs make a DCGAN-28 WGAN-GP train step about 30x faster than XLA's own
  gradients. On GPUs/TPUs the vendor convolution kernels are the better
  default; ``'fast'`` or ``'native'`` force either everywhere.
  ``'fast_matmul'`` is ``'fast'`` with the weight gradients as matmuls
  (:func:`valid_weight_grad`, :func:`s2_weight_grad`,
  :func:`t2_weight_grad`) instead of canonical convolutions
  (:func:`s1_conv_weight_grad`, :func:`s2_conv_weight_grad`,
  :func:`t2_conv_weight_grad`); the latter are faster in every train step
  measured (see :func:`_conv_weight_grad`).
  """
  if impl not in IMPLS:
    raise ValueError(f"config.model.conv_impl: {impl!r}; allowed: "
                     f"{list(IMPLS)}")
  if impl == 'auto':
    return 'fast' if jax.default_backend() == 'cpu' else 'native'
  return impl


class _ConvBase(nn.Module):
  """Parameters exactly as ``nn.Conv``/``nn.ConvTranspose`` declare them;
  subclasses choose how the kernel is applied in ``_apply``."""
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  strides: tuple[int, int] = (1, 1)
  padding: str = 'SAME'
  use_bias: bool = True
  impl: str = 'auto'
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()

  def _fast(self) -> bool:
    return resolve_impl(self.impl) != 'native'

  def _wgrad(self) -> str:
    return 'matmul' if resolve_impl(self.impl) == 'fast_matmul' else 'conv'

  def _apply(self, x, kernel):
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features))
    y = self._apply(x, kernel)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,))
    return y


class ConvTranspose(_ConvBase):
  """Drop-in for ``nn.ConvTranspose`` (same ``kernel``/``bias`` parameters)."""
  kernel_size: tuple[int, int] = (4, 4)
  strides: tuple[int, int] = (2, 2)

  def _apply(self, x, kernel):
    if (self._fast() and tuple(self.kernel_size) == (4, 4)
        and tuple(self.strides) == (2, 2) and self.padding == 'SAME'):
      return conv_t2(x, kernel, self._wgrad())
    return _native_conv_transpose(x, kernel, tuple(self.strides), self.padding)


class Conv(_ConvBase):
  """Drop-in for ``nn.Conv`` (same ``kernel``/``bias`` parameters)."""

  def _apply(self, x, kernel):
    strides, k = tuple(self.strides), tuple(self.kernel_size)
    if not self._fast():
      return _native_conv(x, kernel, strides, self.padding)
    if strides == (1, 1) and self.padding in ('SAME', 'VALID'):
      pads = (_same_pads(k[0]), _same_pads(k[1])
              ) if self.padding == 'SAME' else ((0, 0), (0, 0))
      if (self._wgrad() == 'conv'
          and _s1_winograd(x.shape, kernel.shape, pads)):
        return winograd_conv(x, kernel)
      return conv_s1(x, kernel, pads, self._wgrad())
    if (strides == (2, 2) and k == (4, 4) and self.padding == 'SAME'
        and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0):
      return conv_s2(x, kernel, self._wgrad())
    return _native_conv(x, kernel, strides, self.padding)
