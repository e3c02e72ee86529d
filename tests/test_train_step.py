"""The train step against an independent reference, and spectral-norm state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import mog
from gan_stability import models
from gan_stability.train import init_state, make_multi_step, make_train_step


def _setup(n_critic=2, **kw):
  c = mog.get_config('smoke')
  c.n_critic = n_critic
  c.optimizer.update(name='sgd', b1=0.0, g_lr=0.05, d_lr=0.1)
  for k, v in kw.items():
    node, *rest = k.split('__')
    if rest:
      c[node][rest[0]] = v
    else:
      c[k] = v
  g, d = models.build(c.model, (2,))
  state = init_state(c, g, d, jax.random.key(1), (2,))
  real = jax.random.normal(jax.random.key(2), (n_critic, c.batch_size, 2))
  return c, g, d, state, {'x': real}


def _flat(tree):
  return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


@pytest.mark.parametrize('penalty,weight,d_lr', [('none', 0.0, 0.1), ('r1', 0.5, 0.1),
                                                 ('gp', 10.0, 0.005)])
def test_step_matches_hand_written_sgd_reference(penalty, weight, d_lr):
  """n_critic SGD updates of D (each on its own real batch, with the
  documented key contract), then one SGD update of G against the *updated*
  D, with the losses written out from their formulas."""
  c, g, d, state, batch = _setup(n_critic=3, penalty=penalty,
                                 penalty_weight=weight)
  c.optimizer.d_lr = d_lr
  key = jax.random.key(7)
  new_state, metrics = jax.jit(make_train_step(c, g, d))(state, batch, key)

  keys = jax.random.split(key, c.n_critic + 1)
  gp, dp = state.g_params, state.d_params
  D = lambda p, x: d.apply({'params': p}, x)
  d_grad_norms = []
  for i in range(c.n_critic):
    k_z, k_pen = jax.random.split(keys[i])
    z = jax.random.normal(k_z, (c.batch_size, c.model.z_dim))
    fake = g.apply({'params': gp}, z)
    real = batch['x'][i]

    def d_obj(p):
      bce = (jnp.mean(-jnp.log(jax.nn.sigmoid(D(p, real)))) +
             jnp.mean(-jnp.log(1 - jax.nn.sigmoid(D(p, fake)))))
      if penalty == 'r1':
        gr = jax.vmap(jax.grad(lambda x: D(p, x[None])[0]))(real)
        bce += weight * jnp.mean(jnp.sum(gr ** 2, -1))
      elif penalty == 'gp':
        eps = jax.random.uniform(k_pen, (c.batch_size, 1))
        xh = eps * real + (1 - eps) * fake
        gr = jax.vmap(jax.grad(lambda x: D(p, x[None])[0]))(xh)
        bce += weight * jnp.mean((jnp.linalg.norm(gr, axis=-1) - 1) ** 2)
      return bce
    grads = jax.grad(d_obj)(dp)
    d_grad_norms.append(np.linalg.norm(_flat(grads)))
    dp = jax.tree.map(lambda p, q: p - c.optimizer.d_lr * q, dp, grads)

  z = jax.random.normal(keys[-1], (c.batch_size, c.model.z_dim))
  g_obj = lambda p: jnp.mean(-jnp.log(jax.nn.sigmoid(D(dp, g.apply({'params': p}, z)))))
  g_loss, g_grads = jax.value_and_grad(g_obj)(gp)
  gp_ref = jax.tree.map(lambda p, q: p - c.optimizer.g_lr * q, gp, g_grads)

  np.testing.assert_allclose(_flat(new_state.d_params), _flat(dp), rtol=2e-5, atol=2e-6)
  np.testing.assert_allclose(_flat(new_state.g_params), _flat(gp_ref), rtol=2e-5, atol=2e-6)
  np.testing.assert_allclose(metrics['g_loss'], g_loss, rtol=1e-5)
  np.testing.assert_allclose(metrics['d_grad_norm'], np.mean(d_grad_norms), rtol=1e-4)
  np.testing.assert_allclose(metrics['g_grad_norm'], np.linalg.norm(_flat(g_grads)), rtol=1e-4)
  assert int(new_state.step) == 1


def test_multi_step_equals_repeated_single_steps():
  c, g, d, state, _ = _setup(n_critic=2)
  batches = {'x': jax.random.normal(jax.random.key(3), (3, 2, c.batch_size, 2))}
  root = jax.random.key(11)
  step = jax.jit(make_train_step(c, g, d))
  s = state
  losses = []
  for i in range(3):
    s, m = step(s, {'x': batches['x'][i]}, jax.random.fold_in(root, i))
    losses.append(m['d_loss'])
  fused, fm = jax.jit(make_multi_step(make_train_step(c, g, d)))(state, batches, root)
  np.testing.assert_allclose(_flat(fused.g_params), _flat(s.g_params), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(fm['d_loss'], np.array(losses), rtol=1e-5)
  assert fm['d_loss'].shape == (3,)


def _power_iteration(w, u, n):
  for _ in range(n):
    v = u @ w.T
    v = v / np.linalg.norm(v)
    u = v @ w
    u = u / np.linalg.norm(u)
  return u, float((v @ w @ u.T)[0, 0])


@pytest.mark.parametrize('n_critic', [1, 3])
def test_spectral_norm_state_advances_once_per_d_update_only(n_critic):
  """With a vanishing learning rate the weights stay put, so after one train
  step the power-iteration vector must equal exactly ``n_critic`` numpy power
  iterations from its initial value: the G update must not advance it."""
  c, g, d, state, batch = _setup(n_critic=n_critic, model__spectral_norm=True)
  c.optimizer.update(g_lr=1e-30, d_lr=1e-30)
  new_state, _ = jax.jit(make_train_step(c, g, d))(state, batch, jax.random.key(0))
  stats0 = state.d_collections['spectral_stats']
  stats1 = new_state.d_collections['spectral_stats']
  w = np.asarray(state.d_params['dense_1']['kernel'], np.float64)
  u0 = np.asarray(stats0['SNWrap_1']['SpectralNorm_0']['dense_1/kernel/u'], np.float64)
  u_ref, sigma_ref = _power_iteration(w, u0, n_critic)
  u_new = np.asarray(stats1['SNWrap_1']['SpectralNorm_0']['dense_1/kernel/u'])
  np.testing.assert_allclose(u_new, u_ref, rtol=1e-4, atol=1e-5)
  u_more, _ = _power_iteration(w, u0, n_critic + 1)
  assert not np.allclose(u_new, u_more, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      stats1['SNWrap_1']['SpectralNorm_0']['dense_1/kernel/sigma'], sigma_ref, rtol=1e-4)
  # params are not in the stats collection and vice versa
  assert 'spectral_stats' not in new_state.d_params


def test_spectral_norm_sigma_converges_to_top_singular_value():
  c, g, d, state, batch = _setup(n_critic=40, model__spectral_norm=True)
  c.optimizer.update(g_lr=1e-30, d_lr=1e-30)
  new_state, _ = jax.jit(make_train_step(c, g, d))(state, batch, jax.random.key(0))
  for name in ('dense_0', 'dense_1', 'out'):
    idx = {'dense_0': 0, 'dense_1': 1, 'out': 2}[name]
    sigma = new_state.d_collections['spectral_stats'][f'SNWrap_{idx}'][
        'SpectralNorm_0'][f'{name}/kernel/sigma']
    top = np.linalg.svd(np.asarray(state.d_params[name]['kernel']), compute_uv=False)[0]
    np.testing.assert_allclose(sigma, top, rtol=1e-3)
  # The normalised layer has unit spectral norm: ||D's first layer|| check via
  # the effective map on unit vectors is bounded by 1 (Lipschitz), so the
  # whole SN discriminator with leaky ReLU is 1-Lipschitz.
  x = jax.random.normal(jax.random.key(5), (512, 2))
  y = x + 1e-2 * jax.random.normal(jax.random.key(6), (512, 2))
  vars_ = {'params': new_state.d_params, **new_state.d_collections}
  dx = np.abs(d.apply(vars_, x) - d.apply(vars_, y))
  assert np.all(dx <= np.linalg.norm(np.asarray(x - y), axis=1) * (1 + 1e-3))


def test_weight_clipping_and_ema():
  c, g, d, state, batch = _setup(n_critic=1, d_clip=0.01, ema_decay=0.9)
  state = init_state(c, g, d, jax.random.key(1), (2,))
  new_state, _ = jax.jit(make_train_step(c, g, d))(state, batch, jax.random.key(0))
  assert max(float(jnp.max(jnp.abs(p))) for p in jax.tree.leaves(new_state.d_params)) <= 0.01
  ema_ref = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, state.g_ema_params,
                         new_state.g_params)
  np.testing.assert_allclose(_flat(new_state.g_ema_params), _flat(ema_ref), rtol=1e-6)


def test_loop_unroll():
  """'auto' unrolls only conv models with XLA's own conv gradients on the
  CPU (a scanned native conv is ~3x slower there); explicit values win."""
  from experiments.configs import mnist  # pylint: disable=g-import-not-at-top
  from gan_stability.train.task import loop_unroll  # pylint: disable=g-import-not-at-top
  on_cpu = jax.default_backend() == 'cpu'
  assert loop_unroll(mog.get_config('vanilla')) is False
  c = mnist.get_config('wgan_gp')
  assert c.loop_impl == 'auto'
  for impl, want in [('fast', False), ('native', on_cpu), ('auto', False)]:
    c.model.conv_impl = impl
    assert loop_unroll(c) is want, impl
  c.loop_impl = 'unroll'
  assert loop_unroll(c) is True
  c.loop_impl = 'scan'
  c.model.conv_impl = 'native'
  assert loop_unroll(c) is False
  c.loop_impl = 'loop'
  with pytest.raises(ValueError, match=r"config.loop_impl: 'loop'; allowed"):
    loop_unroll(c)
