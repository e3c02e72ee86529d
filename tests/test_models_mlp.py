"""MLP models of the 2-D mixtures: maxout units and generator batch norm (the
VEEGAN / PacGAN architecture), checked against numpy."""

import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import pytest

from gan_stability import config as config_lib
from gan_stability import models
from gan_stability.models import mlp
from experiments.configs import mog


def test_maxout_takes_the_max_of_consecutive_pieces():
  h = np.arange(24, dtype=np.float32).reshape(2, 12) * np.array(
      [1, -1, 2, 0, 3, -5, 1, 1, 0, 7, -1, 2], np.float32)
  got = np.asarray(mlp.maxout(jnp.asarray(h), 3))
  want = h.reshape(2, 4, 3).max(-1)
  np.testing.assert_array_equal(got, want)
  with pytest.raises(ValueError, match='not a multiple of 5 pieces'):
    mlp.maxout(jnp.zeros((1, 12)), 5)


def test_maxout_discriminator_matches_numpy():
  d = mlp.MLPDiscriminator(hidden=3, num_layers=2, maxout=4, packing=2)
  x = jax.random.normal(jax.random.key(0), (6, 2))
  params = d.init(jax.random.key(1), x)['params']
  assert params['dense_0']['kernel'].shape == (4, 12)  # packed input, 3 x 4 pieces
  assert params['dense_1']['kernel'].shape == (3, 12)
  h = np.asarray(x).reshape(3, 4)
  for i in range(2):
    p = params[f'dense_{i}']
    h = (h @ np.asarray(p['kernel']) + np.asarray(p['bias'])).reshape(3, 3, 4).max(-1)
  want = (h @ np.asarray(params['out']['kernel']) + np.asarray(params['out']['bias']))[:, 0]
  np.testing.assert_allclose(np.asarray(d.apply({'params': params}, x)), want,
                             rtol=1e-5, atol=1e-6)


def test_batch_norm_generator_train_and_eval_modes():
  g = mlp.MLPGenerator(out_dim=2, hidden=5, num_layers=1, norm='batch')
  z = jax.random.normal(jax.random.key(0), (16, 3)) * 3 + 1
  variables = g.init(jax.random.key(1), z)
  assert 'bias' not in variables['params']['dense_0']  # BN's offset replaces it
  out, new = g.apply(variables, z, train=True, mutable=['batch_stats'])
  p, bn = variables['params'], variables['batch_stats']['bn_0']
  pre = np.asarray(z) @ np.asarray(p['dense_0']['kernel'])
  mean, var = pre.mean(0), pre.var(0)
  h = np.maximum((pre - mean) / np.sqrt(var + 1e-5) * np.asarray(p['bn_0']['scale'])
                 + np.asarray(p['bn_0']['bias']), 0)
  want = h @ np.asarray(p['out']['kernel']) + np.asarray(p['out']['bias'])
  np.testing.assert_allclose(np.asarray(out), want, rtol=1e-4, atol=1e-5)
  # Running averages with decay 0.9, from (0, 1).
  np.testing.assert_allclose(np.asarray(new['batch_stats']['bn_0']['mean']),
                             0.1 * mean, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(np.asarray(new['batch_stats']['bn_0']['var']),
                             0.9 + 0.1 * var, rtol=1e-4)
  # Eval mode uses the stored averages (here the initial 0 / 1).
  out_eval = g.apply(variables, z, train=False)
  h = np.maximum(pre / np.sqrt(np.asarray(bn['var']) + 1e-5)
                 * np.asarray(p['bn_0']['scale']) + np.asarray(p['bn_0']['bias']), 0)
  np.testing.assert_allclose(np.asarray(out_eval),
                             h @ np.asarray(p['out']['kernel']) + np.asarray(p['out']['bias']),
                             rtol=1e-4, atol=1e-5)


def test_pacgan_architecture_from_the_config_and_old_configs_upgrade():
  c = mog.get_config('nonsaturating')
  c.model.update(g_hidden=400, g_layers=4, g_norm='batch', d_hidden=200,
                 d_layers=3, d_maxout=5, z_dim=2)
  config_lib.validate(c)
  g, d = models.build(c.model, (2,))
  gv = g.init(jax.random.key(0), jnp.zeros((4, 2)))
  dv = d.init(jax.random.key(0), jnp.zeros((4, 2)))
  n = lambda t: sum(np.size(x) for x in jax.tree.leaves(t))
  # G: 2->400 (no bias) + BN, 3 x (400->400 + BN), 400->2.
  assert n(gv['params']) == 2 * 400 + 3 * 400 * 400 + 4 * 2 * 400 + 400 * 2 + 2
  # D: 2->1000, 2 x 200->1000, 200->1 (all with bias).
  assert n(dv['params']) == (2 + 1) * 1000 + 2 * (200 + 1) * 1000 + 201
  c.model.d_maxout = 0
  with pytest.raises(config_lib.ConfigError, match='config.model.d_maxout'):
    config_lib.validate(c)
  # A config.json written before the fields existed resumes with the old model.
  old = mog.get_config('nonsaturating').to_dict()
  del old['model']['g_norm'], old['model']['d_maxout']
  up = config_lib.upgrade(old)
  assert (up['model']['g_norm'], up['model']['d_maxout']) == ('none', 1)
  assert 'g_norm' not in old['model']  # a copy
  config_lib.validate(ml_collections.ConfigDict(up))


def test_registry_specs_and_the_mlp_builder():
  """Every registered model has its builder, data kind and reference; the
  MLP is built by ``mlp.build`` and rejects image data naming the field."""
  assert sorted(models.MODELS) == ['dcgan', 'mlp', 'resnet', 'sngan_cnn']
  spec = models.MODELS['mlp']
  assert (spec.build, spec.data) == (mlp.build, 'vector')
  assert {n: s.data for n, s in models.MODELS.items() if n != 'mlp'} == {
      'dcgan': 'image', 'sngan_cnn': 'image', 'resnet': 'image'}
  assert all(s.reference and '\n' not in s.reference
             for s in models.MODELS.values())
  with pytest.raises(AttributeError):  # frozen
    spec.data = 'image'
  c = mog.get_config('vanilla')
  with pytest.raises(ValueError, match=r'config\.model\.name: "mlp" needs vector'):
    models.build(c.model, (28, 28, 1))
  c.model.name = 'transformer'
  with pytest.raises(ValueError, match=r"config\.model\.name: unknown model "
                     r"'transformer'; allowed: \['dcgan', 'mlp', 'resnet', "
                     r"'sngan_cnn'\]"):
    models.build(c.model, (2,))
