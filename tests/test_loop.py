"""The training loop and CLI: workdir contract, exact resume, divergence."""

import json
import os

import jax
import numpy as np
import pytest

from experiments.configs import mog
from gan_stability import config as config_lib
from gan_stability.checkpoint import Checkpointer
from gan_stability.train import DivergenceError, train_and_evaluate

from conftest import run_python


def _smoke(**kw):
  c = mog.get_config('smoke')
  c.write_tensorboard = False
  c.update(kw)
  return c


def test_cli_writes_the_workdir_contract(tmp_path):
  wd = tmp_path / 'run'
  proc = run_python(['-m', 'experiments.train',
                     '--config=experiments/configs/mog.py:smoke',
                     f'--workdir={wd}', '--config.dataset=grid',
                     '--config.num_steps=6', '--config.seed=3'], timeout=300)
  assert 'steps/s' in proc.stdout and 'ETA' in proc.stdout
  cfg = json.load(open(wd / 'config.json'))
  assert cfg['dataset'] == 'grid' and cfg['num_steps'] == 6 and cfg['seed'] == 3
  recs = [json.loads(l) for l in open(wd / 'metrics.jsonl')]
  assert [r['step'] for r in recs] == [2, 4, 6]
  for r in recs:
    for k in ('d_loss', 'g_loss', 'penalty', 'd_real', 'd_fake',
              'g_grad_norm', 'd_grad_norm'):
      assert np.isfinite(r[k]), k
  # eval at multiples of eval_every (4) and at the end
  assert {'modes', 'high_quality', 'kl'} <= set(recs[1]) and 'modes' in recs[2]
  assert 'modes' not in recs[0]
  assert 0 <= recs[2]['modes'] <= 25 and 0 <= recs[2]['high_quality'] <= 100
  assert sorted(os.listdir(wd / 'samples')) == ['step_0000004.png', 'step_0000006.png']
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(wd))
  assert Checkpointer(str(wd / 'checkpoints')).latest_step() == 6


def _final_params(wd, config):
  from gan_stability import models
  from gan_stability.train import init_state
  g, d = models.build(config.model, (2,))
  st = init_state(config, g, d, jax.random.key(0), (2,))
  ck = Checkpointer(os.path.join(wd, 'checkpoints'))
  st, meta = ck.restore(ck.latest_step(), st)
  ck.close()
  return st, meta


@pytest.mark.parametrize('variant', ['sngan'])
def test_resume_is_bitwise_identical(tmp_path, variant, capsys):
  """A run stopped at step 4 and relaunched to 8 equals an uninterrupted run:
  parameters, optimiser and spectral-norm states, data position, metrics.
  (WGAN-GP: the 0.1.0 workdir of tests/test_golden_runs.py, stopped at half
  its steps, resumes to its golden.)"""
  base = mog.get_config(variant)
  smoke = _smoke()
  base.update(num_steps=8, steps_per_dispatch=2, log_every=2, eval_every=4,
              checkpoint_every=2, batch_size=32, eval_samples=128,
              write_tensorboard=False, write_samples=False, n_critic=2)
  base.model.update(smoke.model.to_dict())
  base.model.spectral_norm = variant == 'sngan'
  full = str(tmp_path / 'full')
  train_and_evaluate(base, full)
  part = str(tmp_path / 'part')
  first = base.copy_and_resolve_references()
  first.num_steps = 4
  train_and_evaluate(first, part)
  train_and_evaluate(base, part)  # the same command again, longer
  a, meta_a = _final_params(full, base)
  b, meta_b = _final_params(part, base)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert meta_a == meta_b == {'data': {'index': 16}, 'step': 8, 'pending': {},
                              'rollbacks': 0}
  ra = open(os.path.join(full, 'metrics.jsonl')).read()
  rb = open(os.path.join(part, 'metrics.jsonl')).read()
  assert ra == rb
  # Running a finished run again trains nothing and reports the same eval.
  again = train_and_evaluate(base, part)
  assert again['step'] == 8
  assert again['modes'] == json.loads(ra.splitlines()[-1])['modes']


def test_resume_refuses_a_different_config(tmp_path):
  wd = str(tmp_path / 'w')
  train_and_evaluate(_smoke(num_steps=2), wd)
  with pytest.raises(config_lib.ConfigError, match=r'^config\.loss: differs'):
    train_and_evaluate(_smoke(num_steps=4, loss='hinge'), wd)
  # A linear LR schedule depends on num_steps, so it cannot change on resume.
  wd2 = str(tmp_path / 'w2')
  c = _smoke(num_steps=2)
  c.optimizer.lr_schedule = 'linear'
  train_and_evaluate(c, wd2)
  c.num_steps = 4
  with pytest.raises(config_lib.ConfigError, match=r'^config\.num_steps'):
    train_and_evaluate(c, wd2)


def test_divergence_is_detected_and_keeps_the_last_good_checkpoint(tmp_path):
  wd = str(tmp_path / 'w')
  c = _smoke(num_steps=4, checkpoint_every=2)
  train_and_evaluate(c, wd)
  good = _final_params(wd, c)[0]
  # An absurd learning rate makes the losses non-finite within a few steps.
  c2 = _smoke(num_steps=40, checkpoint_every=2)
  c2.optimizer.update(d_lr=1e30, g_lr=1e30)
  c2.optimizer.name = 'sgd'
  c2.optimizer.b1 = 0.0
  wd2 = str(tmp_path / 'w2')
  with pytest.raises(DivergenceError, match='non-finite'):
    train_and_evaluate(c2, wd2)
  recs = [json.loads(l) for l in open(os.path.join(wd2, 'metrics.jsonl'))]
  assert recs[-1]['diverged'] is True
  ck = Checkpointer(os.path.join(wd2, 'checkpoints'))
  steps = ck.all_steps()
  ck.close()
  assert steps == [] or max(steps) < recs[-1]['step']
  del good
