"""Kernel (weight) gradients of convolutions, as plain functions.

* :func:`conv_weight_grad`: the kernel gradient of any convolution as one
  convolution already in the canonical form XLA:CPU hands to its Eigen
  kernels (the default, ``wgrad='conv'``). Inside a loop body or a call
  XLA's own kernel gradient is not canonicalised and runs as a naive loop
  nest; written this way it runs on Eigen everywhere.
* The matmul forms (``wgrad='matmul'``, and stride-1 convs with few
  channels): :func:`valid_weight_grad` (a stride-1 ``'VALID'`` conv),
  :func:`s2_weight_grad` and :func:`t2_weight_grad` (the 4x4 stride-2 conv
  and transposed conv), each a contraction over batch x pixels rows
  (:func:`gan_stability.kernels.common.rows_dot`).

The custom-VJP wrappers that make these differentiable on the same paths
(``s1_conv_weight_grad``, ``s2_conv_weight_grad``, ``t2_conv_weight_grad``)
live beside the convolutions whose VJPs they call
(:mod:`gan_stability.kernels.stride1`, :mod:`gan_stability.kernels.strided`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_stability.kernels import common


def conv_weight_grad(x: jax.Array, dy: jax.Array, strides, padding
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
  loop nest. Written in the canonical form it runs on Eigen everywhere.
  """
  lhs = jnp.transpose(x, (3, 1, 2, 0))
  rhs = jnp.transpose(dy, (1, 2, 0, 3))
  out = jax.lax.conv_general_dilated(lhs, rhs, (1, 1), padding,
                                     rhs_dilation=strides,
                                     dimension_numbers=common.DN)
  return jnp.transpose(out, (1, 2, 0, 3))


def _shift_dy(rows: int, padded_rows: int, ci: int, co: int) -> bool:
  """Whether :func:`valid_weight_grad` should replicate ``dy`` (``'dy'``
  mode) rather than ``x`` (``'x'`` mode).

  Replicating the operand with fewer channels moves less memory, which
  dominates at many ``rows``; with few rows the ``'x'`` mode's narrower,
  deeper matmul is faster. So ``'dy'`` needs at least 4,096 rows and 1.25x
  less memory (thresholds set from the timings in ``docs/kernels.md``).
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
    k = common.rows_dot(xp.reshape(-1, ci), shifted.reshape(-1, kh * kw * co))
    return k.reshape(ci, kh, kw, co).transpose(1, 2, 0, 3)
  if mode != 'x':
    raise ValueError(f"mode: {mode!r}; allowed: ['auto', 'x', 'dy']")
  d = dy.reshape(-1, co)
  rows = []
  for p in range(kh):
    cols = jnp.concatenate([xp[:, p:p + oh, q:q + ow] for q in range(kw)],
                           axis=-1)
    rows.append(common.rows_dot(cols.reshape(-1, kw * ci), d).reshape(
        kw, ci, co))
  return jnp.stack(rows)


def _space_to_depth(x: jax.Array) -> jax.Array:
  """``[B, 2h, 2w, C] -> [B, h, w, 4C]``: ``out[b, i, j, (2a + c) C + k] =
  x[b, 2i + a, 2j + c, k]``."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def _s2_patches(x: jax.Array) -> jax.Array:
  """``[B, H, W, C] -> [B * H/2 * W/2, 16 * C]``, row ``(b, i, j)`` holding
  ``x_pad[b, 2i + t, 2j + s, c]`` at column ``(4t + s) * C + c`` (``x_pad``:
  ``x`` zero-padded by one on every side; ``H``, ``W`` even).

  Built as four shifted windows of the space-to-depth view of ``x_pad``
  (``t = 2p + a``: ``x_pad[2i + t] = x_pad[2(i + p) + a]``) and one
  transpose, which XLA copies faster than sixteen strided slices
  concatenated.
  """
  b, h, w, c = x.shape
  oh, ow = h // 2, w // 2
  x6 = common.pad1(x).reshape(b, oh + 1, 2, ow + 1, 2, c)  # [b, i, a, j, s, c]
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
    dk = common.rows_dot(_s2_patches(x), dy.reshape(-1, co))
    return dk.reshape(4, 4, c, co)
  if mode != 'dy':
    raise ValueError(f"mode: {mode!r}; allowed: ['auto', 'patches', 'dy']")
  k = valid_weight_grad(_space_to_depth(common.pad1(x)), dy, 2, 2, 'dy')
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
    # [ci, (t', s', co)]
    dw = common.rows_dot(x.reshape(-1, ci), _s2_patches(dy))
    return dw.reshape(ci, 4, 4, co)[:, ::-1, ::-1].transpose(1, 2, 0, 3)
  if mode != 'dy':
    raise ValueError(f"mode: {mode!r}; allowed: ['auto', 'patches', 'dy']")
  k = valid_weight_grad(_space_to_depth(common.pad1(dy)), x, 2, 2, 'dy')
  # [p, q, (a, b, co), ci] -> [t' = 2p + a, s' = 2q + b, ci, co], flipped
  k = k.reshape(2, 2, 2, 2, co, ci).transpose(0, 2, 1, 3, 5, 4)
  return k.reshape(4, 4, ci, co)[::-1, ::-1]
