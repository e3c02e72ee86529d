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
  10-13 s per layer in the SN-GAN step).

So every convolution of the models gets a custom VJP whose pieces are
forward convolutions and matmuls, which are fast:

* ``conv_s1`` (stride 1, any kernel, explicit padding): forward is XLA's
  op; ``dx`` is ``conv_s1`` of ``dy`` with the adjoint kernel; ``dK`` is
  a matmul per kernel row over shifted patches.
* ``conv_s2`` / ``conv_t2`` (4x4, stride 2, ``'SAME'``): the strided conv's
  forward is XLA's op; the transposed conv's forward is one matmul plus an
  overlap-add (XLA's ``lhs_dilation`` op fell to 130-170 ms inside the
  SN-GAN step).
* Notation (one spatial axis; the other is the same): ``conv_s2(x, K)`` is
  ``y[i] = sum_t K[t]^T x[2i + t - 1]`` (XLA's SAME padding (1, 1), input
  size even), ``conv_t2(x, W)`` is ``lax.conv_transpose(x, W, (2, 2),
  'SAME')``: input ``j`` adds ``W[t]^T x[j]`` to output ``2j + 2 - t``.
* The two are adjoint: the input gradient of ``conv_s2`` is
  ``conv_t2(dy, adj(K))`` and that of ``conv_t2`` is ``conv_s2(dy, adj(W))``
  with ``adj(K)[t, s] = K[3 - t, 3 - s]^T`` (flip the taps, swap in / out).
  Each VJP calls the other custom-VJP function, so the gradients of any
  order stay on these paths.
* Weight gradients are one matrix multiplication with the 16 strided
  patches (``_s2_patches``: ``P[i, t] = z_pad[2i + t]``):
  ``dK[t, s] = P(x)[t, s]^T dy`` and ``dW[t, s] = x^T P(dy)[3 - t, 3 - s]``.
  (XLA's own weight gradient of the strided conv is fast in isolation,
  ~8 ms for the layer above, but took 0.7-1.1 s inside the jitted DCGAN-28
  train step, where XLA picked another kernel for it.)

Other strides and kernel sizes of strided / transposed convolutions, and odd
inputs to a strided conv, use XLA's ops and gradients unchanged (the models
have none). Earlier versions of this module replaced every convolution's
forward pass by matmuls (im2col, phase and space-to-depth forms); those were
slower than XLA's forward convolutions (5x for a 3x3 conv 64 -> 64, 27x for
64 -> 3) and multiplied the zero taps of assembled 3x3 kernels, so they were
removed.

XLA:CPU convolutions can be slow inside ``lax.scan`` (jax-ml/jax#12868), so
the conv models unroll their loops on the CPU by default
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


def _s1_weight_grad(x, dy, kernel_shape, padding):
  """``dK[p, q] = sum_(b, i, j) x_pad[b, i + p, j + q]^T dy[b, i, j]`` for a
  stride-1 conv: one matmul per kernel row ``p`` over the ``kw`` column
  shifts concatenated (measured faster here than one im2col matmul or one
  matmul per tap)."""
  kh, kw, ci, co = kernel_shape
  xp = jnp.pad(x, ((0, 0),) + tuple(padding) + ((0, 0),))
  _, oh, ow, _ = dy.shape
  d = dy.reshape(-1, co)
  rows = []
  for p in range(kh):
    cols = jnp.concatenate([xp[:, p:p + oh, q:q + ow] for q in range(kw)],
                           axis=-1)
    rows.append(jnp.dot(cols.reshape(-1, kw * ci).T, d).reshape(kw, ci, co))
  return jnp.stack(rows)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_s1(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """Stride-1 ``lax.conv_general_dilated(x, kernel, (1, 1), padding)`` (NHWC,
  HWIO; ``padding`` = ``((low, high), (low, high))`` with each at most
  ``k - 1``), with a custom VJP: ``dx`` is ``conv_s1`` of ``dy`` with
  ``adj(K)`` and padding ``(k - 1 - low, k - 1 - high)``; ``dK`` is
  :func:`_s1_weight_grad`."""
  return _native_conv(x, kernel, (1, 1), padding)


def _conv_s1_fwd(x, kernel, padding):
  return conv_s1(x, kernel, padding), (x, kernel)


def _conv_s1_bwd(padding, res, dy):
  x, kernel = res
  kh, kw = kernel.shape[:2]
  (t, b), (l, r) = padding
  dx = conv_s1(dy, _adjoint_kernel(kernel),
               ((kh - 1 - t, kh - 1 - b), (kw - 1 - l, kw - 1 - r)))
  return dx, _s1_weight_grad(x, dy, kernel.shape, padding)


conv_s1.defvjp(_conv_s1_fwd, _conv_s1_bwd)


def _s2_patches(x: jax.Array) -> jax.Array:
  """``[B, H, W, C] -> [B * H/2 * W/2, 16 * C]``, row ``(b, i, j)`` holding
  ``x_pad[b, 2i + t, 2j + s, c]`` at column ``(4t + s) * C + c`` (``x_pad``:
  ``x`` zero-padded by one on every side; ``H``, ``W`` even)."""
  b, h, w, c = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  oh, ow = h // 2, w // 2
  cols = jnp.concatenate([xp[:, t:t + 2 * oh:2, s:s + 2 * ow:2]
                          for t in range(4) for s in range(4)], axis=-1)
  return cols.reshape(b * oh * ow, 16 * c)


@jax.custom_vjp
def conv_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``lax.conv(x, kernel, (2, 2), 'SAME')`` for a 4x4 kernel and even
  ``H``, ``W`` (NHWC, HWIO), with the fast VJP of the module docstring."""
  return _native_conv(x, kernel, (2, 2), 'SAME')


def _conv_s2_fwd(x, kernel):
  return conv_s2(x, kernel), (x, kernel)


def _conv_s2_bwd(res, dy):
  x, kernel = res
  dx = conv_t2(dy, _adjoint_kernel(kernel))
  co = dy.shape[-1]
  dk = jnp.dot(_s2_patches(x).T, dy.reshape(-1, co))
  return dx, dk.reshape(kernel.shape)


conv_s2.defvjp(_conv_s2_fwd, _conv_s2_bwd)


@jax.custom_vjp
def conv_t2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``lax.conv_transpose(x, kernel, (2, 2), 'SAME')`` for a 4x4 kernel
  (NHWC, HWIO), with the fast VJP of the module docstring.

  The forward pass is one matmul and an overlap-add: ``P = x @ W'`` holds
  every tap's contribution ``W[3 - t, 3 - s]^T x[j]`` (``[B, H, W, 16,
  C_out]``) and tap ``t`` of input row ``j`` lands on output row
  ``2j + t - 1`` (:func:`_overlap_add`). XLA's own op (an ``lhs_dilation``
  convolution) took 6 ms at 7x7 -> 14x14 alone but 130-170 ms for
  16x16 -> 32x32 (64 channels) inside the SN-GAN train step.
  """
  b, h, w, ci = x.shape
  co = kernel.shape[-1]
  kf = kernel[::-1, ::-1].transpose(2, 0, 1, 3).reshape(ci, 16 * co)
  taps = jnp.dot(x.reshape(b * h * w, ci), kf)
  return _overlap_add(taps.reshape(b, h, w, 4, 4, co))


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


def _conv_t2_fwd(x, kernel):
  return conv_t2(x, kernel), (x, kernel)


def _conv_t2_bwd(res, dy):
  x, kernel = res
  dx = conv_s2(dy, _adjoint_kernel(kernel))
  ci, co = kernel.shape[2:]
  dw = jnp.dot(x.reshape(-1, ci).T, _s2_patches(dy))  # [ci, (t', s', co)]
  dw = dw.reshape(ci, 4, 4, co)[:, ::-1, ::-1].transpose(1, 2, 0, 3)
  return dx, dw


conv_t2.defvjp(_conv_t2_fwd, _conv_t2_bwd)


def resolve_impl(impl: str) -> str:
  """``'auto'`` is ``'fast'`` on the CPU backend and ``'native'`` elsewhere.

  Measured on the 2-core CPU (jax 0.10.2; ``experiments/bench``): the custom
  VJPs make a DCGAN-28 WGAN-GP train step about 30x faster than XLA's own
  gradients. On GPUs/TPUs the vendor convolution kernels are the better
  default; ``'fast'`` or ``'native'`` force either everywhere.
  """
  if impl not in ('auto', 'native', 'fast'):
    raise ValueError(f"config.model.conv_impl: {impl!r}; allowed: "
                     "['auto', 'native', 'fast']")
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
    return resolve_impl(self.impl) == 'fast'

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
      return conv_t2(x, kernel)
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
      return conv_s1(x, kernel, pads)
    if (strides == (2, 2) and k == (4, 4) and self.padding == 'SAME'
        and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0):
      return conv_s2(x, kernel)
    return _native_conv(x, kernel, strides, self.padding)
