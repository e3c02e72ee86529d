"""Faults a long run meets end in one clear line and a distinct status,
never a hang, and lose nothing: the rerun ends bit for bit where an
uninterrupted run does.

* A write that fails with ENOSPC in each writer (``metrics.jsonl``,
  TensorBoard, sample figures, a checkpoint failing in orbax's background
  thread, ``config.json``), injected by ``tests/faults/inject_train.py``;
  and a real full filesystem (a 600 KiB tmpfs, where the test may mount
  one).
* The same run started twice: the second is refused at once, naming the
  first; after the first is killed, a new run takes its stale lock over.
* SIGTERM while a checkpoint save cannot complete, and a second SIGTERM.
* Damaged ``config.json``, ``metrics.jsonl``, IDX files, classifier weights:
  one line naming the file, status 2, nothing in the workdir changed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, subprocess_env

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'golden'))
import runs  # pylint: disable=g-import-not-at-top,wrong-import-position

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'faults'))
import harness  # pylint: disable=g-import-not-at-top,wrong-import-position

INJECT = os.path.join(REPO, 'tests', 'faults', 'inject_train.py')
ARGS = ['--config=experiments/configs/mog.py:wgan_gp', '--config.seed=3',
        '--config.model.g_hidden=16', '--config.model.d_hidden=16',
        '--config.model.g_layers=2', '--config.model.d_layers=2',
        '--config.batch_size=32', '--config.n_critic=2',
        '--config.num_steps=40', '--config.steps_per_dispatch=10',
        '--config.log_every=10', '--config.eval_every=20',
        '--config.checkpoint_every=10', '--config.eval_samples=128']
EXIT_WRITE_FAILED = 4


def _train(workdir):
  """``experiments.train`` of ``ARGS`` in this process (its programs stay
  compiled between runs)."""
  from gan_stability.sweep import spec  # pylint: disable=g-import-not-at-top
  from gan_stability.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  return train_and_evaluate(spec.config_from_args(ARGS), str(workdir))


def _run(workdir, *, fault: str | None = None, extra=(), timeout=120):
  env = subprocess_env()
  cmd = [sys.executable]
  if fault:
    env['GAN_STABILITY_FAULT'] = fault
    cmd.append(INJECT)
  else:
    cmd += ['-m', 'experiments.train']
  t0 = time.monotonic()
  proc = subprocess.run(cmd + [f'--workdir={workdir}', *ARGS, *extra],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=timeout)
  return proc, time.monotonic() - t0


def _last_line(proc) -> str:
  return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''


def _records(workdir) -> str:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return f.read()


def _assert_same_run(got, want):
  assert _records(got) == _records(want)
  step_g, state_g, meta_g = runs.read_checkpoint(str(got))
  step_w, state_w, meta_w = runs.read_checkpoint(str(want))
  assert step_g == step_w and state_g.keys() == state_w.keys()
  for k, v in state_w.items():
    np.testing.assert_array_equal(state_g[k], v, err_msg=k)
  assert meta_g == meta_w


def _tree_digest(root) -> dict:
  out = {}
  for d, _, files in os.walk(root):
    for name in files:
      path = os.path.join(d, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  wd = tmp_path_factory.mktemp('faults_reference') / 'run'
  _train(wd)
  return wd


@pytest.mark.timeout(300)
@pytest.mark.parametrize('fault, what', [
    ('metrics', 'metrics'), ('tensorboard', 'TensorBoard events in'),
    ('samples', 'sample figure'), ('checkpoint', 'checkpoint')])
def test_a_failed_write_stops_the_run_and_the_rerun_loses_nothing(
    fault, what, reference, tmp_path):
  """In each writer, a write failing with ENOSPC mid-run (the 3rd record,
  an event of the 2nd record, the first figure, the 2nd checkpoint) raises
  WriteFailed naming it; the previous checkpoint stays; the rerun ends bit
  for bit as the uninterrupted run."""
  from gan_stability.errors import WriteFailed  # pylint: disable=g-import-not-at-top
  n = {'metrics': 3, 'tensorboard': 30, 'samples': 1, 'checkpoint': 2}[fault]
  wd = tmp_path / 'run'
  with harness.inject(fault, n), pytest.raises(WriteFailed) as e:
    _train(wd)
  message = str(e.value)
  assert message.startswith(f'cannot write the {what} {wd}'), message
  assert 'No space left on device' in message
  assert 'free on its filesystem' in message
  if fault == 'checkpoint':  # the failed save left nothing that counts
    assert sorted(os.listdir(wd / 'checkpoints')) == ['10']
  _train(wd)  # "space freed": the same run again
  _assert_same_run(wd, reference)


@pytest.mark.timeout(300)
def test_the_cli_says_one_line_and_exits_4(tmp_path):
  wd = tmp_path / 'run'
  proc, seconds = _run(wd, fault='config:1')
  assert proc.returncode == EXIT_WRITE_FAILED, proc.stderr[-3000:]
  assert seconds < 30  # startup included
  line = _last_line(proc)
  assert line.startswith(f'error: cannot write the config {wd}/config.json: '
                         'No space left on device ('), line
  assert 'Traceback' not in proc.stderr
  assert not os.path.exists(wd / 'config.json')


def _mount_tmpfs(path, size: str) -> bool:
  os.makedirs(path, exist_ok=True)
  try:
    return subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}',
                           'tmpfs', str(path)], capture_output=True,
                          timeout=30).returncode == 0
  except (OSError, subprocess.TimeoutExpired):
    return False


@pytest.mark.timeout(300)
def test_a_real_full_filesystem(reference, tmp_path):
  mount = tmp_path / 'small_fs'
  if not _mount_tmpfs(mount, '96k'):
    pytest.skip('cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)')
  try:
    wd = mount / 'run'
    proc, seconds = _run(wd)
    assert proc.returncode == EXIT_WRITE_FAILED, proc.stderr[-3000:]
    assert seconds < 60
    line = _last_line(proc)
    assert line.startswith('error: cannot write the '), line
    assert 'No space left on device' in line and 'free on its filesystem' in line
    assert 'Traceback' not in proc.stderr
    subprocess.run(['mount', '-o', 'remount,size=64m', str(mount)],
                   check=True, timeout=30)
    proc, _ = _run(wd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same_run(wd, reference)
  finally:
    subprocess.run(['umount', '-l', str(mount)], timeout=30)


@pytest.mark.timeout(300)
def test_the_same_run_started_twice(reference, tmp_path):
  wd = tmp_path / 'run'
  env = subprocess_env()
  first = subprocess.Popen(
      [sys.executable, '-m', 'experiments.train', f'--workdir={wd}', *ARGS],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  try:
    deadline = time.monotonic() + 120
    lock = wd / 'run.lock'
    while not (lock.exists() and lock.read_text()):
      assert first.poll() is None and time.monotonic() < deadline, (
          first.communicate()[1][-3000:] if first.poll() is not None else '')
      time.sleep(0.02)
    first.send_signal(signal.SIGSTOP)  # alive, holding the lock, frozen
    before = _tree_digest(wd)
    proc, seconds = _run(wd)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _last_line(proc)
    assert line.startswith(f'error: {wd}: in use by another run, pid '
                           f'{first.pid} on host '), line
    assert _tree_digest(wd) == before  # the second run wrote nothing
    first.kill()  # kill -9: its lock is now stale
    first.wait()
  finally:
    if first.poll() is None:
      first.kill()
      first.wait()
  proc, _ = _run(wd)
  assert proc.returncode == 0, proc.stderr[-3000:]
  _assert_same_run(wd, reference)


def _signal_when(wd, fault: str, ready, signals, *, extra=()):
  """Runs the injected CLI until ``ready()``, sends ``signals`` (a second
  one a second later); returns ``(status, stderr, seconds from the last
  signal to the exit)``."""
  env = dict(subprocess_env(), GAN_STABILITY_FAULT=fault)
  proc = subprocess.Popen(
      [sys.executable, INJECT, f'--workdir={wd}', *ARGS, *extra], cwd=REPO,
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.monotonic() + 120
    while not ready():
      assert proc.poll() is None and time.monotonic() < deadline
      time.sleep(0.05)
    for i, sig in enumerate(signals):
      if i:
        time.sleep(1.0)  # stuck saving: still running
        assert proc.poll() is None
      proc.send_signal(sig)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
  finally:
    if proc.poll() is None:
      proc.kill()
  return proc.returncode, err, time.monotonic() - t0


@pytest.mark.timeout(300)
def test_sigterm_while_a_save_cannot_complete(tmp_path):
  """The 2nd save (step 20) never finishes: after a SIGTERM the run exits
  5 s later (--stop_timeout_s=5) with status 4, saying so; the complete
  checkpoint of step 10 is kept."""
  wd = tmp_path / 'run'
  status, err, seconds = _signal_when(
      wd, 'hang_save:2',  # samples/ appears at step 20's evaluation
      lambda: (wd / 'checkpoints' / '10').exists() and (wd / 'samples').exists(),
      [signal.SIGTERM], extra=['--stop_timeout_s=5'])
  assert status == EXIT_WRITE_FAILED, err[-3000:]
  assert seconds < 20
  assert err.strip().splitlines()[-1].startswith(
      'error: the run did not stop within 5 s of SIGTERM')
  assert [d for d in os.listdir(wd / 'checkpoints') if d.isdigit()] == ['10']
  assert runs.read_checkpoint(str(wd))[0] == 10


@pytest.mark.timeout(120)
def test_a_second_sigterm_exits_at_once(tmp_path):
  wd = tmp_path / 'run'
  status, err, seconds = _signal_when(
      wd, 'hang_save:1', lambda: (wd / 'metrics.jsonl').exists(),
      [signal.SIGTERM, signal.SIGTERM])  # the default stop timeout is 120 s
  assert seconds < 5
  assert status == 143, err[-3000:]
  assert 'SIGTERM after SIGTERM: exiting at once' in err


@pytest.mark.timeout(300)
def test_damaged_run_files_are_one_line_and_change_nothing(reference,
                                                           tmp_path):
  cases = {
      'config.json': (lambda p: p.write_text('{"seed": 3, "loss": '),
                      'config.json: damaged'),
      'metrics.jsonl': (lambda p: p.write_text(
          p.read_text().replace('{"step": 20', '{"step" 20', 1)),
                        'metrics.jsonl: line 2 is not a JSON record'),
  }
  for name, (damage, needle) in cases.items():
    wd = tmp_path / name / 'run'
    shutil.copytree(reference, wd)
    damage(wd / name)
    before = _tree_digest(wd)
    proc, _ = _run(wd, extra=['--config.num_steps=50'])
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _last_line(proc)
    assert line.startswith(f'error: {wd}/') and needle in line, line
    assert 'Traceback' not in proc.stderr
    assert _tree_digest(wd) == before


def test_a_cut_last_line_of_metrics_is_dropped(tmp_path):
  from gan_stability import writers  # pylint: disable=g-import-not-at-top
  (tmp_path / 'metrics.jsonl').write_text(
      '{"step": 1, "a": 1.0}\n{"step": 2, "a": 2.0}\n{"step": 3, "a"')
  assert writers.read_metrics(str(tmp_path)) == [{'step': 1, 'a': 1.0},
                                                 {'step': 2, 'a': 2.0}]


def test_damaged_idx_files_name_the_file(tmp_path):
  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  from gan_stability.errors import DamagedFile  # pylint: disable=g-import-not-at-top
  good = idx.write_random_digits(str(tmp_path / 'good'), num_train=8,
                                 num_test=4, seed=0)
  images = os.path.join('train-images-idx3-ubyte.gz')
  labels = os.path.join('train-labels-idx1-ubyte.gz')

  def damaged(name, content_fn):
    d = tmp_path / name
    shutil.copytree(good, d)
    content_fn(d)
    return str(d)

  def truncate(d):
    data = (d / images).read_bytes()
    (d / images).write_bytes(data[:len(data) // 2])

  def bad_magic(d):
    raw = gzip.decompress((d / images).read_bytes())
    (d / images).write_bytes(gzip.compress(b'\x01\x02' + raw[2:]))

  def count_mismatch(d):
    raw = gzip.decompress((d / labels).read_bytes())
    header = raw[:4] + (7).to_bytes(4, 'big')
    (d / labels).write_bytes(gzip.compress(header + raw[8:8 + 7]))

  for name, fn, needle in [
      ('truncated', truncate, 'damaged gzip data'),
      ('magic', bad_magic, 'not an IDX file'),
      ('count', count_mismatch, 'expected 8 labels')]:
    d = damaged(name, fn)
    with pytest.raises(DamagedFile, match=needle) as e:
      idx.load_idx_dataset(d, 'train')
    assert str(e.value).startswith(os.path.join(d, '')), str(e.value)


def test_damaged_classifier_weights_name_the_file(tmp_path):
  from gan_stability.errors import DamagedFile  # pylint: disable=g-import-not-at-top
  from gan_stability.metrics import classifier  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'weights.npz'
  path.write_bytes(b'PK\x03\x04 not really a zip')
  with pytest.raises(DamagedFile, match=r'weights\.npz: damaged MNIST '
                     r'classifier weights'):
    classifier.load_classifier(str(path))


_HOLD_LOCK = r'''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
os.write(fd, b'{"pid": %d, "host": "h", "started": "t"}' % os.getpid())
print('locked', flush=True)
time.sleep(120)
'''


@pytest.mark.timeout(120)
def test_a_sweep_skips_a_point_another_process_is_training(tmp_path):
  """Two copies of one sweep: a point whose run directory is locked by the
  other copy is ``busy`` (skipped, no DONE), the rest run."""
  from gan_stability.sweep import runner, spec as sw  # pylint: disable=g-import-not-at-top
  sweep = sw.Sweep(base='experiments/configs/mog.py:smoke',
                   overrides={'write_tensorboard': False,
                              'write_samples': False},
                   axes=sw.axis('seed', [0, 1]))
  points = sw.expand(sweep)
  units = sw.units(sweep, points)
  busy_dir = runner.run_dir(str(tmp_path), points[0])
  os.makedirs(busy_dir)
  holder = subprocess.Popen(
      [sys.executable, '-c', _HOLD_LOCK, os.path.join(busy_dir, 'run.lock')],
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == 'locked\n'
    logs = []
    statuses = runner.run('unused', str(tmp_path), units, log=logs.append)
  finally:
    holder.kill()
    holder.wait()
  assert statuses == {'seed=0': runner.BUSY, 'seed=1': 'ok'}
  assert not runner.is_done(busy_dir)
  assert any('BUSY' in l and f'pid {holder.pid}' in l for l in logs), logs
