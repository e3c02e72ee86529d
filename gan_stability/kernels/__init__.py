"""Convolution kernels that make XLA:CPU fast, and its compiler options.

XLA's CPU backend runs forward convolutions well, but the backward passes
of convolutions can be very slow there: the weight gradient of a transposed
convolution, the double gradient of a strided convolution (which every
gradient penalty takes), and any weight gradient inside a loop body or a
call, where XLA does not rewrite it into the form its Eigen kernels take.
So :func:`conv` and :func:`conv_transpose` compute exactly
``lax.conv_general_dilated`` / ``lax.conv_transpose`` (NHWC, HWIO) but, with
``impl='fast'``, through custom VJPs whose pieces are forward convolutions
(already in canonical form) and matmuls; gradients of every order stay on
these paths. The forms, each in one module:

* :mod:`~gan_stability.kernels.stride1`: stride-1 convs (``conv_s1``),
  with matmul forward forms for few channels;
* :mod:`~gan_stability.kernels.winograd`: Winograd F(2x2, 3x3) for 3x3
  ``'SAME'`` convs with many channels;
* :mod:`~gan_stability.kernels.strided`: the 4x4 stride-2 conv and
  transposed conv (``conv_s2`` / ``conv_t2``), an adjoint pair;
* :mod:`~gan_stability.kernels.weight_grads`: kernel gradients as one
  canonical convolution or as matmuls;
* :mod:`~gan_stability.kernels.common`: the pieces they share.

Other strides and kernel sizes, and odd inputs to a strided conv, use XLA's
ops and gradients unchanged. :func:`unroll_loops` is the matching
scan-vs-unroll policy for loops around these convolutions, and
:mod:`~gan_stability.kernels.compile_options` the XLA:CPU compiler options.
How the forms work and what was measured: ``docs/kernels.md``.
"""

from __future__ import annotations

import jax

from gan_stability.kernels import common
from gan_stability.kernels import compile_options
from gan_stability.kernels import stride1
from gan_stability.kernels import strided
from gan_stability.kernels import winograd

IMPLS = ('auto', 'native', 'fast', 'fast_matmul')
LOOP_IMPLS = ('auto', 'scan', 'unroll')


def resolve_impl(impl: str) -> str:
  """The convolution implementation ``impl`` stands for: ``'auto'`` is
  ``'fast'`` on the CPU backend and ``'native'`` elsewhere.

  ``'native'`` is XLA's ops with XLA's gradients; ``'fast'`` the custom
  VJPs; ``'fast_matmul'`` is ``'fast'`` with the kernel gradients as
  matmuls instead of canonical convolutions (the latter are faster in every
  train step timed, ``docs/kernels.md``). On GPUs/TPUs the vendor
  convolution kernels are the better default; ``'fast'`` or ``'native'``
  force either everywhere. Raises ``ValueError`` naming
  ``config.model.conv_impl`` for an unknown value.
  """
  if impl not in IMPLS:
    raise ValueError(f"config.model.conv_impl: {impl!r}; allowed: "
                     f"{list(IMPLS)}")
  if impl == 'auto':
    return 'fast' if jax.default_backend() == 'cpu' else 'native'
  return impl


def _wgrad(resolved: str) -> str:
  """The custom VJPs' kernel-gradient form for a resolved ``impl``."""
  return 'matmul' if resolved == 'fast_matmul' else 'conv'


def conv(x: jax.Array, kernel: jax.Array, *, strides, padding, impl: str
         ) -> jax.Array:
  """``lax.conv_general_dilated(x, kernel, strides, padding)`` (NHWC, HWIO).

  With ``impl`` resolving to ``'fast'`` or ``'fast_matmul'``
  (:func:`resolve_impl`): stride-1 ``'SAME'`` / ``'VALID'`` convs run as
  :func:`~gan_stability.kernels.winograd.winograd_conv` where
  :func:`~gan_stability.kernels.winograd.applies` (``'fast'`` only), else as
  :func:`~gan_stability.kernels.stride1.conv_s1`; 4x4 stride-2 ``'SAME'``
  convs of even-sized inputs as
  :func:`~gan_stability.kernels.strided.conv_s2`; everything else, and
  ``'native'``, is XLA's op.

  Args:
    x: ``[B, H, W, C_in]``.
    kernel: ``[kh, kw, C_in, C_out]``.
    strides: ``(sh, sw)``.
    padding: ``'SAME'``, ``'VALID'`` or explicit ``((low, high), (low,
      high))`` (explicit padding always uses XLA's op).
    impl: one of :data:`IMPLS`.
  """
  resolved = resolve_impl(impl)
  strides, k = tuple(strides), tuple(kernel.shape[:2])
  if resolved == 'native':
    return common.native_conv(x, kernel, strides, padding)
  wgrad = _wgrad(resolved)
  if strides == (1, 1) and padding in ('SAME', 'VALID'):
    pads = (common.same_pads(k[0]), common.same_pads(k[1])
            ) if padding == 'SAME' else ((0, 0), (0, 0))
    if wgrad == 'conv' and winograd.applies(x.shape, kernel.shape, pads):
      return winograd.winograd_conv(x, kernel)
    return stride1.conv_s1(x, kernel, pads, wgrad)
  if (strides == (2, 2) and k == (4, 4) and padding == 'SAME'
      and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0):
    return strided.conv_s2(x, kernel, wgrad)
  return common.native_conv(x, kernel, strides, padding)


def conv_transpose(x: jax.Array, kernel: jax.Array, *, strides, padding,
                   impl: str) -> jax.Array:
  """``lax.conv_transpose(x, kernel, strides, padding)`` (NHWC, HWIO).

  With ``impl`` resolving to ``'fast'`` or ``'fast_matmul'``, a 4x4
  stride-2 ``'SAME'`` transposed conv runs as
  :func:`~gan_stability.kernels.strided.conv_t2`; everything else, and
  ``'native'``, is XLA's op. Arguments as in :func:`conv` (``x`` ``[B, H,
  W, C_in]``, ``kernel`` ``[kh, kw, C_in, C_out]``).
  """
  resolved = resolve_impl(impl)
  if (resolved != 'native' and tuple(kernel.shape[:2]) == (4, 4)
      and tuple(strides) == (2, 2) and padding == 'SAME'):
    return strided.conv_t2(x, kernel, _wgrad(resolved))
  return common.native_conv_transpose(x, kernel, tuple(strides), padding)


def unroll_loops(loop_impl: str, *, conv_model: bool, conv_impl: str) -> bool:
  """Whether loops around a train step (or its inner updates) should be
  unrolled rather than compiled as one ``lax.scan``.

  ``'scan'`` compiles a loop as one while loop (compile time independent of
  the trip count); ``'unroll'`` emits straight-line code; ``'auto'``
  unrolls only models with convolutions (``conv_model``) whose ``conv_impl``
  resolves to ``'native'`` (:func:`resolve_impl`) on the CPU backend, and
  scans otherwise. Reason: XLA:CPU runs its own gradient convolutions far
  slower inside a loop body (jax-ml/jax#12868: its ``ConvCanonicalization``
  pass visits only the entry computation, see
  :func:`~gan_stability.kernels.weight_grads.conv_weight_grad`); with the
  custom VJPs scanned loops are as fast and compile faster.

  Raises:
    ValueError: ``loop_impl`` is not one of :data:`LOOP_IMPLS` (the message
      names ``config.loop_impl``).
  """
  if loop_impl not in LOOP_IMPLS:
    raise ValueError(f'config.loop_impl: {loop_impl!r}; allowed: '
                     f'{list(LOOP_IMPLS)}')
  if loop_impl == 'auto':
    if not conv_model or jax.default_backend() != 'cpu':
      return False
    return resolve_impl(conv_impl) == 'native'
  return loop_impl == 'unroll'


__all__ = ['IMPLS', 'LOOP_IMPLS', 'compile_options', 'conv', 'conv_transpose',
           'resolve_impl', 'unroll_loops']
