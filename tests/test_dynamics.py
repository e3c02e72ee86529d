"""Training-dynamics diagnostics, the online alarms, and the evaluation CLI."""

import json
import os

import jax
import numpy as np
import pytest

from experiments.configs import mnist, mog
from gan_stability import models
from gan_stability.metrics import dynamics
from gan_stability.train import train_and_evaluate

from conftest import run_python, write_fake_idx


def test_kernel_sigma_is_the_largest_singular_value():
  assert dynamics.kernel_sigma(np.diag([3.0, -5.0, 1.0])) == pytest.approx(5.0)
  k = np.random.default_rng(0).normal(size=(4, 4, 3, 8))
  ref = np.linalg.svd(k.reshape(48, 8), compute_uv=False)[0]
  assert dynamics.kernel_sigma(k) == pytest.approx(ref, rel=1e-12)


def test_layer_sigmas_with_converged_spectral_norm():
  c = mnist.get_config('sngan')
  c.model.update(g_width=8, d_width=8)
  _, d = models.build(c.model, (28, 28, 1))
  x = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
  v = d.init(jax.random.key(1), x)
  for _ in range(60):  # power iteration to convergence
    _, upd = d.apply(v, x, update_stats=True, mutable=['spectral_stats'])
    v = {**v, **upd}
  out = dynamics.layer_sigmas(v['params'], v['spectral_stats'], prefix='s/')
  for layer in ('conv_0', 'conv_1', 'out'):
    k = np.asarray(v['params'][layer]['kernel'])
    assert out[f's/{layer}'] == pytest.approx(dynamics.kernel_sigma(k))
    assert out[f's/{layer}/normalized'] == pytest.approx(1.0, abs=1e-3)


def test_sample_diversity_hand_values():
  x = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 4.0], [1.0, 1.0]])
  # halves: (0,0)-(3,4) -> 25, (1,1)-(1,1) -> 0; mean over 4 entries = 25/4
  assert dynamics.sample_diversity(x) == pytest.approx(2.5)
  assert dynamics.sample_diversity(np.ones((10, 3, 3, 1))) == 0.0
  with pytest.raises(ValueError, match='>= 2'):
    dynamics.sample_diversity(np.ones((1, 2)))


def test_monitor_alarms():
  m = dynamics.DynamicsMonitor(grad_factor=10, collapse_ratio=0.2,
                               min_history=3)
  # too little history: no alarm even for a large value
  assert m.update({'g_grad_norm': 1.0}) == []
  assert m.update({'g_grad_norm': 1e6}) == []
  m2 = dynamics.DynamicsMonitor(grad_factor=10, collapse_ratio=0.2,
                                min_history=3)
  for v in (1.0, 1.0, 1.0):
    assert m2.update({'d_grad_norm': v}) == []
  assert m2.update({'d_grad_norm': 10.5}) == ['exploding_gradient:d']
  assert m2.update({'d_grad_norm': 9.0}) == []  # median 1.0 -> 9 < 10
  assert m2.update({'diversity': 1.0}) == []
  assert m2.update({'diversity': 0.5}) == []
  assert m2.update({'diversity': 0.19}) == ['collapse']
  off = dynamics.DynamicsMonitor(grad_factor=0, collapse_ratio=0)
  for v in (1.0, 1.0, 1.0, 1e9):
    assert off.update({'d_grad_norm': v, 'diversity': 1.0 / v}) == []


def test_loop_logs_sigmas_and_diversity_and_evaluate_cli(tmp_path):
  c = mog.get_config('smoke')
  c.update(write_tensorboard=False, num_steps=4)
  wd = str(tmp_path / 'run')
  train_and_evaluate(c, wd)
  recs = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  last = recs[-1]
  # the logged sigmas are those of the final D (checkpointed at the end)
  from gan_stability.train.tasks import restore_sampler
  from gan_stability.train.workdir import load_run_config
  from gan_stability.checkpoint import Checkpointer
  from gan_stability.train import init_state
  g, d = models.build(c.model, (2,))
  st = init_state(c, g, d, jax.random.key(0), (2,))
  ck = Checkpointer(os.path.join(wd, 'checkpoints'))
  st, _ = ck.restore(4, st)
  ck.close()
  expect = dynamics.layer_sigmas(jax.device_get(st.d_params), prefix='d_sigma/')
  assert expect and {k: last[k] for k in expect} == pytest.approx(expect)
  assert last['diversity'] > 0

  proc = run_python(['-m', 'experiments.evaluate', f'--workdir={wd}',
                     '--num_samples=300', '--seed=5'], timeout=300)
  assert 'evaluate:' in proc.stdout
  rec = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))][-1]
  assert rec['evaluate_only'] is True and rec['step'] == 4
  assert rec['eval_num_samples'] == 300
  # the same numbers from the library, computed independently here
  from gan_stability.data import mixtures
  from gan_stability.metrics import mode_metrics
  cfg = load_run_config(wd)
  cfg.eval_samples = 300
  sample_fn, step = restore_sampler(cfg, wd)
  samples = sample_fn(jax.random.fold_in(jax.random.key(5), step), 300)
  mix = mixtures.from_config(cfg)
  ref = mode_metrics(samples, mix.centers, mix.sigma)
  for k in ('modes', 'high_quality', 'kl'):
    assert rec[k] == pytest.approx(ref[k], rel=1e-9)


def test_image_metrics_in_classifier_space(tmp_path):
  """``digits`` and ``cfid`` of an MNIST run equal the numbers computed
  directly from the classifier and the FID formula."""
  from gan_stability.metrics import classifier, fid_kid as fid_lib, modes
  from gan_stability.eval.offline import evaluate_checkpoint
  from gan_stability.train.tasks import restore_sampler
  from gan_stability.train.workdir import load_run_config
  from gan_stability import data as data_lib
  idx = write_fake_idx(str(tmp_path / 'idx'), num_train=64)
  c = mnist.get_config('smoke')
  c.data.dir = idx
  c.eval.update(metrics='digits,cfid', num_real=40)
  c.update(eval_samples=16, write_tensorboard=False)
  wd = str(tmp_path / 'run')
  train_and_evaluate(c, wd)
  rec = evaluate_checkpoint(wd, num_samples=32, seed=1)
  cfg = load_run_config(wd)
  sample_fn, step = restore_sampler(cfg, wd)
  fake = sample_fn(jax.random.fold_in(jax.random.key(1), step), 32)
  assert cfg.eval.quantize  # the metrics see the samples as uint8 pixels
  from gan_stability.metrics import inception
  fake = inception.quantize(fake)
  params = classifier.load_classifier()
  counts = modes.mode_histogram(classifier.predict(params, fake), 10)
  assert rec['digit_modes'] == int(np.sum(counts > 0))
  assert rec['digit_kl'] == pytest.approx(modes.kl_to_uniform(counts))
  logits = np.asarray(classifier.predict_logits(params, fake), np.float64)
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  assert rec['digit_confident'] == pytest.approx(np.mean(p.max(-1) >= 0.9))
  np.testing.assert_allclose(classifier.max_probability(logits), p.max(-1),
                             rtol=1e-12)
  np.testing.assert_allclose(classifier.max_probability(np.array([[1e4, 0.0]])),
                             [1.0])
  real = data_lib.load_images(cfg)[:40]
  ref = fid_lib.fid(classifier.features(params, real),
                    classifier.features(params, fake))
  assert rec['cfid'] == pytest.approx(ref, rel=1e-6)
  # the real statistics were cached for later evaluations
  assert os.listdir(os.path.join(wd, 'eval_cache'))
  # Held-out reference: the same evaluator on the real t10k images.
  from gan_stability.data import images as images_lib
  from gan_stability.eval.offline import evaluate_held_out
  held = evaluate_held_out(wd, split='test', num_samples=12)
  assert (held['split'], held['eval_num_samples']) == ('test', 12)
  test_cfg = load_run_config(wd)
  test_cfg.data.split = 'test'
  test_images = images_lib.scale_images(data_lib.load_images(test_cfg)[:12])
  counts = modes.mode_histogram(classifier.predict(params, test_images), 10)
  assert held['digit_modes'] == int(np.sum(counts > 0))
  assert held['cfid'] == pytest.approx(fid_lib.fid(
      classifier.features(params, real),
      classifier.features(params, test_images)), rel=1e-6)
