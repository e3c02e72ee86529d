"""Pieces shared by the convolution forms of :mod:`gan_stability.kernels`.

XLA's own convolution and transposed convolution, the adjoint kernel (the
kernel of a convolution's input gradient), XLA's stride-1 ``'SAME'``
padding, the custom-VJP forward rule that saves both array inputs, and
``a^T b`` over batch x pixels rows (the contraction of every matmul weight
gradient). Layouts throughout the package: NHWC activations, HWIO kernels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

DN = ('NHWC', 'HWIO', 'NHWC')


def native_conv(x: jax.Array, kernel: jax.Array, strides, padding
                ) -> jax.Array:
  """XLA's convolution ``lax.conv_general_dilated`` (NHWC, HWIO)."""
  return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                      dimension_numbers=DN)


def native_conv_transpose(x: jax.Array, kernel: jax.Array, strides, padding
                          ) -> jax.Array:
  """XLA's transposed convolution ``lax.conv_transpose`` (NHWC, HWIO)."""
  return jax.lax.conv_transpose(x, kernel, strides, padding,
                                dimension_numbers=DN)


def adjoint_kernel(kernel: jax.Array) -> jax.Array:
  """``adj(K)[t, s, o, i] = K[kh - 1 - t, kw - 1 - s, i, o]`` (HWIO): taps
  flipped, input and output channels swapped."""
  return jnp.swapaxes(kernel[::-1, ::-1], 2, 3)


def same_pads(k: int) -> tuple[int, int]:
  """XLA's stride-1 ``'SAME'`` padding ``(low, high)`` for kernel size ``k``."""
  return (k - 1) // 2, k - 1 - (k - 1) // 2


def pad1(x: jax.Array) -> jax.Array:
  """``x`` (``[B, H, W, C]``) zero-padded by one on every spatial side."""
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def fwd_saving_inputs(f):
  """The custom-VJP forward rule of ``f(a, b, *static)`` that keeps its two
  array arguments as the residuals (every custom VJP of the package but the
  linear Winograd kernel transforms', which keep nothing)."""
  return lambda a, b, *static: (f(a, b, *static), (a, b))


def rows_dot(a: jax.Array, b: jax.Array) -> jax.Array:
  """``a^T b`` for ``a`` ``[M, K1]`` and ``b`` ``[M, K2]`` (a weight gradient:
  a contraction over the ``M`` = batch x pixels rows); with a leading batch
  axis (``[k, M, K1]``, ``[k, M, K2]``), the same per ``k``.

  XLA:CPU runs this contraction several times faster when the output has
  fewer rows than columns, but rewrites either form into the other; so for
  ``K1 > K2`` the product ``b^T a`` is computed behind an
  ``optimization_barrier`` and then transposed (a small copy).
  """
  t = lambda z: jnp.swapaxes(z, -1, -2)
  if a.shape[-1] <= b.shape[-1]:
    return jnp.matmul(t(a), b)
  return t(jax.lax.optimization_barrier(jnp.matmul(t(b), a)))
