"""Reliability: SIGKILL at random points, SIGTERM preemption, a kill during
a checkpoint save, damaged checkpoints, the divergence guard, determinism.

Exactness is always checked bitwise against an uninterrupted run of the same
command (parameters, optimiser/spectral-norm/EMA states, data position, and
metrics.jsonl)."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from experiments.configs import mog
from gan_stability import data as data_lib
from gan_stability import models
from gan_stability.checkpoint import Checkpointer
from gan_stability.train import DivergenceError, init_state, train_and_evaluate
from gan_stability.train import workdir as workdir_lib

from conftest import REPO, run_python, subprocess_env, write_fake_idx

MOG_ARGS = ['--config=experiments/configs/mog.py:sngan',
            '--config.model.g_hidden=16', '--config.model.d_hidden=16',
            '--config.batch_size=16', '--config.n_critic=2',
            '--config.num_steps=14', '--config.steps_per_dispatch=1',
            '--config.log_every=1', '--config.eval_every=7',
            '--config.checkpoint_every=1', '--config.eval_samples=64',
            '--config.ema_decay=0.9', '--config.write_tensorboard=False']


def _image_args(idx_dir):
  return ['--config=experiments/configs/mnist.py:smoke',
          f'--config.data.dir={idx_dir}', '--config.num_steps=10',
          '--config.checkpoint_every=1', '--config.log_every=1',
          '--config.eval_every=5', '--config.ema_decay=0.9',
          '--config.write_tensorboard=False']


def _env():
  return subprocess_env(1)


def _start(args, wd):
  return subprocess.Popen(
      [sys.executable, '-m', 'experiments.train', f'--workdir={wd}'] + args,
      cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)


def _lines(wd):
  path = os.path.join(wd, 'metrics.jsonl')
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return sum(1 for l in f if l.strip())


def _run_until(args, wd, until, *, sig=signal.SIGKILL, timeout=240):
  """Starts the run and sends ``sig`` once ``until(wd)`` is true."""
  proc = _start(args, wd)
  t0 = time.time()
  try:
    while proc.poll() is None:
      if until(wd):
        proc.send_signal(sig)
        break
      if time.time() - t0 > timeout:
        pytest.fail('run did not reach the kill point in time')
      time.sleep(0.002)
    out, _ = proc.communicate(timeout=timeout)
  finally:
    if proc.poll() is None:
      proc.kill()
  return proc.returncode, out


def _complete(args, wd):
  return run_python(['-m', 'experiments.train', f'--workdir={wd}'] + args,
                    timeout=300)


def _final_state(wd, dataset_shape, config):
  g, d = models.build(config.model, dataset_shape)
  st = init_state(config, g, d, jax.random.key(0), dataset_shape)
  ck = Checkpointer(os.path.join(wd, 'checkpoints'))
  step, st, meta, _ = ck.restore_latest(st)
  ck.close()
  return step, st, meta


def _assert_same_run(wd_a, wd_b):
  from gan_stability.train.workdir import load_run_config
  ca, cb = load_run_config(wd_a), load_run_config(wd_b)
  shape = data_lib.make_iterator(ca, seed=0).element_shape
  sa, a, ma = _final_state(wd_a, shape, ca)
  sb, b, mb = _final_state(wd_b, shape, cb)
  assert sa == sb and ma == mb
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert (open(os.path.join(wd_a, 'metrics.jsonl')).read()
          == open(os.path.join(wd_b, 'metrics.jsonl')).read())


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  return write_fake_idx(str(tmp_path_factory.mktemp('idx')), num_train=48)


@pytest.fixture(scope='module')
def mog_ref(tmp_path_factory):
  """The uninterrupted run of :data:`MOG_ARGS`, which every MoG test here
  compares with (its checkpoint cadence differs in some, which changes
  neither the metrics nor the final state); computed once per test
  process."""
  ref = str(tmp_path_factory.mktemp('mog') / 'ref')
  _complete(MOG_ARGS, ref)
  return ref


@pytest.mark.parametrize('kind', ['mog', 'image'])
def test_sigkill_at_three_random_points_resumes_bitwise(kind, idx_dir,
                                                        tmp_path, request):
  args = MOG_ARGS if kind == 'mog' else _image_args(idx_dir)
  total = 14 if kind == 'mog' else 10
  if kind == 'mog':
    ref = request.getfixturevalue('mog_ref')
  else:
    ref = str(tmp_path / 'ref')
    _complete(args, ref)
  wd = str(tmp_path / 'killed')
  rng = np.random.default_rng(7 if kind == 'mog' else 8)
  # three kill points: after k records (k random, increasing), each a random
  # extra delay (0-40 ms) later, so some land inside steps or saves.
  points = np.sort(rng.choice(np.arange(1, total - 1), size=3, replace=False))
  for k in points:
    delay = rng.uniform(0.0, 0.04)
    state = {}

    def until(w, k=k, delay=delay, state=state):
      if _lines(w) < k:
        return False
      state.setdefault('t', time.time())
      return time.time() - state['t'] >= delay
    code, out = _run_until(args, wd, until)
    assert code in (-signal.SIGKILL, 0), out[-2000:]
  _complete(args, wd)
  _assert_same_run(ref, wd)


def test_sigterm_checkpoints_and_exits_143_then_resumes(tmp_path, mog_ref):
  args = [a for a in MOG_ARGS if not a.startswith('--config.checkpoint_every')]
  # SIGTERM must save between these (under load the signal may land a few
  # steps after the 3rd record is seen)
  args += ['--config.checkpoint_every=13']
  wd = str(tmp_path / 'term')
  t0 = time.time()
  code, out = _run_until(args, wd, lambda w: _lines(w) >= 3, sig=signal.SIGTERM)
  assert code == workdir_lib.EXIT_PREEMPTED, out[-2000:]
  assert 'preempted (SIGTERM): checkpoint saved at step' in out
  assert time.time() - t0 < 120
  step = Checkpointer(os.path.join(wd, 'checkpoints')).latest_step()
  assert step is not None and 3 <= step < 13
  _complete(args, wd)
  _assert_same_run(mog_ref, wd)


def test_sigkill_during_a_save_keeps_the_previous_checkpoint(tmp_path, mog_ref):
  wd = str(tmp_path / 'w')

  def saving(w):
    return bool(glob.glob(os.path.join(w, 'checkpoints', '*tmp*')))
  code, out = _run_until(MOG_ARGS, wd, saving)
  assert code == -signal.SIGKILL, 'no save was caught in progress:\n' + out[-1500:]
  _complete(MOG_ARGS, wd)
  _assert_same_run(mog_ref, wd)


def _smoke(**kw):
  c = mog.get_config('smoke')
  c.update(write_tensorboard=False, write_samples=False, **kw)
  return c


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path):
  c = _smoke(num_steps=8, checkpoint_every=2, keep_checkpoints=3)
  ref = str(tmp_path / 'ref')
  train_and_evaluate(c, ref)
  wd = str(tmp_path / 'w')
  first = c.copy_and_resolve_references()
  first.num_steps = 6
  train_and_evaluate(first, wd)
  # truncate the largest file of the newest checkpoint (step 6)
  files = [f for f in glob.glob(os.path.join(wd, 'checkpoints', '6', '**', '*'),
                                recursive=True) if os.path.isfile(f)]
  victim = max(files, key=os.path.getsize)
  with open(victim, 'r+b') as f:
    f.truncate(os.path.getsize(victim) // 3)
  result = train_and_evaluate(c, wd)
  assert result['step'] == 8
  assert os.path.isdir(os.path.join(wd, 'checkpoints.corrupt', '6'))
  recs = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  note = [r for r in recs if 'unreadable_checkpoints' in r]
  assert note and note[0]['unreadable_checkpoints'] == [6] and note[0]['step'] == 4
  # the resumed run from step 4 ends exactly where the uninterrupted one did
  shape = (2,)
  _, a, _ = _final_state(ref, shape, c)
  _, b, _ = _final_state(wd, shape, c)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_incompatible_checkpoints_give_a_clear_error_and_are_kept(tmp_path):
  wd = str(tmp_path / 'w')
  train_and_evaluate(_smoke(num_steps=4, checkpoint_every=2), wd)
  # Same config file, different model: every checkpoint mismatches in shape.
  cfg = json.load(open(os.path.join(wd, 'config.json')))
  cfg['model']['d_hidden'] = 7
  json.dump(cfg, open(os.path.join(wd, 'config.json'), 'w'))
  c = _smoke(num_steps=6, checkpoint_every=2)
  c.model.d_hidden = 7
  with pytest.raises(RuntimeError, match=r'no checkpoint in .*checkpoints can '
                     r'be restored[\s\S]*checkpoints/4'):
    train_and_evaluate(c, wd)
  assert sorted(os.listdir(os.path.join(wd, 'checkpoints'))) == ['2', '4']


class _NaNAt:
  """Wraps a data iterator and returns NaNs for batch number ``at``."""

  def __init__(self, inner, at):
    self.inner, self.at, self.count = inner, at, 0
    self.element_shape = inner.element_shape

  def __iter__(self):
    return self

  def __next__(self):
    batch = next(self.inner)
    self.count += 1
    if self.count == self.at:
      return {**batch, 'x': np.full_like(batch['x'], np.nan)}
    return batch

  def get_state(self):
    return self.inner.get_state()

  def set_state(self, s):
    self.inner.set_state(s)


@pytest.mark.parametrize('mode', ['stop', 'rollback'])
def test_injected_nan_stops_or_rolls_back(mode, tmp_path, monkeypatch):
  real = data_lib.make_iterator
  # batch 11 = step 6 (n_critic 2): its first D update sees NaN data
  monkeypatch.setattr(data_lib, 'make_iterator',
                      lambda c, seed: _NaNAt(real(c, seed=seed), 11))
  c = _smoke(num_steps=10, checkpoint_every=2, n_critic=2, on_divergence=mode,
             max_rollbacks=2)
  wd = str(tmp_path / mode)
  if mode == 'stop':
    with pytest.raises(DivergenceError, match=r'step 6 \(discriminator'):
      train_and_evaluate(c, wd)
  else:
    assert train_and_evaluate(c, wd)['step'] == 10
  recs = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  bad = [r for r in recs if r.get('diverged')]
  assert len(bad) == 1 and bad[0]['network'] == 'discriminator'
  if mode == 'rollback':
    assert bad[0]['rollback'] == 1 and bad[0]['diverged_at'] == 6
    assert bad[0]['step'] == 4  # back to the checkpoint of step 4
  # every checkpoint left is finite; none was written for the diverged state
  ck = Checkpointer(os.path.join(wd, 'checkpoints'))
  steps = ck.all_steps()
  ck.close()
  assert max(steps) == (4 if mode == 'stop' else 10)
  _, st, meta = _final_state(wd, (2,), c)
  assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(st)
             if np.issubdtype(np.asarray(x).dtype, np.floating))
  if mode == 'rollback':
    assert meta['rollbacks'] == 1


def test_same_seed_same_metrics(tmp_path):
  c = _smoke(num_steps=6)
  train_and_evaluate(c, str(tmp_path / 'a'))
  train_and_evaluate(c, str(tmp_path / 'b'))
  assert (open(tmp_path / 'a' / 'metrics.jsonl').read()
          == open(tmp_path / 'b' / 'metrics.jsonl').read())
