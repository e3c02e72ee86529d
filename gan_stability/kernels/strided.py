"""The 4x4 stride-2 ``'SAME'`` convolution and transposed convolution, an
adjoint pair with custom VJPs: :func:`conv_s2` and :func:`conv_t2`.

Notation (one spatial axis; the other is the same): ``conv_s2(x, K)`` is
``y[i] = sum_t K[t]^T x[2i + t - 1]`` (XLA's ``'SAME'`` padding (1, 1),
input size even), ``conv_t2(x, W)`` is ``lax.conv_transpose(x, W, (2, 2),
'SAME')``: input ``j`` adds ``W[t]^T x[j]`` to output ``2j + 2 - t``.

* The two are adjoint: the input gradient of ``conv_s2`` is
  ``conv_t2(dy, adj(K))`` and that of ``conv_t2`` is ``conv_s2(dy, adj(W))``
  with ``adj(K)[t, s] = K[3 - t, 3 - s]^T`` (flip the taps, swap in / out).
  Each VJP calls the other custom-VJP function, so the gradients of any
  order stay on these paths (and the pair lives in this one module).
* Forward passes: the strided conv's is XLA's op; the transposed conv's is,
  by size (:func:`_t2_form`), stride-1 2x2 convs producing the four output
  phases (sub-pixel form: one conv per row phase, :func:`_t2_rows`, or one
  per phase, :func:`_t2_exact`) or one matmul plus an overlap-add
  (:func:`_t2_taps`). XLA's own ``lhs_dilation`` op is much slower inside a
  train step than alone.
* Weight gradients (``wgrad='conv'``, the default): ``dK`` of ``conv_s2``
  is one canonical convolution of ``x`` (batch and channels swapped) with
  ``dy`` dilated by 2 (:func:`s2_conv_weight_grad`); ``dW`` of ``conv_t2``
  is the same with the roles of ``x`` and ``dy`` swapped and the taps
  flipped (:func:`t2_conv_weight_grad`). Each has its own custom VJP (the
  gradient is bilinear in ``x`` and ``dy``; its VJP is a forward conv and an
  input gradient), so the penalties' second order stays on these paths.
* ``wgrad='matmul'``: ``dK[t, s] = P(x)[t, s]^T dy`` and ``dW[t, s] = x^T
  P(dy)[3 - t, 3 - s]`` with the 16 strided patches ``P``
  (:func:`gan_stability.kernels.weight_grads.s2_weight_grad`,
  :func:`gan_stability.kernels.weight_grads.t2_weight_grad`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gan_stability.kernels import common, weight_grads


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_s2(x: jax.Array, kernel: jax.Array, wgrad: str = 'conv'
            ) -> jax.Array:
  """``lax.conv(x, kernel, (2, 2), 'SAME')`` for a 4x4 kernel and even
  ``H``, ``W`` (NHWC, HWIO), with the VJP of the module docstring (``dK``:
  :func:`s2_conv_weight_grad` for ``wgrad='conv'``,
  :func:`gan_stability.kernels.weight_grads.s2_weight_grad` for
  ``'matmul'``)."""
  return common.native_conv(x, kernel, (2, 2), 'SAME')


def _conv_s2_bwd(wgrad, res, dy):
  x, kernel = res
  dx = conv_t2(dy, common.adjoint_kernel(kernel), wgrad)
  if wgrad == 'conv':
    return dx, s2_conv_weight_grad(x, dy)
  return dx, weight_grads.s2_weight_grad(x, dy)


conv_s2.defvjp(common.fwd_saving_inputs(conv_s2), _conv_s2_bwd)


@jax.custom_vjp
def s2_conv_weight_grad(x: jax.Array, dy: jax.Array) -> jax.Array:
  """Kernel gradient of ``conv_s2(x, K)`` by
  :func:`gan_stability.kernels.weight_grads.conv_weight_grad` (custom VJP,
  the gradient being bilinear: ``conv_s2(x, G)`` for ``dy``,
  ``conv_t2(dy, adj(G))`` for ``x``)."""
  return weight_grads.conv_weight_grad(x, dy, (2, 2), ((1, 1), (1, 1)))


def _s2_cwg_bwd(res, g):
  x, dy = res
  return conv_t2(dy, common.adjoint_kernel(g), 'conv'), conv_s2(x, g, 'conv')


s2_conv_weight_grad.defvjp(common.fwd_saving_inputs(s2_conv_weight_grad),
                           _s2_cwg_bwd)


T2_FORMS = ('taps', 'rows', 'exact')


def _t2_form(h: int, w: int, co: int) -> str:
  """Which forward form :func:`conv_t2` uses for an ``h x w`` input and
  ``co`` output channels: ``'taps'`` (:func:`_t2_taps`), ``'rows'``
  (:func:`_t2_rows`) or ``'exact'`` (:func:`_t2_exact`).

  ``'rows'`` computes ``(w + 1) / w`` times the outputs it keeps and
  ``'exact'`` none in excess, at the price of two or four convolutions with
  ``2 co`` or ``co`` output channels; the taps win for few output channels
  and tiny inputs. The thresholds are set from the timings in
  ``docs/kernels.md``.
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
  (NHWC, HWIO), with the VJP of the module docstring (``dW``: for
  ``wgrad='conv'`` :func:`t2_conv_weight_grad`, for ``'matmul'``
  :func:`gan_stability.kernels.weight_grads.t2_weight_grad`). The forward
  pass is one of the :data:`T2_FORMS` by size (:func:`_t2_form`) rather
  than XLA's ``lhs_dilation`` convolution, which is slow inside a train
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
    y = common.native_conv(x, k, (1, 1), ((1 - a, a), (1, 1)))
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
  rows = [jnp.stack([common.native_conv(x, k6[:, a, :, c], (1, 1),
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
  dx = conv_s2(dy, common.adjoint_kernel(kernel), wgrad)
  if wgrad == 'conv':
    return dx, t2_conv_weight_grad(x, dy)
  return dx, weight_grads.t2_weight_grad(x, dy)


conv_t2.defvjp(common.fwd_saving_inputs(conv_t2), _conv_t2_bwd)
