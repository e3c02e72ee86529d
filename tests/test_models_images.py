"""Image GAN architectures (dcgan.py, cnn.py, resnet.py): shapes, parameter
counts of the published widths, spectral norm, batch norm, packing and the
input gradients that penalties need. Tiny widths keep it fast on a CPU."""

import math
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_stability.models import cnn, dcgan, layers, resnet

BUILDERS = {'dcgan': dcgan.build, 'sngan_cnn': cnn.build, 'resnet': resnet.build}
# (model name, data shape) pairs each model supports.
CASES = [('dcgan', (28, 28, 1)), ('dcgan', (28, 28, 3)), ('dcgan', (32, 32, 3)),
         ('sngan_cnn', (32, 32, 3)), ('resnet', (32, 32, 3))]
Z = 8


def cfg(name, **overrides):
  c = dict(name=name, z_dim=Z, g_width=8, d_width=8, g_norm='batch',
           d_norm='none', spectral_norm=False, sn_steps=1, packing=1,
           conv_impl='auto')
  c.update(overrides)
  return ml_collections.ConfigDict(c)


def build(name, shape, **overrides):
  return BUILDERS[name](cfg(name, **overrides), shape)


def images(shape, n, seed=0):
  x = np.random.default_rng(seed).uniform(-1, 1, (n,) + tuple(shape))
  return jnp.asarray(x, jnp.float32)


def latents(n, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(n, Z)), jnp.float32)


def init_d(d, x, seed=1):
  return jax.jit(d.init)(jax.random.key(seed), x)


def n_params(tree):
  return sum(math.prod(a.shape) for a in jax.tree.leaves(tree))


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize('name,shape', CASES)
def test_output_shapes_and_ranges(name, shape):
  g, d = build(name, shape)
  z = latents(3)
  g_vars = jax.jit(lambda k: g.init(k, z, train=False))(jax.random.key(0))
  assert set(g_vars) == {'params', 'batch_stats'}
  x, _ = jax.jit(lambda v: g.apply(v, z, train=True, mutable=['batch_stats'])
                 )(g_vars)
  assert x.shape == (3,) + shape
  assert x.dtype == jnp.float32
  x = np.asarray(x)
  assert np.all(np.abs(x) <= 1.0) and np.isfinite(x).all()
  assert x.std() > 0  # not a constant image
  d_vars = init_d(d, jnp.asarray(x))
  logits = jax.jit(lambda v, x: d.apply(v, x, train=True))(d_vars, x)
  assert logits.shape == (3,)
  assert np.isfinite(np.asarray(logits)).all()


@pytest.mark.parametrize('name,shape', [
    ('dcgan', (30, 30, 1)), ('dcgan', (28, 32, 1)), ('dcgan', (28, 28)),
    ('dcgan', (12, 12, 1)), ('sngan_cnn', (28, 28, 1)), ('resnet', (28, 28, 3)),
    ('resnet', (2,))])
def test_unsupported_shapes_name_the_model_field(name, shape):
  with pytest.raises(ValueError, match=r'config\.model\.name.*' + name):
    build(name, shape)


def test_bad_norms_and_widths_name_their_fields():
  with pytest.raises(ValueError, match=r'config\.model\.g_norm'):
    build('dcgan', (28, 28, 1), g_norm='layer')
  with pytest.raises(ValueError, match=r'config\.model\.d_norm'):
    build('resnet', (32, 32, 3), d_norm='group')
  with pytest.raises(ValueError, match=r'config\.model\.g_width'):
    build('sngan_cnn', (32, 32, 3), g_width=4)


# ---------------------------------------------------------- parameter counts


def conv(k, c_in, c_out, bias=True):
  return k * k * c_in * c_out + (c_out if bias else 0)


def dense(n_in, n_out, bias=True):
  return n_in * n_out + (n_out if bias else 0)


def bn(c):
  return 2 * c  # scale and offset (running statistics are not parameters)


def shape_params(module, *args, **kwargs):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), *args,
                                                 **kwargs))
  return variables['params']


def test_param_count_dcgan28_generator_paper_width():
  # MNIST DCGAN, w = 64, z = 100: dense -> 7x7x128 (BN, ReLU), 4x4 deconv ->
  # 14x14x64 (BN, ReLU), 4x4 deconv -> 28x28x1. No bias before batch norm.
  g, _ = dcgan.build(cfg('dcgan', z_dim=100, g_width=64, d_width=64),
                     (28, 28, 1))
  expected = (dense(100, 7 * 7 * 128, bias=False) + bn(128)
              + conv(4, 128, 64, bias=False) + bn(64)
              + conv(4, 64, 1))
  assert expected == 759_681
  assert n_params(shape_params(g, jnp.zeros((2, 100)), train=False)) == expected


def test_param_count_dcgan_discriminators():
  _, d = dcgan.build(cfg('dcgan', d_width=64), (28, 28, 1))
  expected = conv(4, 1, 64) + conv(4, 64, 128) + dense(7 * 7 * 128, 1)
  assert n_params(shape_params(d, jnp.zeros((2, 28, 28, 1)))) == expected
  _, d = dcgan.build(cfg('dcgan', d_width=64, d_norm='batch'), (32, 32, 3))
  expected = (conv(4, 3, 64) + conv(4, 64, 128, False) + bn(128)
              + conv(4, 128, 256, False) + bn(256) + dense(4 * 4 * 256, 1))
  assert n_params(shape_params(d, jnp.zeros((2, 32, 32, 3)))) == expected


def test_param_count_sngan_standard_cnn_paper_width():
  # Miyato et al. 2018, Table 3 (b), CIFAR-10 (32x32x3).
  _, d = cnn.build(cfg('sngan_cnn', g_width=512, d_width=64, z_dim=128,
                       spectral_norm=True), (32, 32, 3))
  expected = (conv(3, 3, 64) + conv(4, 64, 64) + conv(3, 64, 128)
              + conv(4, 128, 128) + conv(3, 128, 256) + conv(4, 256, 256)
              + conv(3, 256, 512) + dense(4 * 4 * 512, 1))
  assert expected == 2_935_873
  params = shape_params(d, jnp.zeros((2, 32, 32, 3)))
  assert n_params(params) == expected
  # Table 3 (a): dense 4x4x512, deconvs to 256, 128, 64, 3x3 conv to 3.
  g, _ = cnn.build(cfg('sngan_cnn', g_width=512, d_width=64, z_dim=128),
                   (32, 32, 3))
  expected = (dense(128, 4 * 4 * 512, False) + bn(512)
              + conv(4, 512, 256, False) + bn(256)
              + conv(4, 256, 128, False) + bn(128)
              + conv(4, 128, 64, False) + bn(64) + conv(3, 64, 3))
  assert n_params(shape_params(g, jnp.zeros((2, 128)), train=False)) == expected


def test_param_count_resnet_paper_width():
  g, d = resnet.build(cfg('resnet', g_width=256, d_width=128, z_dim=128),
                      (32, 32, 3))
  block_up = bn(256) + conv(3, 256, 256) + bn(256) + conv(3, 256, 256) + conv(
      1, 256, 256)
  expected_g = (dense(128, 4 * 4 * 256) + 3 * block_up + bn(256)
                + conv(3, 256, 3))
  assert n_params(shape_params(g, jnp.zeros((2, 128)), train=False)) == expected_g
  expected_d = (conv(3, 3, 128) + conv(3, 128, 128) + conv(1, 3, 128)  # optimised
                + 2 * conv(3, 128, 128) + conv(1, 128, 128)          # down
                + 4 * conv(3, 128, 128)                              # 2 plain
                + dense(128, 1))
  assert n_params(shape_params(d, jnp.zeros((2, 32, 32, 3)))) == expected_d


# ------------------------------------------------------------ spectral norm

SN_CASES = [('dcgan', (28, 28, 1)), ('sngan_cnn', (32, 32, 3)),
            ('resnet', (32, 32, 3))]


def _param_path(stats_path):
  """'block_0/SNWrap_1/SpectralNorm_0/conv_2/kernel' -> 'block_0/conv_2/kernel'."""
  parts = [p for p in stats_path.split('/')
           if not re.fullmatch(r'SNWrap_\d+|SpectralNorm_\d+', p)]
  return '/'.join(parts)


def _flat(tree):
  return {'/'.join(str(getattr(k, 'key', k)) for k in path): v
          for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.parametrize('name,shape', SN_CASES)
def test_spectral_norm_converges_to_svd_on_every_layer(name, shape):
  _, d = build(name, shape, spectral_norm=True, sn_steps=2, d_width=4)
  x = images(shape, 2)
  variables = init_d(d, x)
  params, stats = variables['params'], variables[layers.SPECTRAL_STATS]

  step = jax.jit(lambda s: d.apply({'params': params, layers.SPECTRAL_STATS: s},
                                   x, update_stats=True,
                                   mutable=[layers.SPECTRAL_STATS])[1]
                 [layers.SPECTRAL_STATS])
  frozen = jax.jit(lambda s: d.apply(
      {'params': params, layers.SPECTRAL_STATS: s}, x, update_stats=False,
      mutable=[layers.SPECTRAL_STATS]))

  # update_stats=False leaves the power-iteration state untouched.
  _, new = frozen(stats)
  jax.tree.map(np.testing.assert_array_equal, new[layers.SPECTRAL_STATS], stats)
  for _ in range(100):  # 200 power iterations
    stats = step(stats)
  logits, new = frozen(stats)
  jax.tree.map(np.testing.assert_array_equal, new[layers.SPECTRAL_STATS], stats)

  sigmas = {_param_path(k): v for k, v in layers.spectral_sigmas(stats).items()}
  kernels = {k: v for k, v in _flat(params).items() if k.endswith('kernel')}
  assert set(sigmas) == set(kernels)  # every conv and dense layer is wrapped
  assert any(v.ndim == 4 for v in kernels.values())  # convs ...
  assert any(v.ndim == 2 for v in kernels.values())  # ... and the dense layer
  for path, kernel in kernels.items():
    w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    top = np.linalg.svd(w, compute_uv=False)[0]
    np.testing.assert_allclose(float(sigmas[path]), top, rtol=1e-3, err_msg=path)
    top_normed = np.linalg.svd(w / float(sigmas[path]), compute_uv=False)[0]
    assert abs(top_normed - 1.0) < 1e-3, (path, top_normed)

  # The forward pass uses kernel / sigma: the same D without spectral norm on
  # divided kernels gives the same logits.
  _, plain_d = build(name, shape, spectral_norm=False, d_width=4)
  divided = {k: (v / sigmas[k] if k in sigmas else v)
             for k, v in _flat(params).items()}
  divided = jax.tree_util.tree_unflatten(
      jax.tree.structure(params), [divided[k] for k in _flat(params)])
  np.testing.assert_allclose(jax.jit(plain_d.apply)({'params': divided}, x),
                             logits,
                             rtol=1e-4, atol=1e-5)


def test_spectral_norm_is_off_by_default():
  _, d = build('dcgan', (28, 28, 1))
  variables = init_d(d, images((28, 28, 1), 2))
  assert set(variables) == {'params'}


# ---------------------------------------------------------------- batch norm


def test_generator_batch_norm_running_averages():
  g, _ = build('dcgan', (28, 28, 1), g_width=4)
  z4 = latents(4, seed=3)
  variables = jax.jit(lambda k: g.init(k, z4, train=False))(jax.random.key(0))
  params, stats = variables['params'], variables['batch_stats']
  np.testing.assert_array_equal(stats['bn_0']['mean'], 0.0)
  np.testing.assert_array_equal(stats['bn_0']['var'], 1.0)

  train = jax.jit(lambda s, z: g.apply({'params': params, 'batch_stats': s}, z,
                                       train=True, mutable=['batch_stats']))
  _, new = train(stats, z4)
  new = new['batch_stats']
  # First BN layer: its input is the (bias-free) dense projection of z.
  h = np.asarray(z4, np.float64) @ np.asarray(params['dense']['kernel'],
                                              np.float64)
  h = h.reshape(4, 7, 7, 8)
  batch_mean = h.mean(axis=(0, 1, 2))
  batch_var = h.var(axis=(0, 1, 2))
  np.testing.assert_allclose(new['bn_0']['mean'], 0.9 * 0.0 + 0.1 * batch_mean,
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(new['bn_0']['var'], 0.9 * 1.0 + 0.1 * batch_var,
                             rtol=1e-4, atol=1e-6)
  for layer in new:  # every BN layer moved
    assert not np.allclose(new[layer]['mean'], stats[layer]['mean'])

  # Eval mode: running averages, no mutation, no dependence on the batch.
  evaluate = jax.jit(lambda z: g.apply({'params': params, 'batch_stats': new},
                                       z, train=False, mutable=['batch_stats']))
  out4, after = evaluate(z4)
  jax.tree.map(np.testing.assert_array_equal, after['batch_stats'], new)
  out1, _ = evaluate(z4[:1])
  np.testing.assert_allclose(out1[0], out4[0], rtol=1e-5, atol=1e-6)
  # Train mode uses batch statistics: sample 0 depends on its batch mates.
  other = z4.at[1:].set(latents(3, seed=9))
  a, _ = train(new, z4)
  b, _ = train(new, other)
  assert not np.allclose(a[0], b[0], atol=1e-4)


def test_generator_without_batch_norm_has_no_stats():
  g, _ = build('sngan_cnn', (32, 32, 3), g_norm='none')
  z = latents(2)
  variables = jax.jit(lambda k: g.init(k, z, train=False))(jax.random.key(0))
  assert set(variables) == {'params'}


@pytest.mark.parametrize('name', ['dcgan', 'sngan_cnn', 'resnet'])
def test_discriminator_norms(name):
  shape = (28, 28, 1) if name == 'dcgan' else (32, 32, 3)
  x = images(shape, 4)
  # Batch norm: statistics in 'batch_stats', updated in train mode.
  _, d = build(name, shape, d_norm='batch', d_width=4)
  variables = init_d(d, x)
  logits, new = jax.jit(lambda v: d.apply(v, x, train=True,
                                          mutable=['batch_stats']))(variables)
  assert logits.shape == (4,)
  moved = jax.tree.map(lambda a, b: not np.allclose(a, b),
                       new['batch_stats'], variables['batch_stats'])
  assert all(jax.tree.leaves(moved))
  # Layer norm: per example, so sample 0's logit ignores its batch mates.
  _, d = build(name, shape, d_norm='layer', d_width=4)
  variables = init_d(d, x)
  assert set(variables) == {'params'}
  apply = jax.jit(lambda x: d.apply(variables, x, train=True))
  np.testing.assert_allclose(apply(x)[:1], apply(x[:1]), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ packing


@pytest.mark.parametrize('name,shape', [('dcgan', (28, 28, 1)),
                                        ('sngan_cnn', (32, 32, 3)),
                                        ('resnet', (32, 32, 3))])
def test_packing_concatenates_pairs_along_channels(name, shape):
  _, packed = build(name, shape, packing=2, d_width=4)
  _, plain = build(name, shape, packing=1, d_width=4)
  x = images(shape, 4)
  variables = init_d(packed, x)
  logits = jax.jit(packed.apply)(variables, x)
  assert logits.shape == (2,)
  pairs = jnp.concatenate([x[0::2], x[1::2]], axis=-1)  # (x0|x1), (x2|x3)
  np.testing.assert_allclose(jax.jit(plain.apply)(variables, pairs), logits,
                             rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='config.model.packing'):
    packed.apply(variables, x[:3])


# -------------------------------------------------------- input gradients


@pytest.mark.parametrize('name,shape,sn,norm', [
    ('dcgan', (28, 28, 1), False, 'none'), ('dcgan', (32, 32, 3), True, 'layer'),
    ('sngan_cnn', (32, 32, 3), True, 'none'),
    ('resnet', (32, 32, 3), False, 'layer')])
def test_input_gradient_is_finite(name, shape, sn, norm):
  _, d = build(name, shape, spectral_norm=sn, d_width=4, d_norm=norm)
  x = images(shape, 2)
  variables = init_d(d, x)
  grad = jax.jit(jax.grad(lambda x: jnp.sum(d.apply(variables, x))))(x)
  grad = np.asarray(grad)
  assert grad.shape == x.shape
  assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


@pytest.mark.parametrize('sn', [False, True])
def test_double_gradient_dcgan_discriminator(sn):
  """The WGAN-GP penalty needs d/dparams of ||d D / d x||^2."""
  _, d = build('dcgan', (28, 28, 1), spectral_norm=sn, d_width=4)
  x = images((28, 28, 1), 2)
  variables = init_d(d, x)
  cols = {k: v for k, v in variables.items() if k != 'params'}

  def penalty(params):
    f = lambda x: jnp.sum(d.apply({'params': params, **cols}, x))
    g = jax.grad(f)(x)
    return jnp.mean((jnp.sqrt(jnp.sum(g ** 2, axis=(1, 2, 3))) - 1.0) ** 2)

  value, grads = jax.jit(jax.value_and_grad(penalty))(variables['params'])
  assert np.isfinite(float(value))
  leaves = [np.asarray(v) for v in jax.tree.leaves(grads)]
  assert all(np.isfinite(v).all() for v in leaves)
  assert sum(np.abs(v).sum() for v in leaves) > 0
