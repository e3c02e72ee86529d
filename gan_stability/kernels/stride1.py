"""Stride-1 convolutions with a custom VJP: :func:`conv_s1`.

The forward pass is XLA's convolution, or for few channels a matmul form
(:func:`_s1_form`): the taps (:func:`_s1_taps`, one matmul with ``kh kw
C_out`` columns and a shifted sum) for few outputs, im2col
(:func:`_s1_im2col`) for few inputs; XLA:CPU's convolution is slow with
few output or input channels. The input gradient is :func:`conv_s1` of
``dy`` with the adjoint kernel; the kernel gradient is
:func:`s1_conv_weight_grad` (one canonical convolution, with a custom VJP
of its own) or, for few channels and with ``wgrad='matmul'``,
:func:`gan_stability.kernels.weight_grads.valid_weight_grad`. Every
gradient is again one of these functions, so gradients of any order stay
on these paths.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gan_stability.kernels import common, weight_grads

S1_FORMS = ('conv', 'taps', 'im2col')


def _s1_form(ci: int, co: int) -> str:
  """Which forward form :func:`conv_s1` uses for ``ci`` input and ``co``
  output channels: XLA's convolution (``'conv'``), :func:`_s1_taps` or
  :func:`_s1_im2col`.

  XLA:CPU's convolution is slow with few output or input channels; the
  thresholds are set from the timings in ``docs/kernels.md``.
  """
  if co <= 8:
    return 'taps'
  if ci <= 4:
    return 'im2col'
  return 'conv'


def _s1_wgrad_by_matmul(ci: int, co: int) -> bool:
  """Whether :func:`conv_s1`'s kernel gradient (``wgrad='conv'``) is
  :func:`gan_stability.kernels.weight_grads.valid_weight_grad` (matmuls)
  rather than :func:`s1_conv_weight_grad` (a convolution whose batch is
  ``ci``, whose features are ``co``: slow when either is small). The wider
  layers of the models are as fast or faster as convolutions
  (``docs/kernels.md``)."""
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


S1_FORWARD = {'conv': lambda x, k, padding: common.native_conv(x, k, (1, 1),
                                                               padding),
              'taps': _s1_taps, 'im2col': _s1_im2col}


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_s1(x: jax.Array, kernel: jax.Array, padding, wgrad: str = 'conv'
            ) -> jax.Array:
  """Stride-1 ``lax.conv_general_dilated(x, kernel, (1, 1), padding)`` (NHWC,
  HWIO; ``padding`` = ``((low, high), (low, high))`` with each at most
  ``k - 1``), with a custom VJP: ``dx`` is ``conv_s1`` of ``dy`` with
  ``adj(K)`` and padding ``(k - 1 - low, k - 1 - high)``; ``dK`` is
  :func:`s1_conv_weight_grad` (``wgrad='conv'``; ``valid_weight_grad`` for
  few channels, :func:`_s1_wgrad_by_matmul`) or ``valid_weight_grad`` of
  ``x`` padded (``'matmul'``). The forward pass is XLA's convolution, or a
  matmul form for few channels (:func:`_s1_form`)."""
  form = _s1_form(x.shape[-1], kernel.shape[-1])
  return S1_FORWARD[form](x, kernel, padding)


def _s1_dx(dy, kernel, padding, wgrad):
  kh, kw = kernel.shape[:2]
  (t, b), (l, r) = padding
  return conv_s1(dy, common.adjoint_kernel(kernel),
                 ((kh - 1 - t, kh - 1 - b), (kw - 1 - l, kw - 1 - r)), wgrad)


def _conv_s1_bwd(padding, wgrad, res, dy):
  x, kernel = res
  dx = _s1_dx(dy, kernel, padding, wgrad)
  if wgrad == 'conv' and not _s1_wgrad_by_matmul(*kernel.shape[2:]):
    return dx, s1_conv_weight_grad(x, dy, padding)
  kh, kw = kernel.shape[:2]
  xp = jnp.pad(x, ((0, 0),) + tuple(padding) + ((0, 0),))
  return dx, weight_grads.valid_weight_grad(xp, dy, kh, kw)


conv_s1.defvjp(common.fwd_saving_inputs(conv_s1), _conv_s1_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def s1_conv_weight_grad(x: jax.Array, dy: jax.Array, padding) -> jax.Array:
  """Kernel gradient of ``conv_s1(x, K, padding)`` by
  :func:`gan_stability.kernels.weight_grads.conv_weight_grad`.

  Custom VJP (the gradient is bilinear in ``x`` and ``dy``: ``<G, dK(x,
  dy)> = <dy, conv_s1(x, G)>``): the cotangent of ``dy`` is ``conv_s1(x, G)``
  and that of ``x`` is ``conv_s1``'s input gradient with kernel ``G``, so
  the penalties' second order stays on the fast paths."""
  return weight_grads.conv_weight_grad(x, dy, (1, 1), padding)


def _s1_cwg_bwd(padding, res, g):
  x, dy = res
  return _s1_dx(dy, g, padding, 'conv'), conv_s1(x, g, padding, 'conv')


s1_conv_weight_grad.defvjp(common.fwd_saving_inputs(s1_conv_weight_grad),
                           _s1_cwg_bwd)
