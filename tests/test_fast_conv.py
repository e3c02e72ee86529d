"""The phase / space-to-depth reformulations equal the standard layers:
values, parameter gradients and the double gradient used by penalties."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_stability.models import fast_conv as fc


def _close(a, b, tol=2e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


@pytest.mark.parametrize('hw', [(7, 7), (4, 6), (1, 1)])
def test_conv_transpose_matches_flax(hw):
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
def test_strided_conv_matches_flax_including_double_grad(hw):
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


@pytest.mark.parametrize('k,padding', [(1, 'SAME'), (3, 'SAME'), (4, 'SAME'),
                                       (5, 'SAME'), (3, 'VALID')])
def test_im2col_conv_matches_flax_including_double_grad(k, padding):
  x = jax.random.normal(jax.random.key(0), (2, 9, 6, 3))
  ref = nn.Conv(4, (k, k), padding=padding)
  params = ref.init(jax.random.key(1), x)
  fast = fc.Conv(4, (k, k), padding=padding, impl='fast')
  _close(fast.apply(params, x), ref.apply(params, x))

  def penalty(m):
    def f(p):
      g = jax.grad(lambda xx: jnp.sum(jnp.tanh(m.apply(p, xx))))(x)
      return jnp.mean(jnp.sum(g ** 2, axis=(1, 2, 3)))
    return f
  _close(jax.grad(penalty(fast))(params), jax.grad(penalty(ref))(params), 1e-4)


def test_fallbacks_are_the_standard_ops():
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))  # odd: no s2d
  for ref, fast in [(nn.Conv(4, (4, 4), (2, 2), padding='SAME'),
                     fc.Conv(4, (4, 4), (2, 2), impl='fast')),
                    (nn.Conv(4, (3, 3), (2, 2), padding='SAME'),
                     fc.Conv(4, (3, 3), (2, 2), impl='fast')),
                    (nn.ConvTranspose(4, (5, 5), (2, 2), padding='SAME'),
                     fc.ConvTranspose(4, (5, 5), impl='fast'))]:
    params = ref.init(jax.random.key(1), x)
    np.testing.assert_array_equal(fast.apply(params, x), ref.apply(params, x))


def test_resolve_impl():
  assert fc.resolve_impl('native') == 'native'
  # auto: the matmul forms on the CPU, the vendor kernels elsewhere.
  assert fc.resolve_impl('auto') == ('fast' if jax.default_backend() == 'cpu'
                                     else 'native')
  assert fc.resolve_impl('fast') == 'fast'
  with pytest.raises(ValueError, match='config.model.conv_impl'):
    fc.resolve_impl('cudnn')
