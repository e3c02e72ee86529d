"""The CAS command (experiments/cas.py) and the conditioning path end to end:
a class-conditional VAE trained briefly on separable "block" images draws
samples that a classifier assigns to the requested class far above chance,
and a classifier trained on those samples classifies real test images."""

from __future__ import annotations

import csv
import os

import jax
import numpy as np
import pytest

from conftest import block_images, run_python
from experiments import cas as cas_cmd
from experiments.configs import vae as vae_configs
from gan_stability.data import idx
from gan_stability.metrics import cas, classifier
from gan_stability.train import tasks, train_and_evaluate
from gan_stability.train.workdir import load_run_config


def _write_blocks(directory):
  os.makedirs(directory, exist_ok=True)
  for split, n, seed in (('train', 400, 0), ('test', 100, 1)):
    x, y = block_images(n, seed)
    images, labels = idx._SPLIT_FILES[split]  # pylint: disable=protected-access
    idx.write_idx(os.path.join(directory, images + '.gz'), x)
    idx.write_idx(os.path.join(directory, labels + '.gz'), y.astype(np.uint8))
  return str(directory)


def test_conditional_vae_samples_follow_the_requested_class(tmp_path):
  """120 steps of a small conditional VAE: GAN-test agreement of its samples
  with the requested labels >= 0.8 (chance 0.1), and CAS of 200 samples on
  the real test blocks >= 0.8."""
  data = _write_blocks(tmp_path / 'blocks')
  c = vae_configs.get_config('smoke_cond')
  c.data.dir = data
  c.model.update(g_width=16, e_width=16, z_dim=8)
  c.batch_size = 32
  c.num_steps = 120
  c.log_every = c.eval_every = c.checkpoint_every = 120
  c.steps_per_dispatch = 10
  c.eval_samples = 10
  train_and_evaluate(c, str(tmp_path / 'run'))
  sample_fn, _ = tasks.restore_sampler(
      load_run_config(str(tmp_path / 'run')), str(tmp_path / 'run'))
  labels = cas.balanced_labels(200)
  samples = sample_fn(jax.random.key(0), 200, labels)
  train_x, train_y = idx.load_idx_dataset(data, 'train')
  test_x, test_y = idx.load_idx_dataset(data, 'test')
  judge, _ = classifier.train_classifier(train_x, train_y, epochs=2, seed=0,
                                         batch_size=32, learning_rate=3e-3)
  assert classifier.evaluate(judge, test_x, test_y)['accuracy'] >= 0.95
  agree = cas.label_agreement(judge, samples, labels)
  assert agree['accuracy'] >= 0.8, agree
  score = cas.classification_accuracy_score(
      samples, labels, test_x, test_y, epochs=3, seed=0, batch_size=32,
      learning_rate=3e-3)
  assert score['accuracy'] >= 0.8, score


def test_parse_runs_and_balanced_subset():
  assert cas_cmd.parse_runs(['GAN=/a', 'VAE=/b=c']) == [('GAN', '/a'),
                                                        ('VAE', '/b=c')]
  for bad, match in ((['GAN'], 'expected NAME=WORKDIR'),
                     (['A=/x', 'A=/y'], 'given twice'),
                     (['Real=/x'], "'Real' is the real-data row")):
    with pytest.raises(ValueError, match=match):
      cas_cmd.parse_runs(bad)
  labels = np.arange(1000) % 10
  rows = cas_cmd.balanced_subset(labels, 50, seed=3)
  assert len(set(rows)) == 50 and np.all(np.bincount(labels[rows]) == 5)
  np.testing.assert_array_equal(rows, cas_cmd.balanced_subset(labels, 50,
                                                              seed=3))
  with pytest.raises(ValueError, match='multiple of 10'):
    cas_cmd.balanced_subset(labels, 55)
  with pytest.raises(ValueError, match='class 3 has only'):
    cas_cmd.balanced_subset(np.r_[labels[labels != 3], 3], 500)


def test_unconditional_run_is_refused(tmp_path):
  c = vae_configs.get_config('smoke')
  c.data.dir = idx.write_random_digits(str(tmp_path / 'd'))
  c.num_steps = 1
  train_and_evaluate(c, str(tmp_path / 'run'))
  with pytest.raises(ValueError, match='needs a class-conditional model'):
    cas_cmd._load_sampler(str(tmp_path / 'run'))  # pylint: disable=protected-access


def test_cas_quick_writes_the_table(tmp_path):
  out = tmp_path / 'out'
  run_python(['-m', 'experiments.cas', '--quick', f'--out={out}'],
             timeout=400)
  with open(out / 'summary.csv') as f:
    summary = list(csv.DictReader(f))
  assert [r['row'] for r in summary] == ['Real', 'Real, 2 epochs', 'GAN',
                                         'Real + GAN', 'VAE', 'Real + VAE']
  assert [int(r['num_train']) for r in summary] == [60, 60, 60, 120, 60, 120]
  for r in summary:
    assert 0 <= float(r['cas_mean']) <= 1 and np.isfinite(float(r['cas_se']))
    assert int(r['seeds']) == 2
  for r in summary:
    if r['row'] in ('GAN', 'VAE'):
      for k in ('gan_test_pct', 'cfid', 'precision', 'recall', 'coverage',
                'nn_median_ratio'):
        assert np.isfinite(float(r[k])), (r['row'], k)
  with open(out / 'cas.csv') as f:
    per_seed = list(csv.DictReader(f))
  assert len(per_seed) == 12
  text = (out / 'cas.md').read_text()
  assert '| Real + VAE | 120 |' in text
  assert (out / 'samples_GAN.png').exists() and (out / 'samples_VAE.png').exists()
  assert classifier.load_classifier(str(out / 'judge_classifier.npz'))
