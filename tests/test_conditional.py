"""Class-conditional GANs (issue 9, item 1): the projection discriminator
(Miyato & Koyama 2018) against its formula, the conditioning path of G, labels
from every image source, the conditional train step (key derivation,
penalties with labels, sharding, resume), the conditional configs, and the
unconditional models unchanged (a golden written before this feature).
Tiny widths and batches keep every test to a few seconds on a CPU."""

import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import cifar10, mnist, stacked_mnist
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import models, penalties
from gan_stability.models.layers import spectral_sigmas
from gan_stability.train import gan as gan_lib, task as task_lib
from gan_stability.train import train_and_evaluate

from conftest import run_python, write_fake_idx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'golden'))
import unconditional_snapshot  # pylint: disable=g-import-not-at-top,wrong-import-position

K = 10
Z = 8


def model_cfg(name, *, sn=False, num_classes=K, g_norm='batch', **kw):
  c = dict(name=name, z_dim=Z, g_width=8, d_width=4, g_norm=g_norm,
           d_norm='none', spectral_norm=sn, sn_steps=1, packing=1,
           conv_impl='auto', num_classes=num_classes)
  c.update(kw)
  return ml_collections.ConfigDict(c)


def rand(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape),
                     jnp.float32)


# ------------------------------------------------------ projection D


@pytest.mark.parametrize('name,shape,sn', [('dcgan', (28, 28, 1), True),
                                           ('sngan_cnn', (8, 8, 3), False),
                                           ('resnet', (8, 8, 3), True)])
def test_projection_equals_the_formula(name, shape, sn):
  """D(x, y) = psi(phi(x)) + <E[y], phi(x)>, psi the last linear layer, with
  W / sigma for the spectrally normalised ``out`` kernel and embedding (sigma
  as stored by that same pass)."""
  _, d = models.build(model_cfg(name, sn=sn), shape)
  x, y = rand((3,) + shape), jnp.array([0, 7, 7])
  variables = jax.jit(lambda k: d.init(k, x, labels=y))(jax.random.key(0))
  logits, new = jax.jit(lambda v: d.apply(
      v, x, labels=y, update_stats=True,
      mutable=['spectral_stats', 'intermediates']))(variables)
  p = variables['params']
  phi = np.asarray(new['intermediates']['phi'][0], np.float64)
  w = np.asarray(p['out']['kernel'], np.float64)[:, 0]
  e = np.asarray(p['embed']['embedding'], np.float64)
  assert e.shape == (K, phi.shape[1])
  if sn:
    sig = {k.split('/')[-2]: float(v)
           for k, v in spectral_sigmas(new['spectral_stats']).items()}
    w, e = w / sig['out'], e / sig['embed']
  want = phi @ w + float(p['out']['bias'][0]) + np.sum(e[np.asarray(y)] * phi, 1)
  np.testing.assert_allclose(np.asarray(logits), want, rtol=2e-5, atol=2e-5)
  # The projection really contributes: other labels give other logits.
  other = jax.jit(lambda v: d.apply(v, x, labels=jnp.array([1, 2, 3]),
                                    mutable=['spectral_stats'])[0])(variables)
  assert np.all(np.abs(np.asarray(other - logits))
                > 1e-3 * np.abs(np.asarray(logits)).max())


def test_embedding_spectral_norm_shares_d_collection_and_schedule():
  """The SN embedding's power iteration lives in ``spectral_stats`` next to
  D's layers, advances exactly when they do (update_stats=True), and
  converges to the largest singular value of E."""
  _, d = models.build(model_cfg('dcgan', sn=True), (28, 28, 1))
  x, y = rand((2, 28, 28, 1)), jnp.array([1, 2])
  variables = jax.jit(lambda k: d.init(k, x, labels=y))(jax.random.key(0))
  names = sorted(k.split('/')[-2] for k in spectral_sigmas(
      variables['spectral_stats']))
  assert names == ['conv_0', 'conv_1', 'embed', 'out']
  assert 'spectral_stats' not in jax.tree.map(jnp.shape, variables['params'])
  apply = jax.jit(lambda v, upd: d.apply(v, x, labels=y, update_stats=upd,
                                         mutable=['spectral_stats'])[1],
                  static_argnums=1)
  frozen = apply(variables, False)
  for a, b in zip(jax.tree.leaves(frozen), jax.tree.leaves(
      variables['spectral_stats'])):
    np.testing.assert_array_equal(a, b)
  stats = variables['spectral_stats']
  for _ in range(30):
    stats = apply({'params': variables['params'], 'spectral_stats': stats},
                  True)['spectral_stats']
  sig = {k.split('/')[-2]: float(v) for k, v in spectral_sigmas(stats).items()}
  e = np.asarray(variables['params']['embed']['embedding'])
  np.testing.assert_allclose(sig['embed'], np.linalg.svd(e, compute_uv=False)[0],
                             rtol=1e-3)


def test_embedding_gradient_is_phi_on_the_label_row_only():
  """dD(x, y)/dE[k] = phi(x) for k = y and 0 otherwise (no spectral norm)."""
  _, d = models.build(model_cfg('dcgan'), (28, 28, 1))
  x, y = rand((2, 28, 28, 1), seed=3), jnp.array([3, 8])
  variables = jax.jit(lambda k: d.init(k, x, labels=y))(jax.random.key(1))

  def total(params):
    return jnp.sum(d.apply({'params': params}, x, labels=y))

  grads = jax.jit(jax.grad(total))(variables['params'])['embed']['embedding']
  _, inter = jax.jit(lambda v: d.apply(v, x, labels=y,
                                       mutable=['intermediates']))(variables)
  phi = np.asarray(inter['intermediates']['phi'][0])
  grads = np.asarray(grads)
  np.testing.assert_allclose(grads[3], phi[0], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(grads[8], phi[1], rtol=1e-6, atol=1e-7)
  assert np.abs(phi).max() > 0
  others = np.delete(grads, [3, 8], axis=0)
  np.testing.assert_array_equal(others, 0.0)


# ------------------------------------------------------ conditional G


@pytest.mark.parametrize('name,shape', [('dcgan', (28, 28, 1)),
                                        ('resnet', (8, 8, 3))])
def test_generator_conditioning_path(name, shape):
  """With fixed G parameters: the label alone changes the sample; the same
  (z, y) gives the same sample; G(z, y) is the G of concat(z, E_G[y])."""
  g, _ = models.build(model_cfg(name), shape)
  z = jnp.asarray(np.random.default_rng(0).normal(size=(1, Z)), jnp.float32)
  zz = jnp.concatenate([z] * 4)
  y = jnp.array([0, 1, 5, 5])
  variables = jax.jit(lambda k: g.init(k, zz, labels=y, train=False))(
      jax.random.key(0))
  apply = jax.jit(lambda v: g.apply(v, zz, labels=y, train=False))
  out = np.asarray(apply(variables))
  assert out.shape == (4,) + shape
  np.testing.assert_array_equal(out[2], out[3])          # same z, same label
  for a, b in ((0, 1), (0, 2), (1, 2)):                   # same z, other label
    assert np.abs(out[a] - out[b]).max() > 1e-4, (a, b)
  emb = variables['params']['class_embed']['embedding']
  assert emb.shape == (K, Z)
  # The label enters only through E_G[y]: giving class 1 the row of class 0
  # makes its sample that of class 0.
  params = jax.tree.map(lambda t: t, variables['params'])
  params['class_embed'] = {'embedding': emb.at[1].set(emb[0])}
  swapped = np.asarray(apply({**variables, 'params': params}))
  np.testing.assert_array_equal(swapped[1], swapped[0])
  np.testing.assert_array_equal(swapped[2], out[2])


def test_labels_required_exactly_when_conditional():
  g, d = models.build(model_cfg('dcgan'), (28, 28, 1))
  z, x = jnp.zeros((2, Z)), jnp.zeros((2, 28, 28, 1))
  with pytest.raises(ValueError, match='config.model.num_classes'):
    g.init(jax.random.key(0), z, train=False)
  with pytest.raises(ValueError, match='config.model.num_classes'):
    d.init(jax.random.key(0), x)
  g0, _ = models.build(model_cfg('dcgan', num_classes=0), (28, 28, 1))
  with pytest.raises(ValueError, match='config.model.num_classes'):
    g0.init(jax.random.key(0), z, labels=jnp.zeros(2, jnp.int32), train=False)
  with pytest.raises(ValueError, match='config.model.packing'):
    models.build(model_cfg('dcgan', packing=2), (28, 28, 1))


# ------------------------------------------------------ unconditional golden


@pytest.mark.parametrize('part', unconditional_snapshot.PARTS)
def test_unconditional_models_unchanged(part):
  """num_classes = 0 (and configs without the field) give the parameters,
  spectral-norm states, outputs and train step of the code before
  conditional support (``tests/golden/unconditional.npz``)."""
  golden = np.load(unconditional_snapshot.GOLDEN)
  snap = unconditional_snapshot.snapshot((part,))
  keys = sorted(k for k in golden.files if k.startswith(part + '/'))
  assert sorted(snap) == keys  # the same parameter / collection trees
  for k in keys:
    assert snap[k].dtype == golden[k].dtype and snap[k].shape == golden[k].shape, k
    # Bitwise on this machine; the tolerance only forgives last-bit
    # differences of another CPU's XLA code generation (a changed init,
    # key or layer would differ at O(1)).
    np.testing.assert_allclose(snap[k], golden[k], rtol=1e-5, atol=1e-6,
                               err_msg=k)
  # An explicit num_classes=0 builds the same modules as an absent field.
  for name, shape, gw, dw in unconditional_snapshot.MODELS:
    if name == part:
      cfg = unconditional_snapshot._model_cfg(name, gw, dw)  # pylint: disable=protected-access
      with_field = cfg.copy_and_resolve_references()
      with_field.num_classes = 0
      assert models.build(cfg, shape) == models.build(with_field, shape)


# ------------------------------------------------------ data


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  return write_fake_idx(str(tmp_path_factory.mktemp('idx')), num_train=64)


def _mnist_cfg(idx_dir, variant='smoke_cond', **model):
  c = mnist.get_config(variant)
  c.data.dir = str(idx_dir)
  c.update(batch_size=8, num_steps=2, log_every=1, eval_every=2,
           checkpoint_every=2, eval_samples=8, write_tensorboard=False)
  c.data.samples_per_row = 4
  c.model.update(g_width=8, d_width=8, z_dim=Z, **model)
  return c


def test_idx_iterator_yields_labels_and_resumes(idx_dir):
  """Labels are those of the IDX file for the same rows (the fake files
  label example i with i % 10); images and position are those of the
  unconditional iterator; a restored iterator yields the same batches."""
  c = _mnist_cfg(idx_dir)
  it = data_lib.make_iterator(c, seed=3)
  plain = data_lib.make_iterator(_mnist_cfg(idx_dir, 'smoke'), seed=3)
  batches = [next(it) for _ in range(10)]  # > one epoch of 8 batches
  for i, b in enumerate(batches):
    assert set(b) == {'x', 'label'} and b['label'].dtype == np.int32
    rows = it.global_indices(i)
    np.testing.assert_array_equal(b['label'], rows % 10)
    np.testing.assert_array_equal(b['x'], next(plain)['x'])
  assert it.get_state() == plain.get_state() == {'index': 10}
  again = data_lib.make_iterator(c, seed=3)
  again.set_state(json.loads(json.dumps({'index': 6})))
  for b in batches[6:]:
    nb = next(again)
    np.testing.assert_array_equal(nb['x'], b['x'])
    np.testing.assert_array_equal(nb['label'], b['label'])


def test_stacked_mnist_labels_are_the_modes(idx_dir):
  from gan_stability.data import stacked_mnist as sm
  c = stacked_mnist.get_config('smoke_cond')
  c.data.dir = str(idx_dir)
  assert c.model.num_classes == 1000
  config_lib.validate(c, num_devices=1)
  it = data_lib.make_iterator(c, seed=0)
  b = next(it)
  idx = sm.source_indices(64, num_examples=c.data.stacked_num_examples,
                          seed=data_lib.STACKED_MNIST_SEED)
  digits = idx[it.global_indices(0)] % 10  # fake IDX labels: i % 10
  np.testing.assert_array_equal(b['label'], sm.modes_from_digits(digits))


def test_tfds_labels_and_unlabelled_datasets():
  import tensorflow_datasets as tfds
  c = cifar10.get_config('smoke_cond')
  c.batch_size = 4
  with tfds.testing.mock_data(num_examples=8,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    b = next(data_lib.make_iterator(c, seed=0))
    _, labels = data_lib._load(c)  # pylint: disable=protected-access
  assert b['x'].shape == (4, 32, 32, 3) and b['label'].dtype == np.int32
  assert np.all((0 <= b['label']) & (b['label'] < 10))
  with pytest.raises(config_lib.ConfigError, match=r'^config\.model\.num_classes'):
    c2 = c.copy_and_resolve_references()
    c2.model.num_classes = int(labels.max())  # too few classes for the labels
    with tfds.testing.mock_data(num_examples=8,
                                policy=tfds.testing.MockPolicy.USE_CODE):
      data_lib.load_labels(c2)


# ------------------------------------------------------ train step


def _step_setup(penalty, n_critic=1, g_norm='none'):
  c = ml_collections.ConfigDict(dict(
      model=model_cfg('dcgan', sn=True, g_norm=g_norm), loss='hinge',
      penalty=penalty, penalty_weight=1.0, gp_target=1.0, n_critic=n_critic,
      d_clip=0.0, ema_decay=0.0, ema_start=0, num_steps=10, loop_impl='scan',
      optimizer=dict(name='adam', g_lr=1e-4, d_lr=1e-4, b1=0.0, b2=0.9,
                     lr_schedule='constant')))
  g, d = models.build(c.model, (28, 28, 1))
  state = jax.jit(lambda k: gan_lib.init_state(c, g, d, k, (28, 28, 1)))(
      jax.random.key(0))
  return c, g, d, state


@pytest.mark.parametrize('penalty', ['r1', 'r2'])
def test_train_step_labels_keys_and_penalty(penalty):
  """The step's penalty equals the label-agnostic penalty of D with the
  labels closed over: real labels for R1, for R2 the fake labels
  randint(fold_in(k_z, FAKE_LABEL_STREAM)) of the documented key, on
  G(z, y_fake) with z from k_z."""
  c, g, d, state = _step_setup(penalty)
  b = 4
  batch = {'x': rand((1, b, 28, 28, 1), seed=5),
           'label': jnp.array([[0, 3, 3, 9]], jnp.int32)}
  key = jax.random.key(11)
  step = jax.jit(gan_lib.make_train_step(c, g, d))
  new_state, metrics = step(state, batch, key)
  assert all(np.isfinite(float(v)) for v in metrics.values())

  d_vars = {'params': state.d_params, **state.d_collections}
  def d_fn(labels):
    return lambda x: d.apply(d_vars, x, labels=labels, update_stats=False,
                             train=True, mutable=['spectral_stats'])[0]

  @jax.jit
  def by_hand(key, real, real_labels):
    k_z = jax.random.split(jax.random.split(key, 2)[0])[0]
    y_fake = jax.random.randint(jax.random.fold_in(
        k_z, gan_lib.FAKE_LABEL_STREAM), (b,), 0, K, jnp.int32)
    z = jax.random.normal(k_z, (b, Z), jnp.float32)
    fake = g.apply({'params': state.g_params}, z, labels=y_fake, train=True)
    if penalty == 'r1':
      pen = lambda y: penalties.r1_penalty(d_fn(y), real)
      y_pen = real_labels
    else:
      pen = lambda y: penalties.r2_penalty(d_fn(y), fake)
      y_pen = y_fake
    return pen(y_pen), pen((y_pen + 1) % K), jnp.mean(d_fn(y_fake)(fake))

  want, wrong, fake_logits = by_hand(key, batch['x'][0], batch['label'][0])
  np.testing.assert_allclose(float(metrics['penalty']), float(want), rtol=1e-4)
  assert abs(float(wrong) - float(want)) > 1e-3 * abs(float(want))
  # The adversarial term saw the same fake samples and labels.
  np.testing.assert_allclose(float(metrics['d_fake']), float(fake_logits),
                             rtol=1e-4, atol=1e-6)
  # The embedding trains in both networks; its SN vector advanced with D's.
  assert np.abs(np.asarray(new_state.d_params['embed']['embedding']
                           - state.d_params['embed']['embedding'])).max() > 0
  assert np.abs(np.asarray(new_state.g_params['class_embed']['embedding']
                           - state.g_params['class_embed']['embedding'])).max() > 0
  before = spectral_sigmas(state.d_collections['spectral_stats'])
  after = spectral_sigmas(new_state.d_collections['spectral_stats'])
  assert sorted(before) == sorted(after)
  assert all(float(after[k]) != float(before[k]) for k in before)


def test_conditional_step_needs_labels():
  c, g, d, state = _step_setup('none')
  c.penalty_weight = 0.0
  step = gan_lib.make_train_step(c, g, d)
  with pytest.raises(ValueError, match=r"batch\['label'\]"):
    step(state, {'x': jnp.zeros((1, 2, 28, 28, 1))}, jax.random.key(0))


SHARDED = r'''
import jax, jax.numpy as jnp, ml_collections, numpy as np
from gan_stability import models
from gan_stability.train import parallel, gan as gan_lib
assert jax.device_count() == 2
c = ml_collections.ConfigDict(dict(
    model=dict(name='dcgan', z_dim=8, g_width=4, d_width=4, g_norm='none',
               d_norm='none', spectral_norm=False, sn_steps=1, packing=1,
               conv_impl='auto', num_classes=10),
    loss='hinge', penalty='none', penalty_weight=0.0, gp_target=1.0,
    n_critic=1, d_clip=0.0, ema_decay=0.0, ema_start=0, num_steps=10,
    loop_impl='scan', optimizer=dict(name='adam', g_lr=1e-3, d_lr=1e-3, b1=0.0,
                                     b2=0.9, lr_schedule='constant')))
g, d = models.build(c.model, (16, 16, 1))
rng = np.random.default_rng(0)
batch = {'x': rng.uniform(-1, 1, (1, 4, 16, 16, 1)).astype(np.float32),
         'label': rng.integers(0, 10, (1, 4)).astype(np.int32)}
out = []
for n in (1, 2):
  mesh = parallel.make_mesh(n)
  repl, bs = parallel.replicated(mesh), parallel.batch_sharding(mesh, 1)
  state = jax.jit(lambda k: gan_lib.init_state(c, g, d, k, (16, 16, 1)),
                  out_shardings=repl)(jax.random.key(0))
  b = {k: parallel.global_batch(v, bs, 1) for k, v in batch.items()}
  assert tuple(b['label'].sharding.spec) == (None, 'data')
  assert tuple(b['x'].sharding.spec)[:2] == (None, 'data')
  step = jax.jit(gan_lib.make_train_step(
      c, g, d, latent_sharding=parallel.batch_sharding(mesh, 0)),
      in_shardings=(repl, {'x': bs, 'label': bs}, repl))
  state, m = step(state, b, jax.random.key(1))
  out.append([float(m['d_loss']), float(m['g_loss'])] +
             [float(x) for x in jax.tree.leaves(state.g_params)[0].ravel()[:8]])
np.testing.assert_allclose(out[1], out[0], rtol=1e-4, atol=1e-6)
print('OK', out[0][:2])
'''


def test_labels_sharded_like_images_on_two_devices():
  proc = run_python(SHARDED, devices=2, timeout=240)
  assert 'OK' in proc.stdout


# ------------------------------------------------------ configs and runs


@pytest.fixture(scope='module')
def cond_run(idx_dir, tmp_path_factory):
  """``(config, workdir)`` of a 2-step smoke_cond run on fake IDX MNIST."""
  c = _mnist_cfg(idx_dir)
  c.checkpoint_every = c.eval_every = 1
  config_lib.validate(c)
  full = str(tmp_path_factory.mktemp('cond') / 'full')
  train_and_evaluate(c, full)
  return c, full


def test_conditional_mnist_trains_and_resumes_exactly(cond_run, tmp_path):
  """smoke_cond on fake IDX MNIST: finite losses and a sample grid; a run
  resumed from its step-1 checkpoint (data position, labels, keys) repeats
  step 2 exactly."""
  import shutil
  c, full = cond_run
  part = str(tmp_path / 'part')
  shutil.copytree(full, part)
  shutil.rmtree(os.path.join(part, 'checkpoints', '2'))
  train_and_evaluate(c, part)  # resumes at step 1
  recs = [json.loads(l) for l in open(os.path.join(full, 'metrics.jsonl'))]
  assert [r['step'] for r in recs] == [1, 2]
  for r in recs:
    for k in ('d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm'):
      assert np.isfinite(r[k]), (k, r)
  assert open(os.path.join(part, 'metrics.jsonl')).read() == open(
      os.path.join(full, 'metrics.jsonl')).read()
  from gan_stability.checkpoint import Checkpointer
  states = []
  for wd in (full, part):
    g, d = models.build(c.model, (28, 28, 1))
    template = gan_lib.init_state(c, g, d, jax.random.key(0), (28, 28, 1))
    ck = Checkpointer(os.path.join(wd, 'checkpoints'))
    states.append(ck.restore(2, template))
    ck.close()
  assert states[0][1]['data'] == states[1][1]['data'] == {'index': 2}
  for a, b in zip(jax.tree.leaves(states[0][0]), jax.tree.leaves(states[1][0])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert os.path.exists(os.path.join(full, 'samples', 'step_0000002.png'))


def test_vmapped_seeds_of_a_conditional_config(cond_run, tmp_path):
  """The sweep's vmapped-seeds program feeds labels too and matches the
  single run of the same seed."""
  from gan_stability.train import seeds as seeds_lib
  c, full = cond_run
  wd = str(tmp_path / 'vm0')
  got = seeds_lib.train_seeds(c, [0], [wd])[0]
  assert got.pop('status') == 'ok'
  ra = [json.loads(l) for l in open(os.path.join(full, 'metrics.jsonl'))]
  rb = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  for x, y in zip(ra, rb):
    for k in ('d_loss', 'g_loss', 'd_grad_norm', 'sample_mean', 'sample_std'):
      np.testing.assert_allclose(y[k], x[k], rtol=1e-4, atol=1e-6)


def test_grid_labels_one_class_per_row():
  y = task_lib.grid_labels(24, samples_per_row=4, num_classes=3)
  np.testing.assert_array_equal(y.reshape(6, 4), np.repeat(
      np.array([0, 1, 2, 0, 1, 2])[:, None], 4, axis=1))
  assert task_lib.grid_labels(8, samples_per_row=4, num_classes=0) is None


def test_cifar10_conditional_smoke_on_mock_tfds(tmp_path):
  import tensorflow_datasets as tfds
  c = cifar10.get_config('smoke_cond')
  assert c.model.num_classes == 10 and c.variant == 'smoke_cond'
  c.update(batch_size=4, num_steps=1, log_every=1, eval_every=1,
           checkpoint_every=1, eval_samples=4, write_tensorboard=False)
  c.model.update(g_width=8, d_width=4, z_dim=Z)
  with tfds.testing.mock_data(num_examples=8,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    result = train_and_evaluate(c, str(tmp_path / 'run'))
  assert result['step'] == 1 and result['samples_finite'] is True
  assert np.isfinite(result['d_loss']) and np.isfinite(result['g_loss'])


def test_conditional_variants_of_every_recipe():
  for module in (mnist, cifar10):
    for v in ('vanilla', 'wgan_gp', 'sngan', 'hinge_r1'):
      plain, cond = module.get_config(v), module.get_config(v + '_cond')
      assert cond.model.num_classes == 10 and plain.model.num_classes == 0
      diff = config_lib.diff(config_lib.flatten(plain.to_dict()),
                             config_lib.flatten(cond.to_dict()))
      # ... and a K x K sample grid, row k of class k.
      assert sorted(diff) == ['data.samples_per_row', 'eval_samples',
                              'model.num_classes', 'variant'], diff
      assert (cond.data.samples_per_row, cond.eval_samples) == (10, 100)
      labels = task_lib.grid_labels(cond.eval_samples, num_classes=10,
                                    samples_per_row=10)
      np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 10))
  with pytest.raises(ValueError, match='allowed'):
    mnist.get_config('bogus_cond')


def test_old_image_config_json_upgrades_to_unconditional():
  c = mnist.get_config('wgan_gp')
  c.data.dir = '/x'
  old = c.to_dict()
  del old['model']['num_classes']
  up = config_lib.upgrade(old)
  assert up['model']['num_classes'] == 0
  config_lib.validate(ml_collections.ConfigDict(up), num_devices=1)
  with pytest.raises(config_lib.ConfigError, match=r'^config\.model\.num_classes: missing'):
    config_lib.validate(ml_collections.ConfigDict(old), num_devices=1)
