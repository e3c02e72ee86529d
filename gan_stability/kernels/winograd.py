"""Winograd F(2x2, 3x3) for stride-1 3x3 ``'SAME'`` convolutions with many
channels: :func:`winograd_conv`, and the rule :func:`applies`.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR
2016: per 4x4 input tile ``d`` and 3x3 kernel ``g``, the 2x2 output tile is
``A^T [(G g G^T) * (B^T d B)] A``. With the 16 transform-domain positions
as a batch axis that is 16 matmuls ``[B H W / 4, ci] x [ci, co]`` on the
transformed tiles: 2.25x fewer multiplications than the direct conv, the
same function up to float rounding. The transforms read and write ``16 /
4`` times the input and output, so Winograd pays off with many channels.

The input gradient is the same algorithm with the adjoint kernel (read from
the transformed kernel in place), the kernel gradient 16 matmuls
contracting the tiles, and the kernel transform and its transpose are
linear maps; each is a custom VJP, so every order stays Winograd.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gan_stability.kernels import common

# One spatial axis: B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3),
# G g = (g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2),
# A^T m = (m0 + m1 + m2, m1 - m2 - m3).
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


def applies(x_shape, kernel_shape, padding) -> bool:
  """Whether a stride-1 conv of an ``x_shape`` input with a
  ``kernel_shape`` kernel and explicit ``padding`` runs as
  :func:`winograd_conv`: 3x3 kernel, ``'SAME'`` padding, even sizes up to
  32x32 (the range measured) and at least 128 channels each way (with fewer
  the transforms cost more than the matmuls save; ``docs/kernels.md``)."""
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
  xp = common.pad1(x)
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
  every tap to the full output, which is much slower)."""
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


_wino.defvjp(common.fwd_saving_inputs(_wino), _wino_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _wino_kernel_grad(x: jax.Array, dy: jax.Array, adjoint: bool
                      ) -> jax.Array:
  """``d<dy, _wino(x, u, adjoint)> / du`` (``[16, ci, co]``): per position
  ``k``, ``(B^T x B)_k^T (A dy A^T)_k`` summed over tiles (``adjoint``: the
  roles of the channels swapped, positions permuted by ``pi``). Custom VJP
  (bilinear in ``x`` and ``dy``): ``_wino(x, g, adjoint)`` for ``dy``,
  ``_wino(dy, g, not adjoint)`` for ``x``."""
  if not adjoint:
    return common.rows_dot(_winograd_input(x), _winograd_output_adjoint(dy))
  return common.rows_dot(_winograd_output_adjoint(dy, _WINO_PI),
                         _winograd_input(x, _WINO_PI))


def _wkg_bwd(adjoint, res, g):
  x, dy = res
  return _wino(dy, g, not adjoint), _wino(x, g, adjoint)


_wino_kernel_grad.defvjp(common.fwd_saving_inputs(_wino_kernel_grad),
                         _wkg_bwd)


def winograd_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 3x3 ``'SAME'`` conv of ``x`` (even ``H``, ``W``) by Winograd
  F(2x2, 3x3): 16 matmuls ``[B H W / 4, ci] x [ci, co]``, 2.25x fewer
  multiplications than the direct conv, and as many for each gradient."""
  return _wino(x, _winograd_kernel(kernel), False)
