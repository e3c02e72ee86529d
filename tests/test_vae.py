"""The VAE baseline: ELBO terms by hand, the train step against a
recomputation, the decoder = the DCGAN generator, exact resume, 1 vs 2
devices, evaluation through the GANs' tools, bad configs."""

from __future__ import annotations

import json
import math
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from conftest import run_python, write_fake_idx
from experiments.configs import vae as vae_configs
from gan_stability import config as config_lib
from gan_stability import elbo
from gan_stability.models import dcgan, vae as vae_models
from gan_stability.eval import offline
from gan_stability.train import tasks, train_and_evaluate
from gan_stability.train import vae as vae_train
from gan_stability.train.workdir import load_run_config

# ------------------------------------------------------------- ELBO terms


def test_gaussian_kl_by_hand():
  # KL(N(0, 1) || N(0, 1)) = 0; KL(N(1, 4) || N(0, 1)) = (1 + 4 - log 4 - 1) / 2.
  mean = jnp.array([[0.0, 1.0]])
  log_var = jnp.array([[0.0, math.log(4.0)]])
  np.testing.assert_allclose(elbo.gaussian_kl(mean, log_var),
                             [(4.0 - math.log(4.0)) / 2], rtol=1e-6)
  # Against the closed form of two univariate normals, summed over dims.
  rng = np.random.default_rng(0)
  m, lv = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
  s2 = np.exp(lv)
  ref = np.sum(np.log(1.0 / np.sqrt(s2)) + (s2 + m ** 2) / 2 - 0.5, axis=1)
  np.testing.assert_allclose(elbo.gaussian_kl(jnp.asarray(m, jnp.float32),
                                              jnp.asarray(lv, jnp.float32)),
                             ref, rtol=1e-5)


def test_bernoulli_nll_is_the_cross_entropy_of_the_tanh_mean():
  """logits 2h <=> p = (tanh(h) + 1) / 2: the NLL equals the binary
  cross-entropy written with p, for grey targets too."""
  rng = np.random.default_rng(1)
  h = rng.normal(size=(4, 3, 3, 1))
  x = rng.uniform(-1, 1, size=(4, 3, 3, 1))
  p = (np.tanh(h) + 1) / 2
  t = (x + 1) / 2
  ref = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p), axis=(1, 2, 3))
  got = elbo.bernoulli_nll(jnp.asarray(h, jnp.float32),
                           jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(got, ref, rtol=1e-5)
  # Minimised where the mean matches the data: d/dh = 2 (p - t) = 0.
  grad = jax.grad(lambda hh: elbo.bernoulli_nll(hh, jnp.asarray(x)).sum())(
      jnp.arctanh(jnp.asarray(x * 0.999)))
  assert np.max(np.abs(np.asarray(grad))) < 2e-3


def test_gaussian_nll_by_hand():
  rng = np.random.default_rng(2)
  h = rng.normal(size=(2, 4))
  x = rng.uniform(-1, 1, size=(2, 4))
  sigma = 0.3
  m = np.tanh(h)
  ref = np.sum(0.5 * np.log(2 * np.pi * sigma ** 2) +
               (x - m) ** 2 / (2 * sigma ** 2), axis=1)
  np.testing.assert_allclose(
      elbo.gaussian_nll(jnp.asarray(h), jnp.asarray(x), sigma=sigma), ref,
      rtol=1e-5)
  with pytest.raises(ValueError, match='sigma'):
    elbo.gaussian_nll(jnp.asarray(h), jnp.asarray(x), sigma=0.0)
  with pytest.raises(ValueError, match="likelihood: unknown 'poisson'"):
    elbo.reconstruction_nll(jnp.asarray(h), jnp.asarray(x),
                            likelihood='poisson')


def test_elbo_gradients_check():
  rng = np.random.default_rng(3)
  h = jnp.asarray(rng.normal(size=(2, 5)))
  x = jnp.asarray(rng.uniform(-1, 1, size=(2, 5)))
  m = jnp.asarray(rng.normal(size=(2, 3)))
  lv = jnp.asarray(rng.normal(size=(2, 3)) * 0.5)
  with jax.enable_x64():
    args = [jnp.asarray(a, jnp.float64) for a in (h, x, m, lv)]
    check_grads(lambda a, b: elbo.gaussian_kl(a, b).sum(), args[2:], order=2,
                modes=['rev'])
    check_grads(lambda a: elbo.bernoulli_nll(a, args[1]).sum(), args[:1],
                order=2, modes=['rev'])
    check_grads(lambda a: elbo.gaussian_nll(a, args[1], sigma=0.5).sum(),
                args[:1], order=2, modes=['rev'])


def test_reparameterize_moments_and_gradient():
  key = jax.random.key(0)
  mean = jnp.full((20000, 2), 3.0)
  log_var = jnp.log(jnp.array([[0.25, 4.0]])) * jnp.ones((20000, 1))
  z = np.asarray(elbo.reparameterize(key, mean, log_var))
  np.testing.assert_allclose(z.mean(0), [3.0, 3.0], atol=0.05)
  np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.03)
  # dz/dmean = 1, dz/dlog_var = eps * exp(log_var / 2) / 2.
  m1, lv1 = jnp.array([[0.5]]), jnp.array([[0.2]])
  eps = float(jax.random.normal(key, (1, 1))[0, 0])
  gm, glv = jax.grad(lambda a, b: elbo.reparameterize(key, a, b).sum(),
                     argnums=(0, 1))(m1, lv1)
  np.testing.assert_allclose(float(gm[0, 0]), 1.0)
  np.testing.assert_allclose(float(glv[0, 0]), eps * math.exp(0.1) / 2,
                             rtol=1e-5)
  loss, nll, kl = elbo.negative_elbo(
      jnp.zeros((1, 4)), jnp.zeros((1, 4)), m1, lv1, likelihood='bernoulli',
      beta=3.0)
  np.testing.assert_allclose(float(nll[0]), 4 * math.log(2.0), rtol=1e-6)
  np.testing.assert_allclose(float(loss[0]), float(nll[0] + 3.0 * kl[0]),
                             rtol=1e-6)


# ----------------------------------------------------------------- models


def _smoke(idx_dir, variant='smoke', **over):
  c = vae_configs.get_config(variant)
  c.data.dir = str(idx_dir)
  c.update(over)
  return c


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  return write_fake_idx(str(tmp_path_factory.mktemp('fake_mnist')))


def test_decoder_is_the_dcgan_generator(idx_dir):
  """Same parameter tree as the GAN generator of the same width; tanh of the
  decoder output is the generator's output with the same parameters."""
  c = _smoke(idx_dir, 'smoke_cond')
  dec, enc = vae_models.build(c.model, (28, 28, 1))
  gen = dcgan.DCGANGenerator(out_shape=(28, 28, 1), width=c.model.g_width,
                             norm='batch', num_classes=10)
  z = jax.random.normal(jax.random.key(1), (3, c.model.z_dim))
  y = jnp.array([0, 4, 9])
  variables = gen.init(jax.random.key(2), z, labels=y, train=False)
  assert (jax.tree.structure(dec.init(jax.random.key(2), z, labels=y,
                                      train=False))
          == jax.tree.structure(variables))
  np.testing.assert_allclose(
      np.tanh(np.asarray(dec.apply(variables, z, labels=y, train=False))),
      np.asarray(gen.apply(variables, z, labels=y, train=False)), atol=1e-6)
  mean, log_var = enc.apply(enc.init(jax.random.key(3), jnp.zeros((3, 28, 28, 1)),
                                     labels=y), jnp.zeros((3, 28, 28, 1)),
                            labels=y)
  assert mean.shape == log_var.shape == (3, c.model.z_dim)
  with pytest.raises(ValueError, match='config.model.num_classes'):
    enc.apply(enc.init(jax.random.key(3), jnp.zeros((1, 28, 28, 1)), labels=y[:1]),
              jnp.zeros((1, 28, 28, 1)))
  c.model.name = 'resnet'
  with pytest.raises(ValueError, match=r"config.model.name: .*\['dcgan'\]"):
    vae_models.build(c.model, (28, 28, 1))


def test_train_step_is_adam_on_the_recomputed_elbo(idx_dir):
  """One step: the reported terms are the ELBO recomputed outside the step
  from the same key, and the new parameters are Adam's update of its
  gradient; the conditional encoder and decoder see the labels."""
  c = _smoke(idx_dir, 'smoke_cond')
  dec, enc = vae_models.build(c.model, (28, 28, 1))
  state = vae_train.init_state(c, dec, enc, jax.random.key(0), (28, 28, 1))
  rng = np.random.default_rng(0)
  batch = {'x': jnp.asarray(rng.uniform(-1, 1, (8, 28, 28, 1)), jnp.float32),
           'label': jnp.asarray(rng.integers(0, 10, 8), jnp.int32)}
  key = jax.random.key(5)
  new, m = jax.jit(vae_train.make_train_step(c, dec, enc))(state, batch, key)

  def manual(params):
    mean, lv = enc.apply({'params': params['encoder']}, batch['x'],
                         labels=batch['label'])
    z = mean + jnp.exp(lv / 2) * jax.random.normal(key, mean.shape)
    h, _ = dec.apply({'params': params['decoder'], **state.dec_collections},
                     z, labels=batch['label'], train=True,
                     mutable=['batch_stats'])
    t = (batch['x'] + 1) / 2
    nll = jnp.sum(jax.nn.softplus(2 * h) - t * 2 * h, axis=(1, 2, 3))
    kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(lv) - lv - 1, axis=1)
    return jnp.mean(nll + kl), (jnp.mean(nll), jnp.mean(kl))

  (loss, (nll, kl)), grads = jax.value_and_grad(manual, has_aux=True)(
      state.params)
  np.testing.assert_allclose(float(m['neg_elbo']), float(loss), rtol=1e-5)
  np.testing.assert_allclose(float(m['nll']), float(nll), rtol=1e-5)
  np.testing.assert_allclose(float(m['kl_prior']), float(kl), rtol=1e-4)
  np.testing.assert_allclose(float(m['grad_norm']),
                             float(optax.global_norm(grads)), rtol=1e-4)
  tx = optax.adam(c.optimizer.lr, b1=c.optimizer.b1, b2=c.optimizer.b2)
  updates, _ = tx.update(grads, tx.init(state.params), state.params)
  expected = optax.apply_updates(state.params, updates)
  # Adam's first update is ~ lr * sign(g) (lr 1e-3); where |g| is near Adam's
  # eps, float rounding of g moves it by a few 1e-6.
  for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
  assert int(new.step) == 1
  # Batch-norm running statistics moved (train mode), and labels matter.
  moved = [float(jnp.abs(a - b).max()) for a, b in zip(
      jax.tree.leaves(new.dec_collections),
      jax.tree.leaves(state.dec_collections))]
  assert max(moved) > 0
  other = dict(batch, label=(batch['label'] + 1) % 10)
  _, m2 = jax.jit(vae_train.make_train_step(c, dec, enc))(state, other, key)
  assert abs(float(m2['neg_elbo']) - float(m['neg_elbo'])) > 1e-4


# -------------------------------------------------------------------- runs


@pytest.fixture(scope='module')
def vae_run(idx_dir, tmp_path_factory):
  c = _smoke(idx_dir, 'smoke_cond', num_steps=3)
  c.eval.metrics = 'digits'
  c.eval_samples = 20
  config_lib.validate(c)
  full = str(tmp_path_factory.mktemp('vae') / 'full')
  result = train_and_evaluate(c, full)
  return c, full, result


def test_vae_run_trains_resumes_exactly_and_evaluates(vae_run, tmp_path):
  """A 3-step conditional smoke run through ``train_and_evaluate``: finite
  ELBO terms and the evaluator's metrics; a copy resumed from its step-2
  checkpoint writes the same metrics.jsonl; evaluate_checkpoint samples the
  decoder through restore_sampler."""
  c, full, result = vae_run
  recs = [json.loads(l) for l in open(os.path.join(full, 'metrics.jsonl'))]
  assert [r['step'] for r in recs] == [1, 2, 3]
  for r in recs:
    assert np.isfinite(r['neg_elbo']) and r['kl_prior'] >= 0
    np.testing.assert_allclose(r['neg_elbo'], r['nll'] + r['kl_prior'],
                               rtol=1e-5)
  assert 0 <= result['digit_modes'] <= 10 and result['step'] == 3
  part = str(tmp_path / 'part')
  shutil.copytree(full, part)
  shutil.rmtree(os.path.join(part, 'checkpoints', '3'))
  train_and_evaluate(c, part)
  assert open(os.path.join(part, 'metrics.jsonl')).read() == open(
      os.path.join(full, 'metrics.jsonl')).read()

  cfg = load_run_config(full)
  sample_fn, step = tasks.restore_sampler(cfg, full)
  assert step == 3
  labels = np.array([3, 3, 7, 1], np.int32)
  a = sample_fn(jax.random.key(0), 4, labels)
  assert a.shape == (4, 28, 28, 1) and np.all(np.abs(a) <= 1)
  np.testing.assert_array_equal(a, sample_fn(jax.random.key(0), 4, labels))
  assert np.abs(a - sample_fn(jax.random.key(0), 4, labels[::-1])).max() > 0
  with pytest.raises(ValueError, match=r'labels=: expected shape \(4,\)'):
    sample_fn(jax.random.key(0), 4, labels[:2])
  out = offline.evaluate_checkpoint(full, num_samples=30,
                                         metrics='digits', write=False)
  assert out['step'] == 3 and out['eval_num_samples'] == 30
  assert 1 <= out['digit_modes'] <= 10


def test_vae_config_changes_refused_on_resume(vae_run, tmp_path):
  c, full, _ = vae_run
  part = str(tmp_path / 'p')
  shutil.copytree(full, part)
  c2 = c.copy_and_resolve_references()
  c2.vae.beta = 2.0
  with pytest.raises(config_lib.ConfigError, match=r'config.vae.beta'):
    train_and_evaluate(c2, part)


@pytest.mark.parametrize('field,value,match', [
    ('vae.likelihood', 'poisson', r"config.vae.likelihood: 'poisson' is not "
     r"allowed; allowed: \['bernoulli', 'gaussian'\]"),
    ('vae.beta', 0.0, r'config.vae.beta: 0.0 must be > 0'),
    ('model.name', 'resnet', r"config.model.name: 'resnet' is not allowed; "
     r"allowed: \['dcgan'\]"),
    ('dataset', 'ring', r'config.dataset: the VAE needs an image dataset'),
    ('model.num_classes', 7, r'config.model.num_classes: dataset .* has 10 '
     'classes'),
    ('optimizer.lr', -1.0, r'config.optimizer.lr: -1.0 must be > 0'),
    ('family', 'flow', r"config.family: 'flow' is not allowed; allowed: "
     r"\['gan', 'vae'\]"),
])
def test_bad_vae_configs(idx_dir, field, value, match):
  c = _smoke(idx_dir)
  *parents, leaf = field.split('.')
  node = c
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    config_lib.validate(c, num_devices=1)


def test_unknown_vae_field(idx_dir):
  c = _smoke(idx_dir)
  c.penalty = 'gp'  # a GAN field
  with pytest.raises(config_lib.ConfigError, match='config.penalty: unknown '
                     'field'):
    config_lib.validate(c, num_devices=1)


TWO_DEVICES = r'''
import json, sys
import jax, numpy as np
from experiments.configs import vae
from gan_stability.train import train_and_evaluate
assert jax.device_count() == 2
out = []
for n in (1, 2):
  c = vae.get_config('smoke_cond')
  c.data.dir = sys.argv[1]
  c.num_devices = n
  c.num_steps = 2
  c.eval.metrics = ''
  r = train_and_evaluate(c, sys.argv[2] + f'/d{n}')
  out.append([r['neg_elbo'], r['nll'], r['kl_prior'], r['grad_norm'],
              r['sample_mean'], r['sample_std']])
np.testing.assert_allclose(out[1], out[0], rtol=2e-4, atol=1e-6)
print('OK', out[0])
'''


def test_vae_one_vs_two_devices(idx_dir, tmp_path):
  proc = run_python(['-c', TWO_DEVICES, str(idx_dir), str(tmp_path)],
                    devices=2, timeout=300)
  assert 'OK' in proc.stdout


def test_vae_seeds_cannot_share_a_vmapped_program(idx_dir, tmp_path):
  from gan_stability.train import seeds as seeds_lib
  c = _smoke(idx_dir)
  with pytest.raises(config_lib.ConfigError, match="config.family: 'vae' "
                     'runs cannot share one vmapped program'):
    seeds_lib.train_seeds(c, [0, 1], [str(tmp_path / 'a'),
                                       str(tmp_path / 'b')])
