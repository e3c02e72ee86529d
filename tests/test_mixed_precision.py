"""Mixed precision: ``config.model.compute_dtype`` (docs/mixed_precision.md).

In bfloat16 every model returns float32 images and logits close to the
float32 model's, and its parameters, spectral-norm vectors, batch-norm
statistics and optimiser state stay float32 (at init, after a forward pass
that updates them, and after train steps; the initial state is the float32
run's). The WGAN-GP and SN-GAN MNIST
recipes train in bfloat16 without NaN and with the float32 run's losses for
the first steps. float32 (the default) inserts no op: its programs are those
of a config without the field. Tolerances (the errors measured in
brackets): D logits max |bf16 - f32| / max |f32| < 5e-2 (<= 1.8e-2), G
images RMS relative error < 5e-2 (<= 1.0e-2), losses of the first 3 train
steps within 2e-2 relative + 1e-3 absolute (<= 2e-4).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import mnist
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import models
from gan_stability.config import schema
from gan_stability.errors import ConfigError
from gan_stability.models import layers
from gan_stability.train import task as task_lib
from gan_stability.train import tasks
from tests.conftest import write_fake_idx

SMALL = dict(g_width=8, d_width=8, z_dim=16)
# name: (model, dataset, data shape, config.model overrides). Every
# normalisation (G: batch; D: layer, batch), spectral norm, and the
# class-conditional G and projection D of each image model.
CASES = {
    'mlp': ('mlp', 'ring', (2,), dict(g_hidden=16, d_hidden=16, z_dim=8,
                                      g_norm='batch', spectral_norm=True)),
    'dcgan': ('dcgan', 'mnist', (28, 28, 1), dict(SMALL, d_norm='layer')),
    'dcgan_cond': ('dcgan', 'mnist', (28, 28, 1),
                   dict(SMALL, spectral_norm=True, num_classes=10)),
    'sngan_cnn_cond': ('sngan_cnn', 'cifar10', (16, 16, 3),
                       dict(SMALL, spectral_norm=True, d_norm='batch',
                            num_classes=10)),
    'resnet_cond': ('resnet', 'cifar10', (16, 16, 3),
                    dict(SMALL, spectral_norm=True, num_classes=10)),
}


def _model_cfg(case, dtype):
  model, dataset, _, over = CASES[case]
  c = schema.defaults(model=model, dataset=dataset)
  c.model.update(compute_dtype=dtype, **over)
  return c.model


def _dtypes(tree):
  return {str(x.dtype) for x in jax.tree.leaves(tree)}


def _fill(shapes, seed=0):
  """Variables of the given shapes (``jax.eval_shape`` of an init) drawn in
  numpy: He-scaled kernels and embeddings, small biases, offsets and
  power-iteration vectors (normalised by the iteration), scales near 1,
  batch statistics (0, 1). Compiling the models' init costs seconds a
  model; this costs none."""
  rng = np.random.default_rng(seed)

  def leaf(path, s):
    name = str(getattr(path[-1], 'key', path[-1]))
    if name in ('var', 'sigma'):
      return np.ones(s.shape, np.float32)
    if name == 'mean':
      return np.zeros(s.shape, np.float32)
    if name == 'scale':
      return (1 + 0.1 * rng.normal(size=s.shape)).astype(np.float32)
    if name in ('bias', 'u') or len(s.shape) < 2:
      return (0.1 * rng.normal(size=s.shape)).astype(np.float32)
    fan_in = int(np.prod(s.shape[:-1])) if name != 'embedding' else s.shape[1]
    return (rng.normal(size=s.shape) * np.sqrt(2.0 / fan_in)).astype(
        np.float32)
  return jax.tree_util.tree_map_with_path(leaf, shapes)


@pytest.mark.parametrize('case', list(CASES))
def test_bf16_forward_is_float32_out_and_close_to_float32(case):
  shape = CASES[case][2]
  nets = {dt: models.build(_model_cfg(case, dt), shape)
          for dt in ('float32', 'bfloat16')}
  cond = bool(CASES[case][3].get('num_classes'))
  z_dim = CASES[case][3]['z_dim']

  kz, kx, kinit = jax.random.split(jax.random.key(0), 3)
  z = jax.random.normal(kz, (8, z_dim))
  x = jax.random.uniform(kx, (8,) + shape, minval=-1.0, maxval=1.0)
  lab = {'labels': jnp.arange(8) % 10} if cond else {}
  init = lambda dt: lambda: (
      nets[dt][0].init(kinit, z, train=False, **lab),
      nets[dt][1].init(kinit, x, **lab))
  # bf16 modules declare their variables in float32, as the float32 ones
  # (values: the recipe test compares them).
  shapes = jax.eval_shape(init('float32'))
  assert jax.eval_shape(init('bfloat16')) == shapes
  assert _dtypes(shapes) == {'float32'}

  def run(gv, dv):
    out = {}
    for dt, (g, d) in nets.items():
      img, g_cols = g.apply(gv, z, train=True, mutable=['batch_stats'], **lab)
      logits, d_cols = d.apply(dv, x, update_stats=True, train=True,
                               mutable=[layers.SPECTRAL_STATS, 'batch_stats'],
                               **lab)
      out[dt] = dict(img=img, logits=logits, cols=(g_cols, d_cols))
    return out

  out = jax.jit(run)(*_fill(shapes))
  f32, bf16 = out['float32'], out['bfloat16']
  assert bf16['img'].dtype == jnp.float32
  assert bf16['logits'].dtype == jnp.float32
  # Spectral-norm vectors and batch-norm statistics updated by the bf16
  # forward pass: float32.
  assert jax.tree.leaves(bf16['cols'])  # every G has batch norm
  assert _dtypes(bf16['cols']) == {'float32'}
  assert jax.tree.structure(bf16['cols']) == jax.tree.structure(f32['cols'])
  err_d = (jnp.max(jnp.abs(bf16['logits'] - f32['logits']))
           / jnp.max(jnp.abs(f32['logits'])))
  err_g = (jnp.linalg.norm(bf16['img'] - f32['img'])
           / jnp.linalg.norm(f32['img']))
  assert float(err_d) < 5e-2, float(err_d)
  assert float(err_g) < 5e-2, float(err_g)
  assert float(err_d) > 0  # bf16 really ran


def _jaxprs(model_cfg, shape):
  g, d = models.build(model_cfg, shape)
  z, x = jnp.zeros((4, model_cfg.z_dim)), jnp.zeros((4,) + shape)
  gv = jax.eval_shape(lambda: g.init(jax.random.key(0), z, train=False))
  dv = jax.eval_shape(lambda: d.init(jax.random.key(0), x))
  g_fn = lambda v: g.apply(v, z, train=True, mutable=['batch_stats'])
  d_grad = jax.grad(lambda v, x: jnp.sum(d.apply(
      v, x, update_stats=True, mutable=[layers.SPECTRAL_STATS])[0]), (0, 1))
  return str(jax.make_jaxpr(g_fn)(gv)), str(jax.make_jaxpr(d_grad)(dv, x))


def test_float32_programs_are_those_without_the_field():
  c = schema.defaults(model='dcgan', dataset='mnist')
  c.model.update(spectral_norm=True, **SMALL)
  with_field = _jaxprs(c.model, (28, 28, 1))
  del c.model['compute_dtype']
  assert _jaxprs(c.model, (28, 28, 1)) == with_field
  assert not any('bf16' in j for j in with_field)
  # bfloat16 steps aside from the custom CPU convolutions (custom VJPs) to
  # XLA's: D's gradient holds no custom_vjp_call.
  c.model.compute_dtype = 'bfloat16'
  g_bf16, d_bf16 = _jaxprs(c.model, (28, 28, 1))
  assert 'bf16' in g_bf16 and 'bf16' in d_bf16
  assert 'custom_vjp' not in d_bf16 and 'custom_vjp' in with_field[1]


def test_validation_names_the_field_and_the_allowed_values():
  c = mnist.get_config('smoke')
  c.data.dir = '/nonexistent'
  assert c.model.compute_dtype == 'float32'
  c.model.compute_dtype = 'float16'
  with pytest.raises(ConfigError, match=r"^config\.model\.compute_dtype: "
                     r"'float16' is not allowed; allowed: \['float32', "
                     r"'bfloat16'\]"):
    config_lib.validate(c, num_devices=1)
  c.model.compute_dtype = 'bfloat16'
  config_lib.validate(c, num_devices=1)  # conv_impl 'auto' steps aside
  for impl in ('fast', 'fast_matmul'):
    c.model.conv_impl = impl
    with pytest.raises(ConfigError, match=rf"^config\.model\.conv_impl: "
                       rf"'{impl}' .*config\.model\.compute_dtype="
                       r"'bfloat16'; allowed with bfloat16: \['auto', "
                       r"'native'\]"):
      config_lib.validate(c, num_devices=1)
    # Built directly (no validation), the builders say the same.
    with pytest.raises(ValueError, match=r'^config\.model\.conv_impl: '):
      models.build(c.model, (28, 28, 1))
  c.model.conv_impl = 'native'
  config_lib.validate(c, num_devices=1)


def test_old_configs_read_float32():
  c = config_lib.flatten(mnist.get_config('smoke'))
  old = {}
  for k, v in c.items():
    if k != 'model.compute_dtype':
      *parents, leaf = k.split('.')
      node = old
      for p in parents:
        node = node.setdefault(p, {})
      node[leaf] = v
  assert config_lib.upgrade(old)['model']['compute_dtype'] == 'float32'


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp('idx')
  write_fake_idx(str(d), num_train=64, num_test=16)
  return str(d)


STEPS = 3


def _train(idx_dir, variant, dtype):
  """Metrics ``[STEPS]`` and the final state of the MNIST recipe
  ``variant`` at tiny widths on fake IDX data."""
  c = mnist.get_config(variant)
  c.data.dir = idx_dir
  c.model.update(compute_dtype=dtype, **SMALL)
  c.update(batch_size=8, num_steps=STEPS, steps_per_dispatch=1, log_every=1,
           eval_every=1, checkpoint_every=1, eval_samples=4)
  c.eval.metrics = ''
  config_lib.validate(c, num_devices=1)
  task = tasks.make_task(c)
  state = task.init_state(jax.random.key(0))
  it = data_lib.make_iterator(c, seed=0)
  draws = [[next(it) for _ in range(task.draws_per_step)]
           for _ in range(STEPS)]
  batch = {k: np.stack([np.stack([d[k] for d in row]) for row in draws])
           for k in task.batch_names}
  step = jax.jit(task_lib.make_multi_step(task.make_train_step()))
  after, metrics = step(state, batch, jax.random.key(7))
  return {k: np.asarray(v) for k, v in metrics.items()}, state, after


@pytest.mark.parametrize('variant, keys', [
    ('wgan_gp', ('d_loss', 'g_loss', 'penalty')),
    ('sngan', ('d_loss', 'g_loss'))])
def test_bf16_recipe_trains_like_float32(idx_dir, variant, keys):
  f32, f32_init, _ = _train(idx_dir, variant, 'float32')
  bf16, before, after = _train(idx_dir, variant, 'bfloat16')
  # The compute dtype does not enter the initial state.
  jax.tree.map(np.testing.assert_array_equal, before, f32_init)
  for k in keys:
    assert bf16[k].dtype == np.float32
    assert np.all(np.isfinite(bf16[k])), (k, bf16[k])
    np.testing.assert_allclose(bf16[k], f32[k], rtol=2e-2, atol=1e-3,
                               err_msg=k)
  if variant == 'wgan_gp':
    assert bf16['penalty'].min() > 0
  # Parameters, optimiser state, EMA, spectral-norm vectors and batch-norm
  # statistics: float32 (and int32 counters) before and after.
  for state in (before, after):
    assert _dtypes(state) <= {'float32', 'int32', 'uint32', 'key<fry>'}
  if variant == 'sngan':
    assert jax.tree.leaves(after.d_collections[layers.SPECTRAL_STATS])
    assert jax.tree.leaves(after.g_collections['batch_stats'])
