"""Exact, faster reformulations of convolutions (same parameters, same
function as ``flax.linen.ConvTranspose`` / ``flax.linen.Conv``).

XLA's CPU backend is slow at the weight gradient of a transposed convolution
(``lhs_dilation``), at the second-order gradient of a strided convolution
(needed by gradient penalties), and at every convolution inside a while-loop
body (``lax.scan``; jax-ml/jax#12868). A matrix multiplication has none of
these problems, so on the CPU every convolution the GAN models use is
rewritten as matmuls with the same parameters:

* stride-1 ``k x k`` convolution (``'SAME'`` or ``'VALID'``): *im2col* - the
  ``k*k`` shifted views of the padded input are concatenated along channels
  and multiplied by the kernel reshaped to ``[k*k*C_in, C_out]``. Its
  gradients (and the gradient penalty's double gradient) are slices, pads and
  matmuls again.
* stride-2 transposed conv, 4x4 kernel, ``'SAME'`` (sub-pixel / phase
  decomposition, cf. Shi et al. 2016): output pixel ``2i + a`` only sees
  kernel taps ``t = a (mod 2)``; with ``jax.lax.conv_transpose``'s SAME
  padding (2, 2) this gives ``y[2i] = K0 x[i-1] + K2 x[i]`` and
  ``y[2i+1] = K1 x[i] + K3 x[i+1]``, i.e. a stride-1 3x3 conv with 4 phase
  outputs, then depth-to-space.
* stride-2 conv, 4x4 kernel, ``'SAME'``, even input size (space-to-depth):
  XLA's SAME padding is (1, 1) and ``y[i] = sum_t K_t x[2i + t - 1]``, a
  stride-1 3x3 conv over the 2x2 space-to-depth input.

The 3x3 kernels are assembled from the 4x4 one by a fixed 0/1 linear map, so
gradients flow to the original kernel. Other shapes (other strides, odd
sizes for space-to-depth) use the standard XLA op.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_DN = ('NHWC', 'HWIO', 'NHWC')

# Transposed conv: phase a uses taps (window position p, kernel tap t).
_T_TAPS = {0: ((0, 0), (1, 2)), 1: ((1, 1), (2, 3))}
_T_SEL = np.zeros((2, 3, 4), np.float32)  # [phase, window pos, tap]
for _a, _pairs in _T_TAPS.items():
  for _p, _t in _pairs:
    _T_SEL[_a, _p, _t] = 1.0

# Strided conv: tap t reads x[2i + t - 1] = x2[i + q, phase r].
_S_SEL = np.zeros((3, 2, 4), np.float32)  # [window pos q+1, phase r, tap]
for _t in range(4):
  _q, _r = divmod(_t - 1, 2)
  _S_SEL[_q + 1, _r, _t] = 1.0


def _same_pads(k: int) -> tuple[int, int]:
  """XLA's stride-1 ``'SAME'`` padding for a kernel of size ``k``."""
  return (k - 1) // 2, k - 1 - (k - 1) // 2


def conv_matmul(x: jax.Array, kernel: jax.Array,
                padding: str = 'SAME') -> jax.Array:
  """``lax.conv_general_dilated(x, kernel, (1, 1), padding)`` (NHWC, HWIO)
  as im2col + one matrix multiplication; ``padding`` is 'SAME' or 'VALID'."""
  kh, kw, ci, co = kernel.shape
  if padding == 'SAME':
    x = jnp.pad(x, ((0, 0), _same_pads(kh), _same_pads(kw), (0, 0)))
  elif padding != 'VALID':
    raise ValueError(f"conv_matmul: padding {padding!r}; allowed: ['SAME', 'VALID']")
  b, hp, wp, _ = x.shape
  oh, ow = hp - kh + 1, wp - kw + 1
  if kh == kw == 1:
    cols = x
  else:
    cols = jnp.concatenate([x[:, p:p + oh, q:q + ow, :]
                            for p in range(kh) for q in range(kw)], axis=-1)
  y = jnp.dot(cols.reshape(b * oh * ow, kh * kw * ci),
              kernel.reshape(kh * kw * ci, co))
  return y.reshape(b, oh, ow, co)


def phase_conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``lax.conv_transpose(x, kernel, (2, 2), 'SAME')`` for a 4x4 kernel."""
  b, h, w, _ = x.shape
  out = kernel.shape[-1]
  sel = jnp.asarray(_T_SEL, kernel.dtype)
  w3 = jnp.einsum('apt,bqs,tsio->pqiabo', sel, sel, kernel)
  w3 = w3.reshape(3, 3, kernel.shape[2], 4 * out)
  y = conv_matmul(x, w3, 'SAME')
  y = y.reshape(b, h, w, 2, 2, out).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, 2 * h, 2 * w, out)


def space_to_depth_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``lax.conv(x, kernel, (2, 2), 'SAME')`` for a 4x4 kernel, even H and W."""
  b, h, w, c = x.shape
  x2 = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  x2 = x2.reshape(b, h // 2, w // 2, 4 * c)
  sel = jnp.asarray(_S_SEL, kernel.dtype)
  w3 = jnp.einsum('qrt,psu,tuio->qpsrio', sel, sel, kernel)
  # channel order of x2 is (row phase, col phase, c)
  w3 = w3.transpose(0, 1, 3, 2, 4, 5).reshape(3, 3, 4 * c, kernel.shape[-1])
  return conv_matmul(x2, w3, 'SAME')


def resolve_impl(impl: str) -> str:
  """``'auto'`` is ``'fast'`` on the CPU backend and ``'native'`` elsewhere.

  Measured on the 2-core CPU (jax 0.10.2; see ``experiments/bench``): the
  matmul forms make a DCGAN-28 WGAN-GP train step several times faster than
  XLA's convolutions, inside ``lax.scan`` as well. On GPUs/TPUs the vendor
  convolution kernels are the better default; ``'fast'`` or ``'native'``
  force either everywhere.
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
      return phase_conv_transpose(x, kernel)
    return jax.lax.conv_transpose(x, kernel, tuple(self.strides), self.padding,
                                  dimension_numbers=_DN)


class Conv(_ConvBase):
  """Drop-in for ``nn.Conv`` (same ``kernel``/``bias`` parameters)."""

  def _apply(self, x, kernel):
    if self._fast():
      strides = tuple(self.strides)
      if strides == (1, 1) and self.padding in ('SAME', 'VALID'):
        return conv_matmul(x, kernel, self.padding)
      if (strides == (2, 2) and tuple(self.kernel_size) == (4, 4)
          and self.padding == 'SAME' and x.shape[1] % 2 == 0
          and x.shape[2] % 2 == 0):
        return space_to_depth_conv(x, kernel)
    return jax.lax.conv_general_dilated(
        x, kernel, tuple(self.strides), self.padding, dimension_numbers=_DN)
