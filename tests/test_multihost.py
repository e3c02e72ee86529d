"""Multi-host for real: several processes on this CPU stand in for hosts
(``experiments.launch``, JAX's distributed runtime with gloo collectives).

Every run is a subprocess with a timeout; a launcher killed by the timeout
takes its processes with it (they die with their parent), so nothing hangs.

* 2 processes x 1 device against 1 process x 2 fake devices: the same
  ``metrics.jsonl``, evaluation samples and final state (MoG WGAN-GP, MoG
  SN-GAN, a DCGAN with batch norm and an EMA of G; the golden cases'
  commands), each process feeding exactly its half of every global batch
  (recorded by tests/multihost/record_runs.py);
  offline evaluation across 2 processes equals the single-process one.
* A 2-process run is bitwise repeatable; SIGTERM to process 1 alone stops
  both at one step with status 143 and the rerun ends bit for bit where the
  uninterrupted run did; ``kill -9`` of process 1 ends process 0 with one
  line naming it (status 3) and the rerun completes, again bit for bit.
* The entry point: a missing id, an unreachable coordinator and a launched
  process without ``--multihost`` are one line and status 2.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import REPO, subprocess_env

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'golden'))
import runs  # pylint: disable=g-import-not-at-top,wrong-import-position

RECORD = os.path.join(REPO, 'tests', 'multihost', 'record_runs.py')


def _env(devices: int = 1) -> dict:
  env = subprocess_env(devices)
  for name in ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES',
               'JAX_PROCESS_ID'):
    env.pop(name, None)
  return env


class Job:
  """A launcher subprocess whose output is read as it comes."""

  def __init__(self, command: list[str], *, num_processes: int = 2,
               extra: list[str] = ()):
    self.proc = subprocess.Popen(
        [sys.executable, '-m', 'experiments.launch',
         f'--num_processes={num_processes}', *extra, '--', *command],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    self.lines: list[str] = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line)

  @property
  def output(self) -> str:
    return ''.join(self.lines)

  def pid(self, i: int) -> int:
    self.wait_for(rf'\[launch\] process {i}: pid (\d+)', timeout=30)
    return int(re.search(rf'\[launch\] process {i}: pid (\d+)',
                         self.output).group(1))

  def wait_for(self, pattern: str, *, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not re.search(pattern, self.output):
      if self.proc.poll() is not None or time.monotonic() > end:
        self.kill()
        pytest.fail(f'never printed {pattern!r}:\n{self.output[-4000:]}')
      time.sleep(0.05)

  def wait(self, timeout: float) -> int:
    try:
      code = self.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.kill()
      pytest.fail(f'job still running after {timeout} s:\n'
                  f'{self.output[-4000:]}')
    self._reader.join(timeout=10)
    return code

  def status(self, i: int) -> int:
    return int(re.search(rf'\[launch\] process {i} exited with status (\d+)',
                         self.output).group(1))

  def kill(self):
    if self.proc.poll() is None:
      self.proc.kill()  # its processes die with it (PR_SET_PDEATHSIG)
      self.proc.wait()


def _launch(command: list[str], timeout: float = 240) -> str:
  job = Job(command)
  code = job.wait(timeout)
  assert code == 0, job.output[-4000:]
  return job.output


def _case_args(case: str, idx: str) -> list[str]:
  return [a.replace('{IDX}', idx) for a in runs.CASES[case][1]]


def _single(args: list[str], devices: int, timeout: float = 240):
  proc = subprocess.run([sys.executable, *args], cwd=REPO,
                        env=_env(devices), capture_output=True, text=True,
                        timeout=timeout)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  return proc


def _records(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def _assert_records_close(got: list[dict], want: list[dict], rtol: float):
  assert [r['step'] for r in got] == [r['step'] for r in want]
  for g, w in zip(got, want):
    assert g.keys() == w.keys(), (g.keys() ^ w.keys())
    for k, v in w.items():
      if isinstance(v, float):
        np.testing.assert_allclose(g[k], v, rtol=rtol, atol=1e-7,
                                   err_msg=f'step {w["step"]} {k}')
      else:
        assert g[k] == v, (w['step'], k)


def _assert_same_state(got_dir: str, want_dir: str, *, rtol: float = 0.0):
  step_g, state_g, meta_g = runs.read_checkpoint(got_dir)
  step_w, state_w, meta_w = runs.read_checkpoint(want_dir)
  assert step_g == step_w and state_g.keys() == state_w.keys()
  for k, v in state_w.items():
    if rtol:
      np.testing.assert_allclose(state_g[k], v, rtol=rtol, atol=1e-7,
                                 err_msg=k)
    else:
      np.testing.assert_array_equal(state_g[k], v, err_msg=k)
  assert meta_g == meta_w


@pytest.fixture(scope='module')
def idx(tmp_path_factory):
  return runs.idx_dir(str(tmp_path_factory.mktemp('multihost_idx')))


CASES = ('mog_wgan_gp', 'mog_sngan', 'image_bn_ema')


@pytest.mark.timeout(900)
def test_two_processes_equal_two_devices(idx, tmp_path):
  """Each case in 2 processes x 1 device and in 1 process x 2 devices (the
  runs of each side in one process or job: tests/multihost/record_runs.py)."""
  one = {c: str(tmp_path / 'one_process' / c) for c in CASES}
  two = {c: str(tmp_path / 'two_processes' / c) for c in CASES}
  evaluate = {'num_samples': 16, 'metrics': 'cfid,digits'}
  plan = lambda dirs: json.dumps([
      [dirs[c], _case_args(c, idx)] + ([evaluate] if c == 'image_bn_ema'
                                       else []) for c in CASES])
  _single([RECORD, plan(one)], devices=2, timeout=600)
  _launch([sys.executable, RECORD, '--multihost', plan(two)], timeout=600)

  for case in CASES:
    _assert_records_close(_records(two[case]), _records(one[case]), rtol=1e-5)
    _assert_same_state(two[case], one[case], rtol=1e-5)
    ref = np.load(os.path.join(one[case], 'fed_p0.npz'))
    fed = [np.load(os.path.join(two[case], f'fed_p{i}.npz')) for i in (0, 1)]
    axis = int(ref['axis'])
    batches = sorted(k for k in ref if k.startswith('batch_'))
    assert batches and all(sorted(k for k in f if k.startswith('batch_'))
                           == batches for f in fed)
    for k in batches:
      half = ref[k].shape[axis] // 2
      # Each process fed its own rows, and only those: the first and the
      # second half of the global batch.
      for i, f in enumerate(fed):
        np.testing.assert_array_equal(
            f[k], np.take(ref[k], range(i * half, (i + 1) * half), axis=axis),
            err_msg=f'{case} {k} process {i}')
    samples = sorted(k for k in ref if k.startswith('samples_'))
    assert samples
    for k in samples:  # gathered on both processes, as on one
      for f in fed:
        np.testing.assert_allclose(f[k], ref[k], rtol=1e-5, atol=1e-6)

  # Offline evaluation of the image run: the classifier features computed
  # on 2 processes, the result on both, as on one.
  want = json.load(open(os.path.join(one['image_bn_ema'], 'evaluate_p0.json')))
  for i in (0, 1):
    got = json.load(open(os.path.join(two['image_bn_ema'],
                                      f'evaluate_p{i}.json')))
    assert got.keys() == want.keys()
    np.testing.assert_allclose(got['cfid'], want['cfid'], rtol=1e-5)
    assert got['digit_modes'] == want['digit_modes']

  # gan_stability.load: a checkpoint written by 2 processes loads on this
  # process's one device and samples as the 2-device run's does.
  from gan_stability import trained  # pylint: disable=g-import-not-at-top
  for case in ('mog_wgan_gp', 'image_bn_ema'):
    np.testing.assert_allclose(
        trained.load(two[case]).sample(16, seed=3, raw=True),
        trained.load(one[case]).sample(16, seed=3, raw=True),
        rtol=1e-5, atol=1e-6, err_msg=case)


_MOG_LONG = ['--config=experiments/configs/mog.py:wgan_gp', '--config.seed=1',
             '--config.n_critic=1',
             '--config.model.g_hidden=32', '--config.model.d_hidden=32',
             '--config.model.g_layers=2', '--config.model.d_layers=2',
             '--config.batch_size=64', '--config.num_steps=60',
             '--config.steps_per_dispatch=5', '--config.log_every=5',
             '--config.eval_every=30', '--config.checkpoint_every=20',
             '--config.eval_samples=256', '--config.write_tensorboard=False']


@pytest.mark.timeout(900)
def test_preemption_and_a_lost_process(tmp_path):
  train = [sys.executable, '-m', 'experiments.train', '--multihost',
           '--heartbeat_timeout_s=5', *_MOG_LONG]
  ref, again = str(tmp_path / 'ref'), str(tmp_path / 'again')
  _launch(train + [f'--workdir={ref}'])
  _launch(train + [f'--workdir={again}'])
  assert _records(again) == _records(ref)  # bitwise repeatable
  _assert_same_state(again, ref)
  assert _records(ref)[-1]['step'] == 60

  # SIGTERM to process 1 only: both checkpoint the same step and exit 143.
  wd = str(tmp_path / 'term')
  job = Job(train + [f'--workdir={wd}'])
  job.wait_for(r'\[0\] step 5/60', timeout=180)
  os.kill(job.pid(1), signal.SIGTERM)
  t0 = time.monotonic()
  assert job.wait(timeout=60) == 143, job.output[-4000:]
  assert time.monotonic() - t0 < 60
  assert job.status(0) == job.status(1) == 143
  stops = re.findall(r'\[(\d)\] preempted \(SIGTERM\): checkpoint saved at '
                     r'step (\d+)', job.output)
  assert sorted(p for p, _ in stops) == ['0', '1'], job.output[-3000:]
  assert stops[0][1] == stops[1][1]
  step = int(stops[0][1])
  assert 5 <= step < 60, 'signal came too late: the run had ended'
  assert os.path.isdir(os.path.join(wd, 'checkpoints', str(step)))
  _launch(train + [f'--workdir={wd}'])
  assert _records(wd) == _records(ref)
  _assert_same_state(wd, ref)

  # kill -9 of process 1: process 0 names it and stops (status 3).
  wd = str(tmp_path / 'kill')
  job = Job(train + [f'--workdir={wd}'])
  job.wait_for(r'\[0\] step 20/60', timeout=180)
  os.kill(job.pid(1), signal.SIGKILL)
  t0 = time.monotonic()
  assert job.wait(timeout=120) == 128 + signal.SIGKILL, job.output[-4000:]
  assert time.monotonic() - t0 < 120
  assert job.status(0) == 3, job.output[-4000:]
  errors = [l for l in job.lines if l.startswith('[0] error:')]
  assert len(errors) == 1 and 'process 1 sent no heartbeat' in errors[0]
  assert 'Traceback' not in job.output
  _launch(train + [f'--workdir={wd}'])
  assert _records(wd) == _records(ref)
  _assert_same_state(wd, ref)


def _train_cli(extra: list[str], env: dict, tmp_path, timeout: float = 60):
  return subprocess.run(
      [sys.executable, '-m', 'experiments.train',
       '--config=experiments/configs/mog.py:smoke',
       f'--workdir={tmp_path}/w', *extra],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(300)
def test_entry_point_errors_are_one_line(tmp_path):
  # No ids and no cluster environment.
  proc = _train_cli(['--multihost'], _env(), tmp_path)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith('error: --multihost:'), proc.stderr[-2000:]
  assert '--num_processes' in lines[-1] and 'experiments.launch' in lines[-1]
  assert 'Traceback' not in proc.stderr

  # Process 1 of 2 and nobody at the coordinator's address.
  from experiments.launch import free_port  # pylint: disable=g-import-not-at-top
  address = f'127.0.0.1:{free_port()}'
  t0 = time.monotonic()
  proc = _train_cli(['--multihost', f'--coordinator_address={address}',
                     '--num_processes=2', '--process_id=1',
                     '--init_timeout_s=3'], _env(), tmp_path)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert time.monotonic() - t0 < 45
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: --multihost: process 1 of 2 could not join')
  assert 'nothing answers there' in last
  assert address in last and 'Traceback' not in proc.stderr

  # An id out of range.
  proc = _train_cli(['--multihost', f'--coordinator_address={address}',
                     '--num_processes=2', '--process_id=2'], _env(), tmp_path)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      'error: --process_id=2: must be in [0, 2) (--num_processes)')

  # One of several launched processes, but --multihost forgotten.
  env = dict(_env(), JAX_NUM_PROCESSES='2', JAX_PROCESS_ID='0')
  proc = _train_cli([], env, tmp_path)
  assert proc.returncode == 2
  assert 'add --multihost' in proc.stderr.strip().splitlines()[-1]
  assert not os.path.exists(f'{tmp_path}/w/checkpoints')


@pytest.mark.timeout(120)
def test_launcher_ids_prefixes_and_statuses():
  """Each process gets its ids; output is prefixed; the first non-zero
  status wins (signals as 128 + s); SIGTERM reaches every process."""
  code = ('import os, sys, time; i = int(os.environ["JAX_PROCESS_ID"]); '
          'print("id", i, os.environ["JAX_NUM_PROCESSES"], '
          'os.environ["JAX_COORDINATOR_ADDRESS"].startswith("127.0.0.1:")); '
          'time.sleep(0.5 * i); sys.exit(7 if i == 1 else 0)')
  job = Job([sys.executable, '-c', code], num_processes=3,
            extra=['--grace_s=30'])
  assert job.wait(timeout=60) == 7
  for i in range(3):
    assert f'[{i}] id {i} 3 True\n' in job.lines
  assert (job.status(0), job.status(1), job.status(2)) == (0, 7, 0)

  code = ('import os, signal, sys, time; '
          'signal.signal(signal.SIGTERM, lambda *a: sys.exit(143)); '
          'print("ready", flush=True); time.sleep(60)')
  job = Job([sys.executable, '-c', code], num_processes=2)
  job.wait_for(r'\[0\] ready', timeout=30)
  job.wait_for(r'\[1\] ready', timeout=30)
  job.proc.send_signal(signal.SIGTERM)
  assert job.wait(timeout=30) == 143
  assert job.status(0) == job.status(1) == 143

  code = 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'
  job = Job([sys.executable, '-c', code], num_processes=1)
  assert job.wait(timeout=30) == 137


_MAP_ROWS = r"""
import numpy as np
from gan_stability import distributed
distributed.initialize()
import jax
seen = []
def double(rows):
  seen.append(rows.copy())
  return np.stack([2 * rows[:, 0], rows[:, 1] ** 2], axis=1)
x = np.arange(10.0).reshape(5, 2)
out = distributed.map_rows(double, x)
np.testing.assert_array_equal(out, np.stack([2 * x[:, 0], x[:, 1] ** 2], 1))
lo, hi = distributed.row_range(5)
np.testing.assert_array_equal(seen[0], x[lo:hi])
flag = distributed.any_process(jax.process_index() == 1)
print('rows', lo, hi, 'any', flag)
distributed.finish()
"""


@pytest.mark.timeout(120)
def test_map_rows_and_any_process_on_two_processes():
  """5 rows over 2 processes: rows 0-2 and 3-4, gathered in order on both;
  a flag raised on process 1 only is seen by both."""
  job = Job([sys.executable, '-c', _MAP_ROWS])
  assert job.wait(timeout=90) == 0, job.output[-3000:]
  assert '[0] rows 0 3 any True\n' in job.lines
  assert '[1] rows 3 5 any True\n' in job.lines


@pytest.mark.timeout(60)
def test_map_rows_and_row_range_single_process():
  from gan_stability import distributed  # pylint: disable=g-import-not-at-top
  x = np.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(distributed.map_rows(lambda a: 2 * a, x),
                                2 * x)
  assert distributed.row_range(6) == (0, 6)
  assert distributed.any_process(True) and not distributed.any_process(False)
