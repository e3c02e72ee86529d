"""The custom-VJP stride-2 layers equal the standard ones: values, parameter
and input gradients, and the second-order gradients that penalties take."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gan_stability.models import fast_conv as fc

_DN = ('NHWC', 'HWIO', 'NHWC')


def _close(a, b, tol=2e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def _lax_conv_s2(x, k):
  return jax.lax.conv_general_dilated(x, k, (2, 2), 'SAME',
                                      dimension_numbers=_DN)


def _lax_conv_t2(x, k):
  return jax.lax.conv_transpose(x, k, (2, 2), 'SAME', dimension_numbers=_DN)


def _all_grads(op, x, k, r):
  """y, (dx, dk), and the gradients of a penalty on dx and dk."""
  return jax.jit(lambda x, k, r: _all_grads_impl(op, x, k, r))(x, k, r)


def _all_grads_impl(op, x, k, r):
  loss = lambda x, k: jnp.sum(jnp.sin(op(x, k)) * r)

  def second(x, k):
    dx, dk = jax.grad(loss, argnums=(0, 1))(x, k)
    return jnp.sum(dx ** 2) + jnp.sum(jnp.cos(dk))
  return (op(x, k), jax.grad(loss, argnums=(0, 1))(x, k),
          jax.grad(second, argnums=(0, 1))(x, k))


@pytest.mark.parametrize('shape', [(2, 5, 6, 3), (1, 1, 1, 2), (3, 4, 3, 1)])
def test_conv_t2_all_orders_match_lax(shape):
  x = jax.random.normal(jax.random.key(0), shape)
  k = jax.random.normal(jax.random.key(1), (4, 4, shape[-1], 4))
  r = jax.random.normal(jax.random.key(2), (shape[0], 2 * shape[1],
                                            2 * shape[2], 4))
  _close(_all_grads(fc.conv_t2, x, k, r), _all_grads(_lax_conv_t2, x, k, r),
         1e-4)
  if shape == (1, 1, 1, 2):  # numerical check (slow): the smallest case
    check_grads(fc.conv_t2, (x, k), order=2, modes=['rev'], eps=1e-2,
                atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize('shape', [(2, 6, 8, 3), (1, 2, 2, 2), (3, 4, 10, 1)])
def test_conv_s2_all_orders_match_lax(shape):
  x = jax.random.normal(jax.random.key(0), shape)
  k = jax.random.normal(jax.random.key(1), (4, 4, shape[-1], 5))
  r = jax.random.normal(jax.random.key(2), (shape[0], shape[1] // 2,
                                            shape[2] // 2, 5))
  _close(_all_grads(fc.conv_s2, x, k, r), _all_grads(_lax_conv_s2, x, k, r),
         1e-4)
  if shape == (1, 2, 2, 2):  # numerical check (slow): the smallest case
    check_grads(fc.conv_s2, (x, k), order=2, modes=['rev'], eps=1e-2,
                atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize('k,padding', [(1, 'SAME'), (3, 'SAME'), (4, 'SAME'),
                                       (5, 'SAME'), (3, 'VALID'), (2, 'VALID')])
def test_conv_s1_all_orders_match_lax(k, padding):
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 3))
  kernel = jax.random.normal(jax.random.key(1), (k, k, 3, 4))
  pads = {'SAME': ((k - 1) // 2, k - 1 - (k - 1) // 2), 'VALID': (0, 0)}[padding]
  op = lambda x, kk: fc.conv_s1(x, kk, (pads, pads))
  ref = lambda x, kk: jax.lax.conv_general_dilated(x, kk, (1, 1), padding,
                                                   dimension_numbers=_DN)
  r = jax.random.normal(jax.random.key(2), ref(x, kernel).shape)
  _close(_all_grads(op, x, kernel, r), _all_grads(ref, x, kernel, r), 1e-4)
  if k == 3:  # numerical check (slow): once per padding
    check_grads(op, (x, kernel), order=2, modes=['rev'], eps=1e-2,
                atol=2e-2, rtol=2e-2)


def test_conv_s1_asymmetric_padding():
  """Even kernels pad (low, high) unequally: the adjoint swaps them."""
  x = jax.random.normal(jax.random.key(0), (1, 5, 6, 2))
  kernel = jax.random.normal(jax.random.key(1), (2, 3, 2, 3))
  pads = ((0, 1), (2, 0))
  op = lambda x, kk: fc.conv_s1(x, kk, pads)
  ref = lambda x, kk: jax.lax.conv_general_dilated(x, kk, (1, 1), pads,
                                                   dimension_numbers=_DN)
  r = jax.random.normal(jax.random.key(2), ref(x, kernel).shape)
  _close(_all_grads(op, x, kernel, r), _all_grads(ref, x, kernel, r), 1e-4)


def test_adjoint_kernel_is_the_transpose():
  """<conv_s2(x, K), y> = <x, conv_t2(y, adj(K))>: the identity the VJPs use."""
  x = jax.random.normal(jax.random.key(0), (2, 6, 4, 3))
  y = jax.random.normal(jax.random.key(1), (2, 3, 2, 5))
  k = jax.random.normal(jax.random.key(2), (4, 4, 3, 5))
  lhs = jnp.vdot(_lax_conv_s2(x, k), y)
  rhs = jnp.vdot(x, _lax_conv_t2(y, fc._adjoint_kernel(k)))  # pylint: disable=protected-access
  np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


@pytest.mark.parametrize('hw', [(7, 7), (4, 6), (1, 1)])
def test_conv_transpose_module_matches_flax(hw):
  x = jax.random.normal(jax.random.key(0), (2,) + hw + (3,))
  ref = nn.ConvTranspose(5, (4, 4), (2, 2), padding='SAME')
  params = ref.init(jax.random.key(1), x)
  fast = fc.ConvTranspose(5, impl='fast')
  # Same parameter tree: the reference's parameters load unchanged.
  assert jax.tree.map(jnp.shape, fast.init(jax.random.key(1), x)) == \
      jax.tree.map(jnp.shape, params)
  _close(fast.apply(params, x), ref.apply(params, x))
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  _close(jax.grad(loss(fast), argnums=(0, 1))(params, x),
         jax.grad(loss(ref), argnums=(0, 1))(params, x))


@pytest.mark.parametrize('hw', [(8, 8), (14, 6), (2, 2)])
def test_strided_conv_module_matches_flax_including_double_grad(hw):
  x = jax.random.normal(jax.random.key(0), (2,) + hw + (3,))
  ref = nn.Conv(4, (4, 4), (2, 2), padding='SAME')
  params = ref.init(jax.random.key(1), x)
  fast = fc.Conv(4, (4, 4), (2, 2), impl='fast')
  _close(fast.apply(params, x), ref.apply(params, x))

  def penalty(m):
    def f(p):
      g = jax.grad(lambda xx: jnp.sum(jnp.tanh(m.apply(p, xx))))(x)
      return jnp.mean(jnp.sum(g ** 2, axis=(1, 2, 3)))
    return f
  _close(penalty(fast)(params), penalty(ref)(params))
  _close(jax.grad(penalty(fast))(params), jax.grad(penalty(ref))(params), 1e-4)


def test_other_layers_are_the_standard_ops():
  """Other kernels / strides and odd inputs use XLA's op as is; the stride-1
  forward pass is XLA's op too."""
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))  # odd: no conv_s2
  for ref, fast in [(nn.Conv(4, (4, 4), (2, 2), padding='SAME'),
                     fc.Conv(4, (4, 4), (2, 2), impl='fast')),
                    (nn.Conv(4, (3, 3), (2, 2), padding='SAME'),
                     fc.Conv(4, (3, 3), (2, 2), impl='fast')),
                    (nn.Conv(4, (3, 3), padding='SAME'),
                     fc.Conv(4, (3, 3), impl='fast')),
                    (nn.Conv(4, (3, 3), padding='VALID'),
                     fc.Conv(4, (3, 3), padding='VALID', impl='fast')),
                    (nn.ConvTranspose(4, (5, 5), (2, 2), padding='SAME'),
                     fc.ConvTranspose(4, (5, 5), impl='fast'))]:
    params = ref.init(jax.random.key(1), x)
    np.testing.assert_array_equal(fast.apply(params, x), ref.apply(params, x))


def test_fast_modules_use_the_custom_vjp():
  """The fast path is taken (the jaxpr calls the custom-VJP function)."""
  x = jnp.ones((1, 8, 8, 2))
  for m in (fc.Conv(3, (4, 4), (2, 2), impl='fast'),
            fc.Conv(3, (3, 3), impl='fast'),
            fc.ConvTranspose(3, impl='fast')):
    p = m.init(jax.random.key(0), x)
    assert 'custom_vjp_call' in str(jax.make_jaxpr(m.apply)(p, x))
    native = m.clone(impl='native')
    assert 'custom_vjp_call' not in str(jax.make_jaxpr(native.apply)(p, x))


def test_resolve_impl():
  assert fc.resolve_impl('native') == 'native'
  # auto: the custom VJPs on the CPU, the vendor kernels elsewhere.
  assert fc.resolve_impl('auto') == ('fast' if jax.default_backend() == 'cpu'
                                     else 'native')
  assert fc.resolve_impl('fast') == 'fast'
  with pytest.raises(ValueError, match='config.model.conv_impl'):
    fc.resolve_impl('cudnn')
